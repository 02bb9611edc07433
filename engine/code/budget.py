"""Fitting a text into a token budget: whole, else an outline, else a head cut at a clean place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ContextError
from .outline import Cut, build_outline
from .parse import parse
from .source import Source, Span


@dataclass(frozen=True)
class FittedContext:
    """Text cut to fit a token budget; `note` says in one line what was left out, or is None."""

    text: str
    trimmed: bool
    note: str | None


def _ranges(lines: list[tuple[int, int]], limit: int = 4) -> str:
    shown = [f"{a}-{b}" if a != b else f"{a}" for a, b in lines[:limit]]
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return ", ".join(shown) + more


def _left_out(source: Source, cuts: list[Cut]) -> str:
    # A body split around the focus is still one body: group its pieces by label.
    bodies: dict[str, tuple[int, int]] = {}
    for cut in cuts:
        if cut.what == "body":
            first, last = source.line_of(cut.start), source.line_of(max(cut.start, cut.end - 1))
            seen = bodies.get(cut.label, (first, last))
            bodies[cut.label] = (min(seen[0], first), max(seen[1], last))
    statements = [c for c in cuts if c.what == "statement"]
    parts: list[str] = []
    if bodies:
        spans = sorted(bodies.values())
        noun = "function body" if len(bodies) == 1 else "function bodies"
        parts.append(f"{len(bodies)} {noun} (lines {_ranges(spans)})")
    if statements:
        noun = "long statement" if len(statements) == 1 else "long statements"
        parts.append(f"the rest of {len(statements)} {noun}")
    if any(c.what in ("comment", "docstring") for c in cuts):
        parts.append("comments and docstrings past their first line")
    return "; left out " + ", ".join(parts) if parts else ""


def _largest_fitting(
    text: str, ends: list[int], budget: int, count_tokens: Callable[[str], int]
) -> int | None:
    """The largest cut point in `ends` (ascending) whose prefix fits; binary search."""
    lo, hi, best = 0, len(ends) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if count_tokens(text[: ends[mid]]) <= budget:
            best, lo = ends[mid], mid + 1
        else:
            hi = mid - 1
    return best


def _head(
    text: str,
    language: str | None,
    budget: int,
    count_tokens: Callable[[str], int],
    first_line: int,
    what: str,
) -> tuple[str, str]:
    """The longest head of `text` that fits, cut after a top-level node or else a line."""
    source = Source(text)
    line_ends = [source.line_end(s) for s in source.line_starts[: source.n_lines]]
    cut = _largest_fitting(text, line_ends, budget, count_tokens)
    how = "at a line boundary"
    tree = parse(text, language)
    if tree is not None and cut is not None:
        node_ends = sorted({source.line_end(source.end(n) - 1) for n in
                            tree.root_node.named_children if source.end(n) > 0})
        at_node = _largest_fitting(text, node_ends, budget, count_tokens)
        # A clean cut is worth some loss, but not most of the room (one huge class, say).
        if at_node is not None and at_node * 2 >= cut:
            cut, how = at_node, "after a top-level definition or statement"
    if cut is None or not text[:cut].strip():
        raise ContextError(
            f"the input does not fit the context: not even the first line of {what} "
            f"fits in {budget} tokens"
        )
    last = first_line + source.line_of(max(cut - 1, 0)) - 1
    total_last = first_line + source.n_lines - 1
    note = (
        f"kept lines {first_line}-{last} of {what} (cut {how}); "
        f"left out lines {last + 1}-{total_last}"
    )
    return text[:cut], note


def fit_to_budget(
    text: str,
    language: str | None,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    focus: Span | None = None,
) -> FittedContext:
    """Fit `text` into `budget_tokens`, saying what was left out.

    Without a focus: the whole text, else its outline, else its head cut at a top-level node.
    With a focus (the symbol or lines the task is about): the whole text, else the focus in full
    in place within an outline of the rest, else the focus alone, else the focus's head.
    Raises ContextError when not even one line fits.
    """
    if count_tokens(text) <= budget_tokens:
        return FittedContext(text, False, None)
    prefix = "input trimmed to fit the context: "
    source = Source(text)
    if focus is not None:
        built = build_outline(text, language, focus, keep_focus=True)
        if built is not None and count_tokens(built.text) <= budget_tokens:
            note = (f"kept {focus.describe()} in full and an outline of the rest"
                    + _left_out(source, built.cuts))
            return FittedContext(built.text, True, prefix + note)
        focus_text = text[focus.start_byte : focus.end_byte]
        if count_tokens(focus_text) <= budget_tokens:
            note = (f"kept only {focus.describe()}; left out the rest of the file "
                    f"({source.n_lines} lines)")
            return FittedContext(focus_text, True, prefix + note)
        head, note = _head(focus_text, language, budget_tokens, count_tokens,
                           focus.start_line, focus.describe())
        return FittedContext(head, True, prefix + note + " and the rest of the file")
    built = build_outline(text, language, None, keep_focus=False)
    if built is not None and count_tokens(built.text) <= budget_tokens:
        note = "kept an outline of the file" + _left_out(source, built.cuts)
        return FittedContext(built.text, True, prefix + note)
    head, note = _head(text, language, budget_tokens, count_tokens, 1, "the file")
    return FittedContext(head, True, prefix + note)
