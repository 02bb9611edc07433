"""Files as qcode reads and writes them, with one set of rules for every front end.

Reading: UTF-8 only, no NUL byte anywhere, a size limit; a byte-order mark is taken off the text and
remembered, so writing puts it back. What was read is kept as a Snapshot (size and sha256 of the
bytes): a write given that snapshot refuses when the file changed on disk meanwhile.

Writing: atomic (a temporary file in the same directory, fsync, os.replace), the original's mode
kept, a symlink followed (its target is written, the link stays), read-only files refused, and a
backup of the original that is never overwritten by a later one. Every byte goes through a
`writer`, so a full disk can be simulated by handing in one that fails.

Locking: `locked(path)` holds an advisory lock on the file for a whole edit, so a second qcode
editing the same file refuses at once instead of writing over the first one's result.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import InputError, QcodeError

BACKUP_SUFFIX = ".qcode-bak"
TEMP_SUFFIX = ".qcode-tmp"
BOM = b"\xef\xbb\xbf"
# source files beyond this are generated or data: refused before they cost memory and parse time
MAX_FILE_BYTES = 16 * 1024 * 1024

Writer = Callable[[BinaryIO, bytes], None]


class FileChanged(QcodeError):
    """The file on disk is no longer what was read: writing would lose someone's change."""


class FileBusy(QcodeError):
    """Another qcode run holds the file's lock."""


def _write_all(handle: BinaryIO, data: bytes) -> None:
    handle.write(data)


@dataclass(frozen=True)
class Snapshot:
    """What a file held when it was read: enough to notice any change before writing over it."""

    size: int
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> Snapshot:
        return cls(len(data), hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class TextFile:
    """A text file as read: its text (without a BOM), whether it had one, and its snapshot."""

    path: Path
    text: str
    bom: bool
    snapshot: Snapshot


# --------------------------------------------------------------------------------------------
# Reading


def decode(data: bytes, label: str) -> tuple[str, bool]:
    """UTF-8 text from raw bytes and whether it began with a BOM; InputError for binary or non-UTF-8."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{label} is a binary file (it contains NUL bytes, the first at offset {nul})")
    bom = data.startswith(BOM)
    try:
        text = data[len(BOM) if bom else 0 :].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(BOM) if bom else 0)
        raise InputError(f"{label} is not UTF-8 text (bad byte at offset {offset})") from None
    return text, bom


def encode(text: str, bom: bool = False) -> bytes:
    """The bytes `text` is written as; surrogateescape round-trips text read that way."""
    return (BOM if bom else b"") + text.encode("utf-8", "surrogateescape")


def _too_large(label: str, size: int) -> InputError:
    return InputError(
        f"{label} is too large ({size / 2**20:.1f} MiB; qcode reads files up to "
        f"{MAX_FILE_BYTES // 2**20} MiB)"
    )


def read_bytes(path: Path, label: str | None = None) -> bytes:
    """The file's bytes, with one-line InputErrors for missing, unreadable, odd or too large files."""
    name = label or str(path)
    try:
        with Path(path).open("rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise InputError(f"{name} is a directory, not a file")
            if info.st_size > MAX_FILE_BYTES:
                raise _too_large(name, info.st_size)
            data = handle.read(MAX_FILE_BYTES + 1)  # a pipe or device has no size: read one past
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied") from None
    except IsADirectoryError:
        raise InputError(f"{name} is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(name, len(data))
    return data


def read_text(path: Path, label: str | None = None) -> TextFile:
    """Read a text file by qcode's rules (see the module's doc); InputError when it is unusable."""
    path = Path(path)
    data = read_bytes(path, label)
    text, bom = decode(data, label or str(path))
    return TextFile(path, text, bom, Snapshot.of(data))


def current_snapshot(path: Path) -> Snapshot | None:
    """The snapshot of what `path` holds now; None when it does not exist or cannot be read."""
    try:
        return Snapshot.of(Path(path).read_bytes())
    except OSError:
        return None


# --------------------------------------------------------------------------------------------
# Locking


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an advisory lock on the file `path` names (its target if a link) for the block.

    The lock is on the file as it is now: a later atomic replace makes a new file that a new run
    locks afresh, after this one has finished. Raises FileBusy when another process holds it.
    A file that does not exist yet, or a platform without flock, is not locked.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here
        yield
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        yield  # nothing to lock yet; the write reports what is wrong with the path
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FileBusy(
                f"{path} is being edited by another qcode run; try again when it has finished"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


# --------------------------------------------------------------------------------------------
# Writing


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """For files qcode derives and caches (models, heads, cost curves): yields a path beside `path` to write, which
    replaces `path` when the block ends, or is removed if the block fails, so `path` is always whole or absent.
    Named by this process, so two qcode processes deriving the same file never write into one."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.part")
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise


def _fsync_dir(directory: Path) -> None:
    # Makes the rename durable; not possible everywhere (e.g. Windows), so best effort.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_new(path: Path, data: bytes, writer: Writer, mode: int = 0o666) -> None:
    """Create `path` (which must not exist) holding `data`; on any failure nothing is left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            writer(handle, data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def _write_temp(directory: Path, name: str, data: bytes, writer: Writer) -> Path:
    """Write `data` to a new temporary file in `directory` (created with the umask's mode)."""
    temp = directory / f".{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    _write_new(temp, data, writer)
    return temp


def _write_backup(target: Path, data: bytes, writer: Writer) -> Path:
    """Save `data` (the original) next to `target`: name.qcode-bak, then name.1.qcode-bak, ..."""
    n = 0
    while True:
        name = f"{target.name}{BACKUP_SUFFIX}" if n == 0 else f"{target.name}.{n}{BACKUP_SUFFIX}"
        candidate = target.with_name(name)
        try:
            _write_new(candidate, data, writer, 0o600)
        except FileExistsError:
            n += 1
            continue
        with contextlib.suppress(OSError):
            os.utime(candidate, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns))
            os.chmod(candidate, stat.S_IMODE(target.stat().st_mode))
        return candidate


def _os_message(error: OSError) -> str:
    return error.strerror or str(error)


def writable_target(path: Path) -> Path:
    """The regular file a write to `path` replaces (a symlink's target); InputError when none can be."""
    path = Path(path)
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        raise InputError(f"cannot write {path}: it does not exist") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable folder
        raise InputError(f"cannot write {path}: {exc}") from None
    info = target.stat()
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"cannot write {path}: not a regular file")
    # root may write anything: the mode bits say what the owner meant
    if not os.access(target, os.W_OK) or not info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise InputError(f"cannot write {path}: it is read-only")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: its directory is not writable")
    return target


@dataclass(frozen=True)
class Written:
    """What a write did: the backup it kept (None without one) and the new snapshot of the file."""

    backup: Path | None
    snapshot: Snapshot
    changed: bool  # False when the file already held exactly this text: nothing was written


def write_text(
    path: Path,
    text: str,
    *,
    expect: Snapshot | None = None,
    bom: bool = False,
    backup: bool = True,
    writer: Writer = _write_all,
) -> Written:
    """Replace the regular file `path` with `text` atomically (see the module's doc).

    `expect`: the snapshot taken when the file was read; FileChanged when the file holds anything
    else now. `bom` puts a byte-order mark first. With `backup`, a copy of the original is kept
    next to it. Raises InputError when `path` cannot be written, QcodeError when writing fails
    (the original is then intact and no temporary file is left).
    """
    path = Path(path)
    target = writable_target(path)
    data = encode(text, bom)
    try:
        info = target.stat()
        old = target.read_bytes()
        if expect is not None and Snapshot.of(old) != expect:
            raise FileChanged(
                f"{path} changed on disk since qcode read it; not writing over that change"
            )
        if old == data:
            return Written(None, Snapshot.of(data), changed=False)
        saved = _write_backup(target, old, writer) if backup else None
        try:
            temp = _write_temp(target.parent, target.name, data, writer)
            try:
                os.chmod(temp, stat.S_IMODE(info.st_mode))
                if hasattr(os, "chown"):
                    with contextlib.suppress(OSError):  # only root may give files away
                        os.chown(temp, info.st_uid, info.st_gid)
                os.replace(temp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    temp.unlink()
                raise
        except BaseException:
            if saved is not None:  # nothing was written: the backup of it is clutter
                with contextlib.suppress(OSError):
                    saved.unlink()
            raise
    except OSError as error:
        raise QcodeError(f"cannot write {path}: {_os_message(error)}") from error
    _fsync_dir(target.parent)
    return Written(saved, Snapshot.of(data), changed=True)


def restore(path: Path, backup: Path, expect: Snapshot) -> None:
    """Put `backup` back in place of `path` and remove it, unless `path` changed since `expect`.

    Used when a check after a write (the test command) fails. FileChanged when someone else
    wrote the file meanwhile: then both stay as they are.
    """
    original = Path(backup).read_bytes()
    text, bom = decode(original, str(backup))
    write_text(path, text, expect=expect, bom=bom, backup=False)
    Path(backup).unlink()


def new_file(
    path: Path, text: str, force: bool = False, *, bom: bool = False, writer: Writer = _write_all
) -> Path | None:
    """Create `path` with `text` (parent folders too); an existing file is replaced only with force.

    Returns the backup of the replaced file when `force` overwrote one, else None.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not force:
            raise InputError(f"{path} already exists; pass --force to overwrite it")
        return write_text(path, text, bom=bom, backup=True, writer=writer).backup
    data = encode(text, bom)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = _write_temp(path.parent, path.name, data, writer)
        try:
            # A hard link fails if the name appeared meanwhile: never clobber a file we did not see.
            os.link(temp, path)
        except FileExistsError:
            raise InputError(f"{path} already exists; pass --force to overwrite it") from None
        except OSError:
            os.replace(temp, path)  # no hard links on this filesystem
        finally:
            with contextlib.suppress(OSError):
                temp.unlink()
    except OSError as error:
        raise QcodeError(f"cannot write {path}: {_os_message(error)}") from error
    _fsync_dir(path.parent)
    return None
