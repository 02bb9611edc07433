"""Which nodes are functions, classes, ... in each language, found once per text and cached."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from ..languages import get_language
from .parse import parse
from .source import Source, Span

if TYPE_CHECKING:
    from tree_sitter import Node, Tree

# Each pattern captures the definition node under its kind and its name as @name.
QUERIES: dict[str, str] = {
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

_METHOD_PARENTS = frozenset({"class", "impl", "trait", "interface", "record", "enum"})
# Nodes that wrap a definition and belong to it (decorators, `export`, a one-spec Go `type`).
_WRAPPERS = frozenset({"decorated_definition", "export_statement", "type_declaration"})
# Siblings just above a definition that belong to it: doc comments, Rust attributes.
_ATTACHED = frozenset(
    {"comment", "line_comment", "block_comment", "attribute_item", "decorator"}
)


@dataclass(eq=False)
class Definition:
    node: Node  # the definition itself
    outer: Node  # the node that holds it with its decorators or `export`
    name: str
    kind: str
    start: int  # character offsets of the whole symbol (see Span)
    end: int
    parent: Definition | None = None
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
class Analysis:
    source: Source
    language: str
    tree: Tree
    defs: list[Definition] = field(default_factory=list)
    by_outer: dict[int, Definition] = field(default_factory=dict)


@lru_cache(maxsize=8)
def _query(language: str) -> object | None:
    grammar = get_language(language)
    pattern = QUERIES.get(language)
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
def analyze(text: str, language: str | None) -> Analysis | None:
    tree = parse(text, language)
    if tree is None or language is None:
        return None
    analysis = Analysis(Source(text), language, tree)
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
        definition = Definition(node, outer, name, kind, start, end, qualifier=qualifier)
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


def _extent(source: Source, outer: Node) -> tuple[int, int]:
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


def _link_parents(defs: list[Definition]) -> None:
    stack: list[Definition] = []
    for definition in defs:  # sorted by start, outer ones first
        while stack and not (definition.end <= stack[-1].end):
            stack.pop()
        definition.parent = stack[-1] if stack else None
        parent_kind = definition.parent.kind if definition.parent is not None else None
        if definition.kind == "function" and parent_kind in _METHOD_PARENTS:
            definition.kind = "method"
        stack.append(definition)


def to_span(source: Source, definition: Definition) -> Span:
    return source.span(definition.qualified_name, definition.kind, definition.start, definition.end)
