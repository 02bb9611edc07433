"""Stdout rendering for the CLI: streamed answers with highlighted code fences, coloured diffs.

The renderer works line by line so that highlighting never re-renders what was already printed
(a streamed answer must stay linear in its length). Prose is written through as it arrives; a code
line inside a ``` fence is held until its newline, then highlighted with the fence's lexer.
"""

from __future__ import annotations

import os
from typing import TextIO

from pygments import highlight
from pygments.formatters import TerminalFormatter
from pygments.lexer import Lexer
from pygments.lexers import DiffLexer, TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

FENCE_CHARS = ("`", "~")


def use_color(stream: TextIO, mode: str = "auto") -> bool:
    """Colour `stream`? always/never, else only a terminal without NO_COLOR or TERM=dumb."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    if os.environ.get("NO_COLOR", "") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def lexer_for(language: str | None) -> Lexer:
    """A pygments lexer for a fence's info string or a language name; plain text when unknown."""
    name = (language or "").strip().split()[0].lower() if language and language.strip() else ""
    if name:
        try:
            return get_lexer_by_name(name, stripnl=False, ensurenl=False)
        except ClassNotFound:
            pass
    return TextLexer(stripnl=False, ensurenl=False)


def _fence_open(line: str) -> tuple[str, str] | None:
    """(marker, info) when `line` opens a fenced block: up to 3 spaces, then 3+ ` or ~."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3 or not stripped or stripped[0] not in FENCE_CHARS:
        return None
    char = stripped[0]
    count = len(stripped) - len(stripped.lstrip(char))
    if count < 3:
        return None
    info = stripped[count:].strip()
    if char == "`" and "`" in info:
        return None
    return char * count, info


def _fence_close(line: str, marker: str) -> bool:
    stripped = line.strip()
    return (
        len(line) - len(line.lstrip(" ")) <= 3
        and len(stripped) >= len(marker)
        and set(stripped) == {marker[0]}
    )


def _may_become_fence(partial: str) -> bool:
    """Whether an unfinished line could still turn into a fence line (so it must wait)."""
    stripped = partial.lstrip(" ")
    if len(partial) - len(stripped) > 3:
        return False
    if not stripped:
        return True
    char = stripped[0]
    if char not in FENCE_CHARS:
        return False
    count = len(stripped) - len(stripped.lstrip(char))
    return count == len(stripped) or count >= 3


class StreamRenderer:
    """Writes a streamed Markdown-ish answer to `out`, highlighting fenced code when `color`."""

    def __init__(self, out: TextIO, color: bool, language: str | None = None) -> None:
        self.out = out
        self.color = color
        self.language = language  # for fences without an info string
        self._formatter = TerminalFormatter()
        self._pending = ""  # the current, unfinished line
        self._written = 0  # how much of `_pending` prose was already written through
        self._marker: str | None = None  # the open fence's marker, None outside a fence
        self._lexer: Lexer = TextLexer()

    @property
    def in_fence(self) -> bool:
        return self._marker is not None

    def feed(self, text: str) -> None:
        if not text:
            return
        if not self.color:
            self.out.write(text)
            self.out.flush()
            return
        self._pending += text
        while True:
            cut = self._pending.find("\n")
            if cut < 0:
                break
            line, self._pending = self._pending[: cut + 1], self._pending[cut + 1 :]
            self._line(line)
            self._written = 0
        if self._marker is None and not _may_become_fence(self._pending):
            self.out.write(self._pending[self._written :])
            self._written = len(self._pending)
        self.out.flush()

    def finish(self) -> None:
        """Write whatever is held back (an unfinished line); leaves no colour open."""
        if self.color and self._pending:
            if self._marker is not None:
                self.out.write(self._highlight(self._pending))
            else:
                self.out.write(self._pending[self._written :])
        self._pending = ""
        self._written = 0
        self.out.flush()

    def _line(self, line: str) -> None:
        body = line[:-1]
        if self._marker is None:
            opened = _fence_open(body) if self._written == 0 else None
            if opened is not None:
                self._marker, info = opened
                self._lexer = lexer_for(info or self.language)
            self.out.write(line[self._written :])
        elif _fence_close(body, self._marker):
            self._marker = None
            self.out.write(line)
        else:
            self.out.write(self._highlight(line))

    def _highlight(self, code: str) -> str:
        return str(highlight(code, self._lexer, self._formatter))


def render_diff(diff: str, color: bool) -> str:
    """A unified diff, coloured for a terminal when `color`."""
    if not color or not diff:
        return diff
    return str(highlight(diff, DiffLexer(stripnl=False, ensurenl=False), TerminalFormatter()))


def render_code(code: str, language: str | None, color: bool) -> str:
    """A whole code text, highlighted when `color`."""
    if not color or not code:
        return code
    return str(highlight(code, lexer_for(language), TerminalFormatter()))
