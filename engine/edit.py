"""Turning a model's answer into a change on disk: extract its code, splice it, diff it, write it.

Writes are atomic (a temporary file in the same directory, fsync, os.replace) and keep a backup
copy of the original that is never overwritten by a later backup.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from .code import Span, parses_cleanly
from .errors import InputError, QcodeError
from .languages import fence_names

BACKUP_SUFFIX = ".qcode-bak"

# --------------------------------------------------------------------------------------------
# Diffs


def unified_diff(old: str, new: str, path: str, *, context: int = 3) -> str:
    """A unified diff from `old` to `new` with a/ and b/ headers, "" when they are equal.

    A last line without a newline is marked as git does, so the diff applies with `patch`/`git
    apply`.
    """
    if old == new:
        return ""
    name = path.replace(os.sep, "/").removeprefix("./").lstrip("/")
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{name}",
        tofile=f"b/{name}",
        n=context,
    )
    out: list[str] = []
    for line in lines:
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Code in a model's answer

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*)$")
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


@dataclass(frozen=True)
class _Block:
    info: str
    code: str
    closed: bool


def _fenced_blocks(answer: str) -> list[_Block]:
    """Markdown fenced blocks; an unclosed last block runs to the end (a cut answer)."""
    blocks: list[_Block] = []
    lines = answer.split("\n")
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            closing = _FENCE.match(lines[i])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                closed = True
                i += 1
                break
            line = lines[i]
            # Content is indented as much as the fence was; take that much off.
            strip = min(indent, len(line) - len(line.lstrip(" ")))
            body.append(line[strip:])
            i += 1
        blocks.append(_Block(opening["info"].strip(), "\n".join(body), closed))
    return blocks


def _info_language(info: str) -> str:
    # "python title=x.py", "{.python}", "py:main.py" all name python.
    word = re.split(r"[\s:{},]", info.strip().lstrip("{.").lower(), maxsplit=1)[0]
    return word


_PROSE_WORDS = re.compile(
    r"^(here|this|the|i|i'?ve|below|above|note|sure|certainly|okay|ok|in|it|these|that|"
    r"explanation|changes?|summary|let|we|to|now|first|finally|also)\b",
    re.IGNORECASE,
)
_CODE_HINTS = re.compile(
    r"[;{}()\[\]=<>]|^\s*(def|class|import|from|return|fn|func|function|const|let|var|pub|use|"
    r"package|if|for|while|#include|public|private)\b|^\s+\S"
)


def _looks_like_prose(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return False
    words = stripped.split()
    sentence = len(words) >= 3 and stripped[-1] in ".:!?" and not _CODE_HINTS.search(stripped)
    return bool(_PROSE_WORDS.match(stripped) and len(words) >= 2) or sentence


def _looks_like_code(text: str) -> bool:
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if not lines:
        return False
    codeish = sum(1 for ln in lines if _CODE_HINTS.search(ln) and not _looks_like_prose(ln))
    return codeish / len(lines) >= 0.6


def _strip_prose(text: str) -> str:
    lines = text.split("\n")
    while lines and (not lines[0].strip() or _looks_like_prose(lines[0])):
        lines.pop(0)
    while lines and (not lines[-1].strip() or _looks_like_prose(lines[-1])):
        lines.pop()
    return "\n".join(lines)


def extract_code(answer: str, language: str | None) -> str | None:
    """The code in a model's answer, ending with one newline; None when it holds no code.

    Fenced blocks win: the largest whose info string names `language`, else the largest untagged
    or other block (a block tagged with another language only when nothing else is there). An
    unclosed fence (a cut answer) runs to the end. Without fences, the whole answer, less prose
    lines before and after, counts when it parses cleanly or looks like code.
    """
    answer = _THINK.sub("", answer.replace("\r\n", "\n"))
    if "<think>" in answer:  # an unclosed thinking block holds no answer yet
        answer = answer.split("<think>", 1)[0]
    blocks = [b for b in _fenced_blocks(answer) if b.code.strip()]
    if blocks:
        names = fence_names(language) if language else frozenset()
        matching = [b for b in blocks if _info_language(b.info) in names]
        untagged = [b for b in blocks if not b.info]
        pool = matching or untagged or blocks
        best = max(pool, key=lambda b: len(b.code))
        return best.code.strip("\n") + "\n"
    candidate = _strip_prose(answer).strip("\n")
    if not candidate.strip():
        return None
    # A bare word like "OK" parses as Python: a clean parse counts only with some code in it.
    parsed = bool(parses_cleanly(candidate, language)) and bool(_CODE_HINTS.search(candidate))
    if parsed or _looks_like_code(candidate):
        return candidate + "\n"
    return None


# --------------------------------------------------------------------------------------------
# Splicing a replacement into a file


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def splice(original: str, span: Span, replacement: str) -> str:
    """`original` with the text of `span` replaced by `replacement`, indentation made to fit.

    Models often return a method dedented to column 0, or over-indented: the replacement's
    first line is moved to the span's indentation and every other line by the same amount.
    """
    start, end = span.start_byte, span.end_byte
    if not 0 <= start <= end <= len(original):
        raise InputError(f"the span {span.describe()} lies outside the text")
    old = original[start:end]
    line_start = original.rfind("\n", 0, start) + 1
    lead = original[line_start:start]

    lines = replacement.replace("\r\n", "\n").strip("\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        new_lines: list[str] = []
    else:
        given = _indent_of(lines[0])
        if not lead.strip():
            # The span starts in its line's indentation (or at the line start).
            target = lead + _indent_of(old.split("\n", 1)[0])
            first_prefix = target[len(lead) :]
        else:
            # The span starts after code on its line: only later lines take its indentation.
            target = _indent_of(original[line_start : original.find("\n", line_start)])
            first_prefix = ""
        new_lines = []
        for index, line in enumerate(lines):
            if not line.strip():
                new_lines.append("")
            elif index == 0:
                new_lines.append(first_prefix + line[len(given) :])
            elif line.startswith(given):
                new_lines.append(target + line[len(given) :])
            else:
                new_lines.append(line)  # less indented than the first line: leave it be
    crlf = original.count("\r\n") * 2 > original.count("\n")
    newline = "\r\n" if crlf else "\n"
    new = newline.join(new_lines)
    if old.endswith("\n") and new:
        new += newline
    return original[:start] + new + original[end:]


# --------------------------------------------------------------------------------------------
# Writing files


def _backup_path(path: Path) -> Path:
    """Claim a fresh backup name next to `path`: name.qcode-bak, then name.1.qcode-bak, ..."""
    n = 0
    while True:
        name = f"{path.name}{BACKUP_SUFFIX}" if n == 0 else f"{path.name}.{n}{BACKUP_SUFFIX}"
        candidate = path.with_name(name)
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            n += 1
            continue
        os.close(fd)
        return candidate


def _fsync_dir(directory: Path) -> None:
    # Makes the rename durable; not possible everywhere (e.g. Windows), so best effort.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_temp(directory: Path, name: str, data: bytes) -> Path:
    """Write `data` to a new temporary file in `directory` (created with the umask's mode)."""
    temp = directory / f".{name}.{secrets.token_hex(4)}.qcode-tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return temp


def _os_message(error: OSError) -> str:
    return error.strerror or str(error)


def atomic_write(path: Path, text: str, *, backup: bool = True) -> Path | None:
    """Replace the regular file `path` with `text` atomically, keeping its permissions.

    With `backup`, a copy of the original is kept next to it first (see _backup_path); the
    backup's path is returned, or None without a backup or when `text` equals the content already
    there (nothing is written then). A symlink is followed: the file it points to is replaced.
    Raises InputError when `path` is not an existing, writable regular file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"cannot write {path}: it does not exist")
    target = path.resolve()
    if not target.is_file():
        raise InputError(f"cannot write {path}: not a regular file")
    if not os.access(target, os.W_OK):
        raise InputError(f"cannot write {path}: permission denied")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: its directory is not writable")
    data = text.encode("utf-8", "surrogateescape")
    try:
        info = target.stat()
        if target.read_bytes() == data:
            return None
        saved: Path | None = None
        if backup:
            saved = _backup_path(target)
            shutil.copyfile(target, saved)
            shutil.copystat(target, saved)
        temp = _write_temp(target.parent, target.name, data)
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
    except OSError as error:
        raise QcodeError(f"cannot write {path}: {_os_message(error)}") from error
    _fsync_dir(target.parent)
    return saved


def new_file(path: Path, text: str, force: bool = False) -> Path | None:
    """Create `path` with `text` (parent folders too); an existing file is replaced only with force.

    Returns the backup of the replaced file when `force` overwrote one, else None.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not force:
            raise InputError(f"{path} already exists; pass --force to overwrite it")
        return atomic_write(path, text, backup=True)
    data = text.encode("utf-8", "surrogateescape")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = _write_temp(path.parent, path.name, data)
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
