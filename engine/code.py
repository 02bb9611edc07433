"""Code structure through tree-sitter: symbols, scopes, outlines, context budgets, completion stops.

Every offset this module hands out (Span.start_byte, Span.end_byte) counts CHARACTERS of the
Python str, not UTF-8 bytes, so callers can slice the text they passed in:
`text[span.start_byte:span.end_byte]`. Lines are 1-based and split on "\\n" only.

Without a grammar for the language every function degrades: symbols and scopes are None, outlines
are empty and budgets fall back to cutting the text at a line boundary.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from .errors import ContextError, InputError
from .languages import detect_language, get_language, has_grammar, line_comment

if TYPE_CHECKING:
    from tree_sitter import Node, Tree

__all__ = [
    "FittedContext",
    "Span",
    "detect_language",
    "enclosing_scope",
    "find_symbol",
    "fit_to_budget",
    "has_grammar",
    "line_span",
    "outline",
    "parse",
    "parses_cleanly",
    "symbols",
    "trim_completion",
]


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


@dataclass(frozen=True)
class FittedContext:
    """Text cut to fit a token budget; `note` says in one line what was left out, or is None."""

    text: str
    trimmed: bool
    note: str | None


# --------------------------------------------------------------------------------------------
# Parsing, and converting tree-sitter's byte positions to character offsets


def parse(text: str, language: str | None) -> Tree | None:
    """A fresh tree-sitter parse of `text`, or None when `language` has no grammar installed."""
    grammar = get_language(language)
    if grammar is None:
        return None
    import tree_sitter

    return tree_sitter.Parser(grammar).parse(_encode(text))


def parses_cleanly(text: str, language: str | None) -> bool | None:
    """True when `text` parses without ERROR or MISSING nodes; None when there is no grammar."""
    tree = parse(text, language)
    if tree is None:
        return None
    return not tree.root_node.has_error


def _encode(text: str) -> bytes:
    # surrogatepass keeps texts read with surrogateescape encodable, and round-trips them.
    return text.encode("utf-8", "surrogatepass")


class _Source:
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
        line = _encode(self.text[start : start + byte_column])
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


# --------------------------------------------------------------------------------------------
# Definitions: which nodes are functions, classes, ... in each language

# Each pattern captures the definition node under its kind and its name as @name.
_QUERIES: dict[str, str] = {
    "python": """
        (function_definition name: (identifier) @name) @function
        (class_definition name: (identifier) @name) @class
    """,
    "javascript": """
        (function_declaration name: (identifier) @name) @function
        (generator_function_declaration name: (identifier) @name) @function
        (class_declaration name: (identifier) @name) @class
        (method_definition name: (_) @name) @method
        (lexical_declaration (variable_declarator name: (identifier) @name
            value: [(arrow_function) (function_expression) (generator_function)])) @function
        (variable_declaration (variable_declarator name: (identifier) @name
            value: [(arrow_function) (function_expression) (generator_function)])) @function
    """,
    "rust": """
        (function_item name: (identifier) @name) @function
        (function_signature_item name: (identifier) @name) @function
        (struct_item name: (type_identifier) @name) @struct
        (enum_item name: (type_identifier) @name) @enum
        (union_item name: (type_identifier) @name) @struct
        (trait_item name: (type_identifier) @name) @trait
        (impl_item type: (_) @name) @impl
        (mod_item name: (identifier) @name) @module
        (macro_definition name: (identifier) @name) @macro
    """,
    "go": """
        (function_declaration name: (identifier) @name) @function
        (method_declaration receiver: (parameter_list) @receiver
            name: (field_identifier) @name) @method
        (type_spec name: (type_identifier) @name) @type
    """,
    "java": """
        (class_declaration name: (identifier) @name) @class
        (interface_declaration name: (identifier) @name) @interface
        (enum_declaration name: (identifier) @name) @enum
        (record_declaration name: (identifier) @name) @record
        (annotation_type_declaration name: (identifier) @name) @interface
        (method_declaration name: (identifier) @name) @method
        (constructor_declaration name: (identifier) @name) @constructor
    """,
    "bash": """
        (function_definition name: (word) @name) @function
    """,
}

_FUNCTION_KINDS = frozenset({"function", "method", "constructor"})
# Kinds whose body holds further definitions: the outline keeps their members' signatures.
_CONTAINER_KINDS = frozenset(
    {"class", "impl", "trait", "module", "interface", "record", "struct", "enum"}
)
_METHOD_PARENTS = frozenset({"class", "impl", "trait", "interface", "record", "enum"})
# Nodes that wrap a definition and belong to it (decorators, `export`, a one-spec Go `type`).
_WRAPPERS = frozenset({"decorated_definition", "export_statement", "type_declaration"})
# Siblings just above a definition that belong to it: doc comments, Rust attributes.
_ATTACHED = frozenset(
    {"comment", "line_comment", "block_comment", "attribute_item", "decorator"}
)
_COMMENTS = frozenset({"comment", "line_comment", "block_comment"})
_IMPORTS = frozenset(
    {
        "import_statement", "import_from_statement", "future_import_statement",
        "use_declaration", "import_declaration", "package_clause", "package_declaration",
        "extern_crate_declaration",
    }
)


@dataclass(eq=False)
class _Def:
    node: Node  # the definition itself
    outer: Node  # the node that holds it with its decorators or `export`
    name: str
    kind: str
    start: int  # character offsets of the whole symbol (see Span)
    end: int
    parent: _Def | None = None
    qualifier: str | None = None  # a Go method's receiver type

    @property
    def chain(self) -> list[str]:
        """Names of the enclosing definitions, outermost first."""
        names: list[str] = []
        parent = self.parent
        while parent is not None:
            names.append(parent.name)
            parent = parent.parent
        if self.qualifier and not names:
            names.append(self.qualifier)
        return names[::-1]

    @property
    def qualified_name(self) -> str:
        return ".".join([*self.chain, self.name])


@dataclass
class _Analysis:
    source: _Source
    language: str
    tree: Tree
    defs: list[_Def] = field(default_factory=list)
    by_outer: dict[int, _Def] = field(default_factory=dict)


@lru_cache(maxsize=8)
def _query(language: str) -> object | None:
    grammar = get_language(language)
    pattern = _QUERIES.get(language)
    if grammar is None or pattern is None:
        return None
    import tree_sitter

    return tree_sitter.Query(grammar, pattern)


def _type_name(node: Node) -> str:
    """The bare type name in a type expression: `*P[T]` -> P, `(p *P)` -> P, `a::B<T>` -> B."""
    for wanted in ("type_identifier", "identifier"):
        stack = [node]
        while stack:  # breadth first: the outermost name wins
            current = stack.pop(0)
            if current.type == wanted:
                return _text(current)
            if current.type == "type_arguments":
                continue
            stack.extend(current.named_children)
    return _text(node)


def _text(node: Node) -> str:
    raw = node.text
    return raw.decode("utf-8", "surrogatepass") if raw is not None else ""


@lru_cache(maxsize=8)
def _analyze(text: str, language: str | None) -> _Analysis | None:
    tree = parse(text, language)
    if tree is None or language is None:
        return None
    analysis = _Analysis(_Source(text), language, tree)
    query = _query(language)
    if query is None:
        return analysis
    import tree_sitter

    assert isinstance(query, tree_sitter.Query)
    seen: set[int] = set()
    for _, captures in tree_sitter.QueryCursor(query).matches(tree.root_node):
        kind = next((k for k in captures if k not in ("name", "receiver")), None)
        if kind is None or not captures.get("name"):
            continue
        node = captures[kind][0]
        if node.id in seen:
            continue
        seen.add(node.id)
        name_node = captures["name"][0]
        name = _type_name(name_node) if kind == "impl" else _text(name_node)
        qualifier = None
        if "receiver" in captures:
            qualifier = _type_name(captures["receiver"][0])
        outer = _outer(node)
        start, end = _extent(analysis.source, outer)
        definition = _Def(node, outer, name, kind, start, end, qualifier=qualifier)
        analysis.defs.append(definition)
        analysis.by_outer[outer.id] = definition
    analysis.defs.sort(key=lambda d: (d.start, -d.end))
    _link_parents(analysis.defs)
    return analysis


def _outer(node: Node) -> Node:
    parent = node.parent
    while parent is not None and parent.type in _WRAPPERS:
        if parent.type == "type_declaration" and parent.named_child_count != 1:
            break
        node, parent = parent, parent.parent
    return node


def _extent(source: _Source, outer: Node) -> tuple[int, int]:
    """The character range of a definition with its indentation and attached comments."""
    start = source.start(outer)
    end = source.end(outer)
    if not source.only_space_before(start):
        return start, end
    first = outer
    sibling = outer.prev_named_sibling
    while sibling is not None and sibling.type in _ATTACHED:
        s_start, s_end = source.start(sibling), source.end(sibling)
        if not source.only_space_before(s_start):
            break  # a trailing comment of the previous statement
        gap = source.text[s_end : source.start(first)]
        if gap.count("\n") > 1 or gap.strip():
            break  # a blank line separates it from the definition
        first = sibling
        sibling = sibling.prev_named_sibling
    return source.line_start(source.start(first)), end


def _link_parents(defs: list[_Def]) -> None:
    stack: list[_Def] = []
    for definition in defs:  # sorted by start, outer ones first
        while stack and not (definition.end <= stack[-1].end):
            stack.pop()
        definition.parent = stack[-1] if stack else None
        parent_kind = definition.parent.kind if definition.parent is not None else None
        if definition.kind == "function" and parent_kind in _METHOD_PARENTS:
            definition.kind = "method"
        stack.append(definition)


def _to_span(source: _Source, definition: _Def) -> Span:
    return source.span(definition.qualified_name, definition.kind, definition.start, definition.end)


# --------------------------------------------------------------------------------------------
# Symbols and scopes


def find_symbol(text: str, language: str | None, name: str) -> Span | None:
    """The span of the function, class or method called `name` ("Class.method" and "Type::fn" too).

    A bare name matches at any depth; the least nested match wins, then the first in the file.
    """
    analysis = _analyze(text, language)
    if analysis is None:
        return None
    parts = [p for p in re.split(r"\.|::", name.strip()) if p]
    if not parts:
        return None
    want_chain = parts[:-1]
    matches: list[tuple[int, bool, int, _Def]] = []
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
    return _to_span(analysis.source, best)


def symbols(text: str, language: str | None) -> list[Span]:
    """Every definition in the file, in order (qualified names), for pickers and completion."""
    analysis = _analyze(text, language)
    if analysis is None:
        return []
    return [_to_span(analysis.source, d) for d in analysis.defs]


def _check_line(source: _Source, line: int, what: str = "line") -> None:
    if not 1 <= line <= max(source.n_lines, 1) or (source.n_lines == 0 and line != 1):
        raise InputError(f"{what} {line} is out of range: the input has {source.n_lines} lines")


def enclosing_scope(text: str, language: str | None, line: int, col: int = 1) -> Span | None:
    """The innermost function, method or class around a 1-based `line` and 1-based `col`.

    None when no definition encloses the position or the language has no grammar.
    """
    analysis = _analyze(text, language)
    source = analysis.source if analysis is not None else _Source(text)
    _check_line(source, line)
    if analysis is None:
        return None
    start = source.line_starts[line - 1]
    offset = min(start + max(col, 1) - 1, source.line_end(start))
    inner: _Def | None = None
    for definition in analysis.defs:  # sorted: later starts are nested deeper
        if definition.start <= offset <= definition.end:
            inner = definition
    return _to_span(source, inner) if inner is not None else None


def line_span(text: str, start_line: int, end_line: int) -> Span:
    """The span of lines start_line..end_line (1-based, inclusive), for --lines A:B."""
    source = _Source(text)
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


# --------------------------------------------------------------------------------------------
# Outlines: the file with bodies replaced by "..."


@dataclass
class _Cut:
    start: int
    end: int
    replacement: str
    what: str  # "body", "statement" or "comment": for the note
    label: str = ""  # "function foo" for bodies


@dataclass
class _Outline:
    text: str
    cuts: list[_Cut]


def _docstring_cut(source: _Source, statement: Node) -> _Cut | None:
    """Shorten a Python docstring statement to its first line."""
    if statement.type != "expression_statement" or statement.named_child_count != 1:
        return None
    string = statement.named_children[0]
    if string.type != "string" or string.start_point.row == string.end_point.row:
        return None
    parts = string.named_children
    if len(parts) < 2 or parts[0].type != "string_start" or parts[-1].type != "string_end":
        return None
    content = source.text[source.end(parts[0]) : source.start(parts[-1])]
    first = next((ln.strip() for ln in content.split("\n") if ln.strip()), "")
    return _Cut(source.end(parts[0]), source.start(parts[-1]), first, "docstring")


def _body_of(definition: _Def) -> Node | None:
    body = definition.node.child_by_field_name("body")
    if body is None and definition.node.type in ("lexical_declaration", "variable_declaration"):
        declarator = definition.node.named_children[0]
        value = declarator.child_by_field_name("value")
        body = value.child_by_field_name("body") if value is not None else None
    return body


def _body_cuts(analysis: _Analysis, definition: _Def, body: Node) -> list[_Cut]:
    source = analysis.source
    start, end = source.start(body), source.end(body)
    label = f"{definition.kind} {definition.qualified_name}"
    if source.line_of(start) == source.line_of(max(start, end - 1)):
        return []  # a one-line body costs little and says a lot
    if body.type == "block" and analysis.language == "python":
        cuts: list[_Cut] = []
        statements = body.named_children
        first = next((s for s in statements if s.type not in _COMMENTS), None)
        doc = _docstring_cut(source, first) if first is not None else None
        if first is not None and (doc is not None or _is_docstring(first)):
            if doc is not None:
                cuts.append(doc)
            rest = source.end(first)
            if source.text[rest:end].strip():
                indent = source.indent_at(source.start(first))
                cuts.append(_Cut(rest, end, "\n" + indent + "...", "body", label))
            return cuts
        return [_Cut(start, end, "...", "body", label)]
    text = source.text[start:end]
    if text.startswith("{") and text.endswith("}"):
        if not text[1:-1].strip():
            return []
        return [_Cut(start + 1, end - 1, " ... ", "body", label)]
    return [_Cut(start, end, "...", "body", label)]


def _is_docstring(statement: Node) -> bool:
    return (
        statement.type == "expression_statement"
        and statement.named_child_count == 1
        and statement.named_children[0].type == "string"
    )


def _container_children(definition: _Def) -> list[Node]:
    body = _body_of(definition)
    return body.named_children if body is not None else []


def _collect_cuts(analysis: _Analysis, children: list[Node], cuts: list[_Cut]) -> None:
    source = analysis.source
    for child in children:
        start, end = source.start(child), source.end(child)
        definition = analysis.by_outer.get(child.id)
        if child.type in _COMMENTS:
            if source.only_space_before(start):
                # Whole lines of comment go, newline included.
                line_end = source.line_end(max(start, end - 1))
                stop = min(line_end + 1, len(source.text))
                cuts.append(_Cut(source.line_start(start), stop, "", "comment"))
            continue
        if definition is not None:
            if definition.kind in _CONTAINER_KINDS and _body_of(definition) is not None:
                _collect_cuts(analysis, _container_children(definition), cuts)
                continue
            body = _body_of(definition)
            if definition.kind in _FUNCTION_KINDS and body is not None:
                cuts.extend(_body_cuts(analysis, definition, body))
                continue
        if child.type in _IMPORTS:
            continue
        if analysis.language == "python" and _is_docstring(child):
            doc = _docstring_cut(source, child)
            if doc is not None:
                cuts.append(doc)
            continue
        # Any other statement: keep it when short, else its first line.
        first_line_end = source.line_end(start)
        if source.line_of(end) - source.line_of(start) >= 3 and first_line_end < end:
            # A trailing comment on the statement's last line goes with it.
            last_line_end = source.line_end(end)
            if source.text[end:last_line_end].lstrip().startswith(_comment_starts(analysis)):
                end = last_line_end
            cuts.append(_Cut(first_line_end, end, " ...", "statement"))


def _comment_starts(analysis: _Analysis) -> tuple[str, ...]:
    marker = line_comment(analysis.language)
    return (marker, "/*") if marker else ("/*",)


def _split_around(source: _Source, cut: _Cut, focus: Span) -> list[_Cut]:
    """The parts of `cut` outside `focus`, each given a placeholder of its own."""
    lo, hi = focus.start_byte, focus.end_byte
    if cut.end <= lo or cut.start >= hi:
        return [cut]
    parts: list[_Cut] = []
    indent = source.indent_at(lo)
    if cut.start < lo and source.text[cut.start : lo].strip():
        if cut.what == "comment":
            parts.append(_Cut(cut.start, lo, "", cut.what, cut.label))
        else:
            lead = "" if source.only_space_before(cut.start) else "\n" + indent
            parts.append(_Cut(cut.start, lo, lead + "...\n", cut.what, cut.label))
    if cut.end > hi and source.text[hi : cut.end].strip():
        if cut.what == "comment":
            parts.append(_Cut(hi, cut.end, "\n", cut.what, cut.label))
        else:
            tail = source.text[hi : cut.end]
            trailing = tail[len(tail.rstrip()) :]
            parts.append(_Cut(hi, cut.end, "\n" + indent + "..." + trailing, cut.what, cut.label))
    return parts


def _build_outline(
    text: str, language: str | None, focus: Span | None, keep_focus: bool
) -> _Outline | None:
    analysis = _analyze(text, language)
    if analysis is None or language not in _QUERIES:
        return None
    source = analysis.source
    cuts: list[_Cut] = []
    _collect_cuts(analysis, analysis.tree.root_node.named_children, cuts)
    if focus is not None:
        cuts = [part for cut in cuts for part in _split_around(source, cut, focus)]
        if not keep_focus:
            # One comment line, at the symbol's indentation, stands for the excluded part.
            marker = f"{line_comment(language) or ''} ... {focus.describe()} is left out here"
            marker = marker.strip()
            start = focus.start_byte
            if source.only_space_before(start):
                start = source.line_start(start)
                marker = source.indent_at(start) + marker
            cuts.append(_Cut(start, focus.end_byte, marker, "focus"))
    cuts.sort(key=lambda c: c.start)
    pieces: list[str] = []
    pos = 0
    kept: list[_Cut] = []
    for cut in cuts:
        if cut.start < pos:
            continue  # nested inside an earlier cut
        pieces.append(text[pos : cut.start])
        pieces.append(cut.replacement)
        pos = cut.end
        kept.append(cut)
    pieces.append(text[pos:])
    result = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", "".join(pieces)).strip("\n")
    return _Outline(result + "\n" if result.strip() else "", kept)


def outline(text: str, language: str | None, exclude: Span | None = None) -> str:
    """The file's skeleton: imports, signatures and docstring first lines, bodies shown as "...".

    `exclude` (a symbol or a line range) is replaced by a one-line comment saying it is left out,
    for prompts that give it in full elsewhere. "" when the language has no grammar or no
    definitions table.
    """
    built = _build_outline(text, language, exclude, keep_focus=False)
    return built.text if built is not None else ""


# --------------------------------------------------------------------------------------------
# Fitting a text into a token budget


def _ranges(lines: list[tuple[int, int]], limit: int = 4) -> str:
    shown = [f"{a}-{b}" if a != b else f"{a}" for a, b in lines[:limit]]
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return ", ".join(shown) + more


def _left_out(source: _Source, cuts: list[_Cut]) -> str:
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
    source = _Source(text)
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
    source = _Source(text)
    if focus is not None:
        built = _build_outline(text, language, focus, keep_focus=True)
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
    built = _build_outline(text, language, None, keep_focus=False)
    if built is not None and count_tokens(built.text) <= budget_tokens:
        note = "kept an outline of the file" + _left_out(source, built.cuts)
        return FittedContext(built.text, True, prefix + note)
    head, note = _head(text, language, budget_tokens, count_tokens, 1, "the file")
    return FittedContext(head, True, prefix + note)


# --------------------------------------------------------------------------------------------
# Where a completion should stop

# A line that closes a block (brace languages, shell and Ruby-like keywords).
_CLOSER = re.compile(r"^(\}|\)|\]|end\b|fi\b|done\b|esac\b)")


def _indent_width(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _opens_block(line: str, language: str | None) -> bool:
    code = line.rstrip()
    if language == "python":
        return code.endswith(":")
    return code.endswith(("{", "(", "[")) or (language is None and code.endswith(":"))


def _lines_with_ends(text: str) -> Iterator[tuple[int, str, bool]]:
    """(offset, line, terminated) for each line of `text`."""
    pos = 0
    while pos < len(text):
        nl = text.find("\n", pos)
        if nl == -1:
            yield pos, text[pos:], False
            return
        yield pos, text[pos:nl], True
        pos = nl + 1


def trim_completion(
    generated: str, prefix: str, suffix: str, language: str | None, *, final: bool = False
) -> tuple[str, bool]:
    """Cut a completion generated at a cursor (between `prefix` and `suffix`) where it should stop.

    Returns (text to insert, hit_boundary). hit_boundary is True once the completion has run past
    what belongs at the cursor, so the caller can stop generating. The boundaries:
    - the cursor is inside a line of code: the end of that line, less any text the line already
      ends with (`foo(` + `a, b)` before a suffix `)` gives `a, b`);
    - a later line that dedents below the cursor's block (a closing `}` is kept unless the suffix
      already has it);
    - after the completion went into a deeper block, a blank line and a line back at its level;
    - a line identical to the suffix's next non-blank line (it would be duplicated).
    The last, unterminated line may still grow: it is judged for duplication and for a closing
    `}` only when `final` is True (generation ended). With `final`, trailing blank lines go too.
    """
    current = prefix.rsplit("\n", 1)[-1]
    rest_of_line = suffix.split("\n", 1)[0].rstrip("\r")
    if current.strip() and rest_of_line.strip():
        return _trim_single_line(generated, rest_of_line, final)

    if rest_of_line.strip():
        # The cursor sits in the indentation of an existing line: insert whole lines before it.
        next_line: str | None = current + rest_of_line
        ending = "\n" + current
    else:
        later = suffix.split("\n")[1:]
        next_line = next((ln.rstrip("\r") for ln in later if ln.strip()), None)
        ending = ""

    def finish(text: str) -> str:
        body = re.sub(r"(\n[ \t\r]*)+$", "", text)
        return body + ending if body.strip() else ""

    before = prefix[: len(prefix) - len(current)].rstrip("\n").rsplit("\n", 1)[-1]
    base: int | None = None  # lines below this indentation leave the cursor's block
    if current.strip():
        base = _indent_width(current) + (1 if _opens_block(current, language) else 0)
    elif current:
        base = _indent_width(current)
    elif before.strip() and _opens_block(before, language):
        base = _indent_width(before) + 1
    closers = language != "python"

    went_deeper = False
    blank_seen = False
    for index, (offset, line, terminated) in enumerate(_lines_with_ends(generated)):
        complete = terminated or final
        if index == 0:
            whole = current + line  # the cursor's line as completed
            if not whole.strip():
                continue
            if not current.strip() and complete and next_line is not None and (
                whole.rstrip() == next_line.rstrip()
            ):
                return "", True
            if current.strip() and terminated and _opens_block(whole, language):
                base = _indent_width(whole) + 1
            elif base is None:
                base = _indent_width(whole)
            continue
        if not line.strip():
            blank_seen = True
            continue
        width = _indent_width(line)
        if base is None:
            base = width
            continue
        if complete and next_line is not None and line.rstrip() == next_line.rstrip():
            return finish(generated[:offset]), True
        if width < base:
            if closers and _CLOSER.match(line.strip()):
                if not complete:
                    break  # wait for the closing line to end
                if next_line is None or next_line.strip() != line.strip():
                    return finish(generated[: offset + len(line)]), True
            return finish(generated[:offset]), True
        if width == base and went_deeper and blank_seen:
            return finish(generated[:offset]), True
        went_deeper = went_deeper or width > base
        blank_seen = False
    return (finish(generated) if final else generated), False


def _trim_single_line(generated: str, rest_of_line: str, final: bool) -> tuple[str, bool]:
    newline = generated.find("\n")
    if newline == -1 and not final:
        return generated, False
    line = generated if newline == -1 else generated[:newline]
    tail = rest_of_line.strip()
    if line.rstrip().endswith(tail):
        # The model wrote what already follows the cursor: keep only what comes before it.
        return line.rstrip()[: -len(tail)], True
    return line, newline != -1
