"""Pure checks on a model's result: did it make the asked change, and only that?

Each check compares Python's own parse trees (the `ast` module, independent of the tree-sitter parser that
qcode uses to refuse a rewrite), so a check can catch a refusal that should have happened. Comments and
formatting are not in the tree: a rewrite may reflow them freely.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass

_TYPING_MODULES = frozenset(("typing", "collections.abc", "__future__", "typing_extensions"))


def parse(text: str) -> ast.Module | None:
    """The module's tree, or None when Python cannot parse it."""
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):  # ValueError: a NUL byte in the source
        return None


def find_function(tree: ast.AST, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The first function called `name` (at any depth), or None."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node
    return None


def _dump(tree: ast.AST) -> str:
    return ast.dump(tree, annotate_fields=True, include_attributes=False)


# --- type hints ---------------------------------------------------------------------------------


def missing_annotations(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """The parameters (and "return") that carry no annotation; self and cls need none."""
    args = function.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    if args.vararg:
        params.append(args.vararg)
    if args.kwarg:
        params.append(args.kwarg)
    missing = [
        p.arg for index, p in enumerate(params)
        if p.annotation is None and not (index == 0 and p.arg in ("self", "cls"))
    ]
    if function.returns is None:
        missing.append("return")
    return missing


class _StripAnnotations(ast.NodeTransformer):
    """Remove what adding type hints may add: annotations and imports from typing modules."""

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.annotation = None
        return node

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        node.returns = None
        self.generic_visit(node)
        return node

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST | None:
        if node.value is None:
            return None  # a bare declaration `x: int` does nothing at run time
        return ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno)

    def visit_Import(self, node: ast.Import) -> ast.AST | None:
        kept = [alias for alias in node.names if alias.name not in _TYPING_MODULES]
        return ast.Import(names=kept) if kept else None

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | None:
        return None if node.module in _TYPING_MODULES else node


def same_except_annotations(original: ast.AST, result: ast.AST) -> bool:
    """Equal trees once annotations and typing imports are taken out of both."""
    strip = _StripAnnotations()
    return _dump(strip.visit(_copy(original))) == _dump(strip.visit(_copy(result)))


# --- docstrings ---------------------------------------------------------------------------------


def has_docstring(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return bool((ast.get_docstring(function) or "").strip())


class _StripDocstrings(ast.NodeTransformer):
    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                first.value.value, str
            ):
                node.body = body[1:] or [ast.Pass()]
        return node


def same_except_docstrings(original: ast.AST, result: ast.AST) -> bool:
    """Equal trees once every docstring is taken out of both (comments are not in the tree)."""
    strip = _StripDocstrings()
    return _dump(strip.visit(_copy(original))) == _dump(strip.visit(_copy(result)))


# --- renames ------------------------------------------------------------------------------------


def identifiers(tree: ast.AST) -> set[str]:
    """Every name bound or used: variables, parameters, functions, classes, imported names."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name)
    return names


class _Rename(ast.NodeTransformer):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def _swap(self, name: str) -> str:
        return self.new if name == self.old else name

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self._swap(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        self.generic_visit(node)
        node.arg = self._swap(node.arg)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.generic_visit(node)
        node.name = self._swap(node.name)
        return node


def renamed_only(original: ast.AST, result: ast.AST, old: str, new: str) -> bool:
    """`result` is `original` with `old` renamed to `new` and nothing else changed, *if* `old` is gone from
    where it was renamed (mapping `new` back cannot tell a half-done rename: check `identifiers` for that)."""
    back = _Rename(new, old).visit(_copy(result))
    return _dump(back) == _dump(original)


# --- explanations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactCheck:
    found: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.missing


def check_facts(answer: str, facts: Iterable[str]) -> FactCheck:
    """Which facts (each a case-insensitive regular expression) the answer mentions."""
    found: list[str] = []
    missing: list[str] = []
    for fact in facts:
        (found if re.search(fact, answer, re.IGNORECASE | re.DOTALL) else missing).append(fact)
    return FactCheck(tuple(found), tuple(missing))


def _copy(tree: ast.AST) -> ast.AST:
    return copy.deepcopy(tree)  # the transformers change trees in place
