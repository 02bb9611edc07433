"""Code structure through tree-sitter: symbols, scopes, outlines, context budgets, completion stops.

Every offset this module hands out (Span.start_byte, Span.end_byte) counts CHARACTERS of the
Python str, not UTF-8 bytes, so callers can slice the text they passed in:
`text[span.start_byte:span.end_byte]`. Lines are 1-based and split on "\\n" only.

Without a grammar for the language every function degrades: symbols and scopes are None, outlines
are empty and budgets fall back to cutting the text at a line boundary.
"""

from __future__ import annotations

from ..languages import detect_language, has_grammar
from .budget import FittedContext, fit_to_budget
from .outline import outline
from .parse import compiles_as_python, parse, parses_cleanly
from .source import Span
from .symbols import enclosing_scope, find_symbol, line_span, name_parts, symbols
from .trim import trim_completion

__all__ = [
    "FittedContext",
    "Span",
    "compiles_as_python",
    "detect_language",
    "enclosing_scope",
    "find_symbol",
    "fit_to_budget",
    "has_grammar",
    "line_span",
    "name_parts",
    "outline",
    "parse",
    "parses_cleanly",
    "symbols",
    "trim_completion",
]
