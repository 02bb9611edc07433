"""The user's test command as a gate: run after a rewrite is written, a failure puts the original back;
run before a fix, its failure output tells the model what to aim at.

The command is a shell line (`pytest -q`, `make test`), run in the current folder. Its output is kept
to its last OUTPUT_MAX_BYTES whatever it prints, and a run past its timeout is killed with its
children and counts as a failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import files
from .errors import QcodeError

OUTPUT_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class CommandRun:
    """One run of the test command: its exit code (None when it timed out) and the end of its output."""

    command: str
    exit_code: int | None
    output: str
    timeout: float

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def outcome(self) -> str:
        """"passed", "failed (exit 1)" or "timed out after 600 s", for messages."""
        if self.exit_code is None:
            return f"timed out after {self.timeout:g} s"
        return "passed" if self.passed else f"failed (exit {self.exit_code})"

    def to_dict(self) -> dict[str, object]:
        return {"command": self.command, "exit_code": self.exit_code, "passed": self.passed,
                "output": self.output}


def _tail(handle: IO[bytes], limit: int) -> str:
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - limit))
    data: bytes = handle.read()
    text = data.decode("utf-8", "replace")
    return ("[... earlier output left out]\n" if size > limit else "") + text


def run_tests(command: str, *, timeout: float = 600.0, cwd: Path | None = None) -> CommandRun:
    """Run `command` through the shell; QcodeError when it cannot be started at all."""
    with tempfile.TemporaryFile() as sink:
        try:
            process = subprocess.Popen(
                command, shell=True, cwd=cwd, stdin=subprocess.DEVNULL, stdout=sink,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            raise QcodeError(f"cannot run the test command {command!r}: {exc.strerror or exc}") from None
        try:
            code: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if process.poll() is None or code is None:
                with contextlib.suppress(OSError):
                    os.killpg(process.pid, signal.SIGKILL)  # the shell and whatever it started
                process.wait()
        return CommandRun(command, code, _tail(sink, OUTPUT_MAX_BYTES), timeout)


@dataclass(frozen=True)
class GatedWrite:
    """A rewrite written and tested: the write, the test run (None without a test command) and whether
    the original was put back because the tests failed."""

    written: files.Written
    tests: CommandRun | None
    restored: bool


def write_tested(
    path: Path,
    text: str,
    *,
    expect: files.Snapshot | None,
    bom: bool,
    test_cmd: str,
    timeout: float,
    cwd: Path | None = None,
) -> GatedWrite:
    """Write `text` over `path` with a backup; with a test command, run it and restore the original
    when it fails. FileChanged when the file changed since `expect` (before the write, or while the
    tests ran: then the tested text stays and so does the backup)."""
    written = files.write_text(path, text, expect=expect, bom=bom, backup=True)
    if not test_cmd.strip() or not written.changed:
        return GatedWrite(written, None, False)
    run = run_tests(test_cmd, timeout=timeout, cwd=cwd)
    if run.passed:
        return GatedWrite(written, run, False)
    assert written.backup is not None
    files.restore(path, written.backup, written.snapshot)
    return GatedWrite(written, run, True)
