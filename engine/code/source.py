"""Spans and positions: tree-sitter counts UTF-8 bytes, every Span counts characters of the str."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Node


@dataclass(frozen=True)
class Span:
    """A region of a text: a symbol, a scope or a range of lines.

    start_byte and end_byte are CHARACTER offsets into the str (end exclusive), despite their names:
    they slice the Python string directly. A symbol's span starts at the beginning of its first line
    (its indentation, decorators and attached doc comments included) and ends where the symbol ends,
    before the newline. start_line and end_line are 1-based and inclusive.
    """

    name: str
    kind: str
    start_line: int
    end_line: int
    start_byte: int
    end_byte: int

    @property
    def lines(self) -> str:
        """"line 7" or "lines 7-12", for messages."""
        if self.start_line == self.end_line:
            return f"line {self.start_line}"
        return f"lines {self.start_line}-{self.end_line}"

    def describe(self) -> str:
        """A short human description, e.g. "function foo (lines 10-40)"."""
        if self.kind == "lines":
            return self.lines
        return f"{self.kind} {self.name} ({self.lines})"


def encode(text: str) -> bytes:
    # surrogatepass keeps texts read with surrogateescape encodable, and round-trips them.
    return text.encode("utf-8", "surrogatepass")


class Source:
    """A text with its line table; converts tree-sitter points to character offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0]
        find = text.find
        pos = find("\n")
        while pos != -1:
            self.line_starts.append(pos + 1)
            pos = find("\n", pos + 1)
        self.ascii = text.isascii()

    @property
    def n_lines(self) -> int:
        """Lines in the text; a final newline does not start another line."""
        n = len(self.line_starts)
        return n - 1 if self.text.endswith("\n") or not self.text else n

    def offset(self, row: int, byte_column: int) -> int:
        """The character offset of a tree-sitter point (row, column in UTF-8 bytes)."""
        start = self.line_starts[row] if row < len(self.line_starts) else len(self.text)
        if self.ascii or byte_column == 0:
            return start + byte_column
        line = encode(self.text[start : start + byte_column])
        # The line holds at least byte_column bytes; decode exactly that prefix.
        return start + len(line[:byte_column].decode("utf-8", "surrogatepass"))

    def start(self, node: Node) -> int:
        return self.offset(*node.start_point)

    def end(self, node: Node) -> int:
        return self.offset(*node.end_point)

    def line_of(self, offset: int) -> int:
        """The 1-based line holding character `offset`."""
        return bisect.bisect_right(self.line_starts, offset)

    def line_start(self, offset: int) -> int:
        return self.line_starts[self.line_of(offset) - 1]

    def line_end(self, offset: int) -> int:
        """The offset of the newline ending `offset`'s line (or the text's end)."""
        pos = self.text.find("\n", offset)
        return len(self.text) if pos == -1 else pos

    def only_space_before(self, offset: int) -> bool:
        return not self.text[self.line_start(offset) : offset].strip()

    def indent_at(self, offset: int) -> str:
        """The leading whitespace of `offset`'s line."""
        start = self.line_start(offset)
        line = self.text[start : self.line_end(offset)]
        return line[: len(line) - len(line.lstrip())]

    def span(self, name: str, kind: str, start: int, end: int) -> Span:
        last = self.line_of(max(start, end - 1))
        return Span(name, kind, self.line_of(start), last, start, end)
