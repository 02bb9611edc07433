"""Parsing with the installed grammar, and whether a text parses at all."""

from __future__ import annotations

import ast
import warnings
from typing import TYPE_CHECKING

from ..languages import get_language
from .source import encode

if TYPE_CHECKING:
    from tree_sitter import Tree


def parse(text: str, language: str | None) -> Tree | None:
    """A fresh tree-sitter parse of `text`, or None when `language` has no grammar installed."""
    grammar = get_language(language)
    if grammar is None:
        return None
    import tree_sitter

    return tree_sitter.Parser(grammar).parse(encode(text))


def parses_cleanly(text: str, language: str | None) -> bool | None:
    """True when `text` parses without ERROR or MISSING nodes; None when there is no grammar."""
    tree = parse(text, language)
    if tree is None:
        return None
    return not tree.root_node.has_error


def compiles_as_python(text: str) -> bool:
    """Whether this Python's own parser accepts `text`. Stricter than the tree-sitter grammar, which accepts some
    indentation errors (a statement at column 0 right after `for ...:`, seen in a model's rewrite), but it knows only
    this interpreter's syntax: compare with the original before calling a text broken."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like are warnings, not errors
            ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True
