"""The engine helpers the TUI needs (language, scope, diff, code extraction, atomic save).

engine.code and engine.edit own these; each function here uses the engine's version when it is
importable and falls back to a small local one otherwise, so the interface works (less cleverly)
on a partial engine and the fallbacks stay out of the widgets.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SUFFIX_LANGUAGES = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript",
    ".cjs": "javascript", ".jsx": "javascript", ".rs": "rust", ".go": "go", ".java": "java",
    ".sh": "bash", ".bash": "bash", ".json": "json", ".toml": "toml", ".yaml": "yaml",
    ".yml": "yaml", ".md": "markdown", ".html": "html", ".htm": "html", ".css": "css",
    ".sql": "sql", ".xml": "xml",
}


@dataclass(frozen=True)
class Scope:
    """A region of the buffer an action works on; start/end are character offsets."""

    name: str
    kind: str
    start: int
    end: int


def detect_language(path: Path | None, text: str) -> str | None:
    try:
        from engine.code import detect_language as engine_detect
    except ImportError:
        return _guess_language(path, text)
    try:
        return engine_detect(path, text)
    except Exception:  # a helper bug must not stop the editor from opening the file
        return _guess_language(path, text)


def _guess_language(path: Path | None, text: str) -> str | None:
    if path is not None and path.suffix.lower() in _SUFFIX_LANGUAGES:
        return _SUFFIX_LANGUAGES[path.suffix.lower()]
    first = text.split("\n", 1)[0]
    if first.startswith("#!"):
        if "python" in first:
            return "python"
        if "sh" in first:
            return "bash"
    return None


def enclosing_scope(text: str, language: str | None, line: int, column: int) -> Scope | None:
    """The innermost function/class around (line, column), both 0-based; None if there is none."""
    if language is None:
        return None
    try:
        from engine.code import enclosing_scope as engine_scope
    except ImportError:
        return None
    try:
        span: Any = engine_scope(text, language, line + 1, column + 1)  # the engine counts from 1
    except Exception:
        return None
    if span is None:
        return None
    return Scope(str(span.name), str(span.kind), int(span.start_byte), int(span.end_byte))


def unified_diff(old: str, new: str, path: Path | None) -> str:
    name = str(path) if path is not None else "buffer"
    try:
        from engine.edit import unified_diff as engine_diff
    except ImportError:
        lines = difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True),
            f"a/{name}", f"b/{name}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return engine_diff(old, new, name)


_FENCE = re.compile(r"^(`{3,}|~{3,})[^\n]*\n(.*?)^\1[ \t]*$", re.DOTALL | re.MULTILINE)


def extract_code(answer: str, language: str | None) -> str | None:
    """The code a rewrite answer proposes, or None when it holds none."""
    try:
        from engine.edit import extract_code as engine_extract
    except ImportError:
        blocks = [match.group(2) for match in _FENCE.finditer(answer)]
        if blocks:
            return max(blocks, key=len)
        stripped = answer.strip("\n")
        return stripped + "\n" if stripped else None
    return engine_extract(answer, language)


def splice(text: str, start: int, end: int, replacement: str) -> str:
    """What text[start:end] becomes when `replacement` goes there, indentation made to fit."""
    try:
        from engine.code import Span
        from engine.edit import splice as engine_splice
    except ImportError:
        return fit_replacement(text[start:end], replacement)
    first = text.count("\n", 0, start) + 1
    span = Span("selection", "lines", first, first + text.count("\n", start, end), start, end)
    spliced = engine_splice(text, span, replacement)
    return spliced[start : len(spliced) - (len(text) - end)]


def fit_replacement(original: str, replacement: str) -> str:
    """Keep the original's trailing newline convention so a splice does not glue lines."""
    if original.endswith("\n") and not replacement.endswith("\n"):
        return replacement + "\n"
    if not original.endswith("\n") and replacement.endswith("\n"):
        return replacement.rstrip("\n")
    return replacement


def write_file(path: Path, text: str) -> None:
    """Save the buffer: atomically replace `path`, or create it. Raises QcodeError or OSError.

    No backup copy: the user saves their own edits here, as in any editor, and a rewrite they
    accepted is still one undo step away in the buffer.
    """
    try:
        from engine.files import new_file, write_text
    except ImportError:
        _replace_file(path, text)
        return
    if path.exists():
        write_text(path, text, backup=False)
    else:
        new_file(path, text)


def _replace_file(path: Path, text: str) -> None:
    # write a sibling temp file then rename, so a crash never leaves half a file
    directory = path.parent if str(path.parent) else Path(".")
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
