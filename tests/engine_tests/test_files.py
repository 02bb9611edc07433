"""File fidelity: what qcode reads and writes back, case by case (the matrix of issue 12).

Each case runs the real path a rewrite takes: engine.files reads the file, engine.tasks splices an
answer into it and checks it, engine.files writes it. The answers are crafted (the model may answer
with LF or with the CRs it saw, with spaces in a tab file, ...); the end-to-end runs on the real model
are in test_cli.py.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from engine import files
from engine.errors import InputError, QcodeError
from engine.files import FileBusy, FileChanged, Snapshot, locked, new_file, read_text, write_text
from engine.tasks import TaskInput, rewrite_result

TWO = "def add(a, b):\n    return a+b\n\n\ndef sub(a, b):\n    return a-b\n"
TYPED = "def add(a: int, b: int) -> int:\n    return a+b\n"
REPO = Path(__file__).resolve().parents[2]
RunQcode = Callable[..., subprocess.CompletedProcess[str]]


def leftovers(folder: Path, *keep: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def apply(path: Path, answer: str, symbol: str | None = "add") -> bytes:
    """Read `path`, splice the answer in, check it, write it back; the bytes on disk after."""
    read = read_text(path)
    task = TaskInput("refactor", read.text, path=path, instruction="Add type hints.", symbol=symbol)
    result = rewrite_result(task, answer, "stop")
    assert result.text is not None and result.problems == (), result.problems
    write_text(path, result.text, expect=read.snapshot, bom=read.bom)
    return path.read_bytes()


# --- line endings, BOM, final newline, tabs --------------------------------------------------------------


def test_lf(tmp_path: Path) -> None:
    path = tmp_path / "lf.py"
    path.write_bytes(TWO.encode())
    assert apply(path, TYPED) == TWO.replace("def add(a, b):", "def add(a: int, b: int) -> int:").encode()


@pytest.mark.parametrize("answer", [TYPED, TYPED.replace("\n", "\r\n"), TYPED.rstrip("\n") + "\r"],
                         ids=["model-lf", "model-crlf", "model-stray-cr"])
def test_crlf(tmp_path: Path, answer: str) -> None:
    path = tmp_path / "crlf.py"
    path.write_bytes(TWO.replace("\n", "\r\n").encode())
    written = apply(path, answer)
    assert b"\r\r" not in written  # the reported bug: `return a+b\r\r`
    expected = TWO.replace("def add(a, b):", "def add(a: int, b: int) -> int:").replace("\n", "\r\n")
    assert written == expected.encode()


def test_mixed_endings_change_only_where_the_code_changed(tmp_path: Path) -> None:
    path = tmp_path / "mixed.py"
    original = b"def add(a, b):\r\n    return a+b\r\n\n\ndef sub(a, b):\n    return a-b\r\n"
    path.write_bytes(original)
    answer = "def add(a: int, b: int) -> int:\n    # typed\n    return a+b\n"
    written = apply(path, answer)
    # add's lines were CRLF: its kept and new lines stay CRLF; everything after it is untouched
    assert written == (b"def add(a: int, b: int) -> int:\r\n    # typed\r\n    return a+b\r\n"
                       + original[original.index(b"\n\ndef sub") :])


def test_utf8_bom_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "bom.py"
    path.write_bytes(files.BOM + TWO.encode())
    read = read_text(path)
    assert read.bom and not read.text.startswith("\ufeff")
    written = apply(path, TYPED)
    assert written.startswith(files.BOM) and written.count(files.BOM) == 1
    assert written[3:].startswith(b"def add(a: int")


@pytest.mark.parametrize("symbol", ["sub", None], ids=["last-symbol", "whole-file"])
def test_no_trailing_newline_stays_so(tmp_path: Path, symbol: str | None) -> None:
    path = tmp_path / "nonl.py"
    path.write_bytes(TWO.rstrip("\n").encode())
    if symbol:
        answer = "def sub(a: int, b: int) -> int:\n    return a-b\n"
    else:
        answer = TWO.replace("def sub(a, b):", "def sub(a: int, b: int) -> int:")
    written = apply(path, answer, symbol)
    assert written.endswith(b"return a-b") and written.startswith(b"def add(a, b):\n")
    assert b"def sub(a: int, b: int) -> int:\n" in written


def test_tabs_stay_tabs(tmp_path: Path) -> None:
    path = tmp_path / "tabs.py"
    original = "class A:\n\tdef m(self):\n\t\tif self:\n\t\t\treturn 1\n\t\treturn 2\n"
    path.write_bytes(original.encode())
    # the model answers with spaces, at column 0
    answer = "def m(self) -> int:\n    if self:\n        return 1\n    return 2\n"
    written = apply(path, answer, "A.m")
    assert written.decode() == original.replace("def m(self):", "def m(self) -> int:")


# --- the file itself: mode, links, permissions ---------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o755, 0o640, 0o600])
def test_mode_bits_are_kept(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "run.py"
    path.write_bytes(TWO.encode())
    path.chmod(mode)
    apply(path, TYPED)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_a_symlink_stays_a_link_and_its_target_is_written(tmp_path: Path) -> None:
    real = tmp_path / "real" / "calc.py"
    real.parent.mkdir()
    real.write_bytes(TWO.encode())
    link = tmp_path / "link.py"
    link.symlink_to(real)
    apply(link, TYPED)
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text().startswith("def add(a: int")
    assert leftovers(real.parent, "calc.py") == ["calc.py.qcode-bak"]  # the backup sits by the target
    assert leftovers(tmp_path, "link.py", "real") == []


def test_a_dangling_or_looping_link_is_one_line(tmp_path: Path) -> None:
    dangling = tmp_path / "gone.py"
    dangling.symlink_to(tmp_path / "nowhere.py")
    with pytest.raises(InputError, match="does not exist"):
        write_text(dangling, "x = 1\n")
    loop = tmp_path / "loop.py"
    loop.symlink_to(loop)
    with pytest.raises(InputError) as error:
        write_text(loop, "x = 1\n")
    assert "\n" not in str(error.value)


def test_a_read_only_file_is_a_clear_error_even_for_root(tmp_path: Path) -> None:
    path = tmp_path / "ro.py"
    path.write_bytes(TWO.encode())
    path.chmod(0o444)
    with pytest.raises(InputError, match=r"cannot write .*ro\.py: it is read-only"):
        write_text(path, TYPED)
    assert path.read_bytes() == TWO.encode() and leftovers(tmp_path, "ro.py") == []


# --- changes on disk, locks ------------------------------------------------------------------------


def test_a_file_changed_between_read_and_write_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "calc.py"
    path.write_bytes(TWO.encode())
    read = read_text(path)
    path.write_bytes(TWO.encode() + b"# someone else's line\n")
    with pytest.raises(FileChanged, match="changed on disk since qcode read it"):
        write_text(path, TYPED, expect=read.snapshot)
    assert path.read_bytes().endswith(b"# someone else's line\n")
    assert leftovers(tmp_path, "calc.py") == []
    # the same content written again (a touch, an editor's save without change) is no change
    path.write_bytes(TWO.encode())
    write_text(path, TYPED, expect=read.snapshot)
    assert path.read_text() == TYPED


def test_a_second_lock_on_one_file_refuses(tmp_path: Path) -> None:
    path = tmp_path / "calc.py"
    path.write_bytes(TWO.encode())
    link = tmp_path / "link.py"
    link.symlink_to(path)
    with locked(path), pytest.raises(FileBusy, match="being edited by another qcode run"), locked(link):
        pass
    with locked(link):  # released: free again
        pass


HOLD_LOCK = """
import sys
from engine.files import locked
with locked(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_two_apply_runs_on_one_file(tmp_path: Path, run_qcode: RunQcode) -> None:
    """A second `qcode ... --apply` while another holds the file refuses at once, before its model loads."""
    path = tmp_path / "calc.py"
    path.write_bytes(TWO.encode())
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        done = run_qcode(["refactor", str(path), "-m", "x", "--apply",
                          "--model", str(tmp_path / "never-loaded.gguf")])
    finally:
        holder.communicate("")
    assert done.returncode == 1
    assert done.stderr == f"qcode: error: {path} is being edited by another qcode run; " \
                          "try again when it has finished\n"
    assert path.read_bytes() == TWO.encode() and leftovers(tmp_path, "calc.py") == []


# --- a full disk --------------------------------------------------------------------------------------------


def disk_full_after(limit: int) -> files.Writer:
    """A writer that writes `limit` bytes of what it is given, then fails as a full disk does."""

    def write(handle: BinaryIO, data: bytes) -> None:
        handle.write(data[:limit])
        if len(data) > limit:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return write


@pytest.mark.parametrize("backup", [True, False])
def test_a_full_disk_leaves_the_original_and_no_temp_file(tmp_path: Path, backup: bool) -> None:
    path = tmp_path / "calc.py"
    path.write_bytes(TWO.encode())
    before = path.stat()
    with pytest.raises(QcodeError, match="No space left on device") as error:
        write_text(path, TYPED * 100, backup=backup, writer=disk_full_after(10))
    assert "\n" not in str(error.value)
    assert path.read_bytes() == TWO.encode() and path.stat().st_ino == before.st_ino
    assert leftovers(tmp_path, "calc.py") == []  # no temp file, no half backup


def test_a_full_disk_while_creating_a_new_file(tmp_path: Path) -> None:
    target = tmp_path / "tests" / "test_calc.py"
    with pytest.raises(QcodeError, match="No space left on device"):
        new_file(target, "def test_x():\n    pass\n", writer=disk_full_after(5))
    assert not target.exists() and leftovers(target.parent) == []


# --- reading ------------------------------------------------------------------------------------------------


def test_reading_rules(tmp_path: Path) -> None:
    late_nul = tmp_path / "late.py"
    late_nul.write_bytes(b"x = 1\n" * 10_000 + b"\x00")
    with pytest.raises(InputError, match=r"is a binary file .*offset 60000"):
        read_text(late_nul)
    bad = tmp_path / "bad.py"
    bad.write_bytes(b"x = 1\n" * 10_000 + b"\xff" + b"y = 2\n")
    with pytest.raises(InputError, match=r"is not UTF-8 text \(bad byte at offset 60000\)"):
        read_text(bad)
    bom_bad = tmp_path / "bombad.py"
    bom_bad.write_bytes(files.BOM + b"ab\xff")
    with pytest.raises(InputError, match="offset 5"):  # offsets count the file's bytes
        read_text(bom_bad)
    with pytest.raises(InputError, match="no such file"):
        read_text(tmp_path / "missing.py")
    with pytest.raises(InputError, match="is a directory"):
        read_text(tmp_path)


def test_snapshots() -> None:
    assert Snapshot.of(b"abc") == Snapshot.of(b"abc")
    assert Snapshot.of(b"abc") != Snapshot.of(b"abd")


# --- writes and backups -------------------------------------------------------------------------------------


def temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(files.TEMP_SUFFIX))


def test_write_replaces_and_backs_up(tmp_path: Path) -> None:
    target = tmp_path / "mod.py"
    target.write_text("old = 1\n", encoding="utf-8")
    target.chmod(0o640)
    inode = target.stat().st_ino
    backup = write_text(target, "new = 2\n").backup
    assert target.read_text(encoding="utf-8") == "new = 2\n"
    assert target.stat().st_ino != inode  # replaced by a rename, never rewritten in place
    assert backup == tmp_path / "mod.py.qcode-bak"
    assert backup.read_text(encoding="utf-8") == "old = 1\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    # a second write never overwrites the first backup
    second = write_text(target, "newer = 3\n").backup
    assert second == tmp_path / "mod.py.1.qcode-bak"
    assert second.read_text(encoding="utf-8") == "new = 2\n"
    assert backup.read_text(encoding="utf-8") == "old = 1\n"
    assert write_text(target, "newest = 4\n").backup == tmp_path / "mod.py.2.qcode-bak"
    assert temps(tmp_path) == []


def test_write_without_backup_and_unchanged(tmp_path: Path) -> None:
    target = tmp_path / "x.rs"
    target.write_text("fn a() {}\n", encoding="utf-8")
    written = write_text(target, "fn b() {}\n", backup=False)
    assert written.backup is None and written.changed
    assert written.snapshot == Snapshot.of(b"fn b() {}\n")
    before = target.stat().st_mtime_ns
    assert not write_text(target, "fn b() {}\n").changed  # same content: nothing written
    assert target.stat().st_mtime_ns == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.rs"]


def test_write_keeps_text_exactly(tmp_path: Path) -> None:
    target = tmp_path / "crlf.txt"
    target.write_bytes(b"a\r\nb\r\n")
    write_text(target, "é\r\n日本\r\nno final newline", backup=False)
    assert target.read_bytes() == "é\r\n日本\r\nno final newline".encode()


def test_write_refusals(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        write_text(tmp_path / "missing.py", "x")
    with pytest.raises(InputError, match="not a regular file"):
        write_text(tmp_path, "x")


def test_restore_puts_the_backup_back(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_bytes(files.BOM + b"old = 1\r\n")
    written = write_text(target, "new = 2\r\n", bom=True)
    assert written.backup is not None
    files.restore(target, written.backup, written.snapshot)
    assert target.read_bytes() == files.BOM + b"old = 1\r\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py"]
    # someone wrote it meanwhile: nothing is put back, the backup stays
    written = write_text(target, "new = 2\r\n", bom=True)
    assert written.backup is not None
    target.write_text("theirs\n")
    with pytest.raises(FileChanged):
        files.restore(target, written.backup, written.snapshot)
    assert target.read_text() == "theirs\n" and written.backup.exists()


# --- new files -------------------------------------------------------------------------------------------


def test_new_file_creates_with_parents_and_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "tests" / "unit" / "test_mod.py"
    old_umask = os.umask(0o022)
    try:
        assert new_file(target, "def test_x():\n    assert True\n") is None
    finally:
        os.umask(old_umask)
    assert target.read_text(encoding="utf-8") == "def test_x():\n    assert True\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert temps(target.parent) == []


def test_new_file_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "test_mod.py"
    target.write_text("keep me\n", encoding="utf-8")
    with pytest.raises(InputError, match="already exists; pass --force"):
        new_file(target, "replacement\n")
    assert target.read_text(encoding="utf-8") == "keep me\n"
    backup = new_file(target, "replacement\n", force=True)
    assert target.read_text(encoding="utf-8") == "replacement\n"
    assert backup is not None and backup.read_text(encoding="utf-8") == "keep me\n"


def test_new_file_loses_a_race_safely(tmp_path: Path) -> None:
    # the name appears while the new text is being written: the other file must survive
    target = tmp_path / "race.py"

    def rival_appears(handle: BinaryIO, data: bytes) -> None:
        target.write_text("rival\n")
        handle.write(data)

    with pytest.raises(InputError, match="already exists"):
        new_file(target, "mine\n", writer=rival_appears)
    assert target.read_text() == "rival\n"
    assert temps(tmp_path) == []


def test_a_derived_cache_file_is_whole_or_left_as_it_was(tmp_path: Path) -> None:
    """files.replacing, as the model cache, heads and cost curves use it: a failure midway leaves the old file and
    no partial one; a finished block replaces it whole."""
    target = tmp_path / "curve.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), files.replacing(target) as partial:
        partial.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["curve.json"]
    with files.replacing(target) as partial:
        partial.write_text("new")
        assert target.read_text() == "old"  # nothing replaced before the block ends
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["curve.json"]
