"""Reading the CLI's input (files or stdin) with one-line errors for everything unusable."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine import files
from engine.errors import InputError
from engine.files import Snapshot

STDIN_LABEL = "<stdin>"


@dataclass(frozen=True)
class Source:
    """One input text; `path` is None when it came from stdin.

    `snapshot` is what the file held when read (a write refuses if it changed since), `bom`
    whether it began with a byte-order mark (a write puts it back).
    """

    text: str
    path: Path | None
    label: str  # what messages call it: the path as given, or <stdin>
    bom: bool = False
    snapshot: Snapshot | None = None


def decode(data: bytes, label: str) -> str:
    """UTF-8 text from raw bytes, refusing binary, non-UTF-8 and empty input."""
    text, _ = files.decode(data, label)
    _require_text(text, label)
    return text


def _require_text(text: str, label: str) -> None:
    if not text.strip():
        raise InputError(f"{label} is empty")


def read_path(name: str) -> Source:
    read = files.read_text(Path(name), name)
    _require_text(read.text, name)
    return Source(read.text, read.path, name, read.bom, read.snapshot)


def read_stdin(stream: BinaryIO | None = None) -> Source:
    stream = stream if stream is not None else sys.stdin.buffer
    try:
        data = stream.read(files.MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read stdin ({exc.strerror or exc})") from None
    if len(data) > files.MAX_FILE_BYTES:
        raise InputError(f"{STDIN_LABEL} is too large (qcode reads up to {files.MAX_FILE_BYTES // 2**20} MiB)")
    return Source(decode(data, STDIN_LABEL), None, STDIN_LABEL)


def stdin_is_piped() -> bool:
    """True when stdin is a pipe or file rather than a terminal (or closed)."""
    try:
        return sys.stdin is not None and not sys.stdin.isatty()
    except (ValueError, OSError):
        return False


def read_sources(files: list[str], *, required: bool = True) -> list[Source]:
    """The texts named by `files` (`-` is stdin); with none given, piped stdin.

    With nothing at all: an InputError when `required`, else an empty list.
    """
    if not files:
        if stdin_is_piped():
            return [read_stdin()]
        if required:
            raise InputError("no input: name a FILE or pipe code on stdin (see --help)")
        return []
    if files.count("-") > 1:
        raise InputError("stdin (-) can be read only once")
    return [read_stdin() if name == "-" else read_path(name) for name in files]


def line_range(value: str) -> tuple[int, int]:
    """argparse type for --lines A:B (1-based, inclusive); `A` alone means one line."""
    first, sep, last = value.partition(":")
    try:
        start = int(first)
        end = int(last) if sep else start
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A:B with line numbers, got {value!r}") from None
    if start < 1 or end < start:
        raise argparse.ArgumentTypeError(f"expected 1 <= A <= B, got {value!r}")
    return start, end


def offset_of(text: str, line: int, col: int, label: str) -> int:
    """The character offset of 1-based (line, col); col may be one past the line's end."""
    if line < 1 or col < 1:
        raise InputError("--line and --col are 1-based")
    lines = text.splitlines(keepends=True)
    if text.endswith("\n") or not lines:
        lines.append("")  # the empty line after a final newline is a valid position
    if line > len(lines):
        raise InputError(f"--line {line} is past the end of {label} ({len(lines)} lines)")
    content = lines[line - 1].rstrip("\r\n")
    if col > len(content) + 1:
        raise InputError(f"--col {col} is past the end of line {line} ({len(content)} characters)")
    return sum(len(part) for part in lines[: line - 1]) + col - 1
