"""Symbols and scopes: find a definition by name, the one around a line, a range of lines."""

from __future__ import annotations

import re

from ..errors import InputError
from .definitions import Definition, analyze, to_span
from .source import Source, Span


def name_parts(name: str) -> list[str]:
    """The parts of a qualified name: "Class.method" and "Type::fn" give two, a bare name one."""
    return [p for p in re.split(r"\.|::", name.strip()) if p]


def find_symbol(text: str, language: str | None, name: str) -> Span | None:
    """The span of the function, class or method called `name` ("Class.method" and "Type::fn" too).

    A bare name matches at any depth; the least nested match wins, then the first in the file.
    """
    analysis = analyze(text, language)
    if analysis is None:
        return None
    parts = name_parts(name)
    if not parts:
        return None
    want_chain = parts[:-1]
    matches: list[tuple[int, bool, int, Definition]] = []
    for definition in analysis.defs:
        if definition.name != parts[-1]:
            continue
        chain = definition.chain
        if want_chain and chain[-len(want_chain) :] != want_chain:
            continue
        # impl blocks share their type's name: prefer the type itself.
        matches.append((len(chain) - len(want_chain), definition.kind == "impl",
                        definition.start, definition))
    if not matches:
        return None
    best = min(matches, key=lambda m: m[:3])[3]
    return to_span(analysis.source, best)


def symbols(text: str, language: str | None) -> list[Span]:
    """Every definition in the file, in order (qualified names), for pickers and completion."""
    analysis = analyze(text, language)
    if analysis is None:
        return []
    return [to_span(analysis.source, d) for d in analysis.defs]


def _check_line(source: Source, line: int, what: str = "line") -> None:
    if not 1 <= line <= max(source.n_lines, 1) or (source.n_lines == 0 and line != 1):
        raise InputError(f"{what} {line} is out of range: the input has {source.n_lines} lines")


def enclosing_scope(text: str, language: str | None, line: int, col: int = 1) -> Span | None:
    """The innermost function, method or class around a 1-based `line` and 1-based `col`.

    None when no definition encloses the position or the language has no grammar.
    """
    analysis = analyze(text, language)
    source = analysis.source if analysis is not None else Source(text)
    _check_line(source, line)
    if analysis is None:
        return None
    start = source.line_starts[line - 1]
    offset = min(start + max(col, 1) - 1, source.line_end(start))
    inner: Definition | None = None
    for definition in analysis.defs:  # sorted: later starts are nested deeper
        if definition.start <= offset <= definition.end:
            inner = definition
    return to_span(source, inner) if inner is not None else None


def line_span(text: str, start_line: int, end_line: int) -> Span:
    """The span of lines start_line..end_line (1-based, inclusive), for --lines A:B."""
    source = Source(text)
    n = source.n_lines
    if start_line < 1 or end_line < start_line or end_line > n:
        if end_line < start_line:
            raise InputError(f"line range {start_line}:{end_line} is reversed")
        raise InputError(
            f"line range {start_line}:{end_line} is out of range: the input has {n} lines"
        )
    start = source.line_starts[start_line - 1]
    end = source.line_end(source.line_starts[end_line - 1])
    if text[end - 1 : end] == "\r":
        end -= 1  # a CRLF line's \r belongs to its line ending
    return Span(f"lines {start_line}-{end_line}", "lines", start_line, end_line, start, end)
