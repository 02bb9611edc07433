"""Whether a rewrite is the kind of change its task allows: a doc task changes documentation only, a rename names only.

Both sides are parsed with tree-sitter and compared as sequences of leaves (each with its nesting depth, so a Python
statement moved out of its block differs), leaving out comments and, for Python, docstrings. Without a grammar for
the language nothing is checked (None), never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .code import parse

if TYPE_CHECKING:
    from tree_sitter import Node

# node types compared as one leaf: a string's content is one change, not a run of fragments
_STRING_TYPES = frozenset({
    "string", "concatenated_string", "string_literal", "raw_string_literal", "interpreted_string_literal",
    "template_string", "char_literal", "rune_literal",
})
_RENAME = re.compile(r"\brenam(e|ing)\b", re.IGNORECASE)
_SHOWN = 60  # characters of a line quoted in a reason


@dataclass(frozen=True)
class _Leaf:
    kind: str
    text: str
    depth: int
    line: int  # 0-based

    @property
    def is_name(self) -> bool:
        return self.kind.endswith("identifier")


def allowed_kind(task: str, instruction: str | None) -> str | None:
    """The kind of change a task allows ("doc", "rename"), or None when it may change anything."""
    if task == "doc":
        return "doc"
    if task == "refactor" and instruction and _RENAME.search(instruction):
        return "rename"
    return None


def _is_documentation(node: Node) -> bool:
    if "comment" in node.type:
        return True
    # a bare string statement (a Python docstring) does nothing but document
    return (
        node.type == "expression_statement"
        and node.named_child_count == 1
        and node.named_children[0].type in _STRING_TYPES
    )


def _leaves(text: str, language: str | None) -> list[_Leaf] | None:
    tree = parse(text, language)
    if tree is None:
        return None
    source = text.encode("utf-8", "surrogatepass")

    def walk(node: Node, depth: int) -> Iterator[_Leaf]:
        for child in node.children:
            if _is_documentation(child):
                continue
            if child.child_count == 0 or child.type in _STRING_TYPES:
                raw = source[child.start_byte : child.end_byte].decode("utf-8", "surrogatepass")
                if raw.strip():  # zero-width nodes (Python's block ends, MISSING) carry nothing
                    yield _Leaf(child.type, raw, depth, child.start_point[0])
            else:
                yield from walk(child, depth + 1)

    return list(walk(tree.root_node, 0))


def _quote(text: str, line: int) -> str:
    lines = text.split("\n")
    shown = lines[line].strip() if 0 <= line < len(lines) else ""
    if len(shown) > _SHOWN:
        shown = shown[: _SHOWN - 1] + "…"
    return f"`{shown}`"


def _where(old: str, new: str, a: _Leaf | None, b: _Leaf | None, shift: int) -> str:
    if a is None and b is not None:
        return f"it adds {_quote(new, b.line)} (line {b.line + 1 + shift})"
    if b is None and a is not None:
        return f"it removes {_quote(old, a.line)} (line {a.line + 1 + shift})"
    assert a is not None and b is not None
    before, after = _quote(old, a.line), _quote(new, b.line)
    if before == after:  # the same line, nested differently
        return f"{before} (line {b.line + 1 + shift}) moved to another block"
    return f"line {a.line + 1 + shift} {before} became {after}"


def _same(a: _Leaf, b: _Leaf) -> bool:
    return (a.kind, a.text, a.depth) == (b.kind, b.text, b.depth)


def _same_but_names(a: _Leaf, b: _Leaf) -> bool:
    return a.depth == b.depth if a.is_name and b.is_name else _same(a, b)


def _first_difference(
    old: list[_Leaf], new: list[_Leaf], same: Callable[[_Leaf, _Leaf], bool]
) -> tuple[_Leaf | None, _Leaf | None] | None:
    for a, b in zip(old, new, strict=False):
        if not same(a, b):
            return a, b
    if len(old) != len(new):
        n = min(len(old), len(new))
        return (old[n] if n < len(old) else None), (new[n] if n < len(new) else None)
    return None


def _rename_problem(old: list[_Leaf], new: list[_Leaf], shift: int) -> str | None:
    """Names must map one to one: each old name to a single new one, no two old names to the same one."""
    forward: dict[str, tuple[str, _Leaf]] = {}
    backward: dict[str, str] = {}
    for a, b in zip(old, new, strict=True):
        if not a.is_name:
            continue
        seen = forward.setdefault(a.text, (b.text, b))
        if seen[0] != b.text:
            first, later = seen[1].line + 1 + shift, b.line + 1 + shift
            return f"`{a.text}` became `{seen[0]}` on line {first} but `{b.text}` on line {later}"
        merged = backward.setdefault(b.text, a.text)
        if merged != a.text:
            return f"`{merged}` and `{a.text}` both became `{b.text}` (line {b.line + 1 + shift})"
    return None


def kind_violation(
    task: str, instruction: str | None, old: str, new: str, language: str | None, *, first_line: int = 1
) -> str | None:
    """Why `new` changes more than `task` allows over `old`, in one line; None when it does not (or cannot tell).

    old and new are the code the task was given and the code it proposes (a region or a whole file); lines in the
    reason are numbered from `first_line`, the region's first line in its file.
    """
    kind = allowed_kind(task, instruction)
    if kind is None:
        return None
    before, after = _leaves(old, language), _leaves(new, language)
    if before is None or after is None:
        return None
    shift = first_line - 1
    if kind == "doc":
        found = _first_difference(before, after, _same)
        if found is None:
            return None
        return "a doc task should change only comments and docstrings, but " + _where(old, new, *found, shift)
    found = _first_difference(before, after, _same_but_names)
    if found is not None:
        return "a rename should change only names, but " + _where(old, new, *found, shift)
    problem = _rename_problem(before, after, shift)
    return None if problem is None else "a rename should rename consistently, but " + problem
