"""Outlines: the file with bodies replaced by "...", saying what each cut left out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..languages import line_comment
from .definitions import QUERIES, Analysis, Definition, analyze
from .source import Source, Span

if TYPE_CHECKING:
    from tree_sitter import Node

_FUNCTION_KINDS = frozenset({"function", "method", "constructor"})
# Kinds whose body holds further definitions: the outline keeps their members' signatures.
_CONTAINER_KINDS = frozenset(
    {"class", "impl", "trait", "module", "interface", "record", "struct", "enum"}
)
_COMMENTS = frozenset({"comment", "line_comment", "block_comment"})
_IMPORTS = frozenset(
    {
        "import_statement", "import_from_statement", "future_import_statement",
        "use_declaration", "import_declaration", "package_clause", "package_declaration",
        "extern_crate_declaration",
    }
)


@dataclass
class Cut:
    start: int
    end: int
    replacement: str
    what: str  # "body", "statement" or "comment": for the note
    label: str = ""  # "function foo" for bodies


@dataclass
class Outline:
    text: str
    cuts: list[Cut]


def _docstring_cut(source: Source, statement: Node) -> Cut | None:
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
    return Cut(source.end(parts[0]), source.start(parts[-1]), first, "docstring")


def _body_of(definition: Definition) -> Node | None:
    body = definition.node.child_by_field_name("body")
    if body is None and definition.node.type in ("lexical_declaration", "variable_declaration"):
        declarator = definition.node.named_children[0]
        value = declarator.child_by_field_name("value")
        body = value.child_by_field_name("body") if value is not None else None
    return body


def _body_cuts(analysis: Analysis, definition: Definition, body: Node) -> list[Cut]:
    source = analysis.source
    start, end = source.start(body), source.end(body)
    label = f"{definition.kind} {definition.qualified_name}"
    if source.line_of(start) == source.line_of(max(start, end - 1)):
        return []  # a one-line body costs little and says a lot
    if body.type == "block" and analysis.language == "python":
        cuts: list[Cut] = []
        statements = body.named_children
        first = next((s for s in statements if s.type not in _COMMENTS), None)
        doc = _docstring_cut(source, first) if first is not None else None
        if first is not None and (doc is not None or _is_docstring(first)):
            if doc is not None:
                cuts.append(doc)
            rest = source.end(first)
            if source.text[rest:end].strip():
                indent = source.indent_at(source.start(first))
                cuts.append(Cut(rest, end, "\n" + indent + "...", "body", label))
            return cuts
        return [Cut(start, end, "...", "body", label)]
    text = source.text[start:end]
    if text.startswith("{") and text.endswith("}"):
        if not text[1:-1].strip():
            return []
        return [Cut(start + 1, end - 1, " ... ", "body", label)]
    return [Cut(start, end, "...", "body", label)]


def _is_docstring(statement: Node) -> bool:
    return (
        statement.type == "expression_statement"
        and statement.named_child_count == 1
        and statement.named_children[0].type == "string"
    )


def _container_children(definition: Definition) -> list[Node]:
    body = _body_of(definition)
    return body.named_children if body is not None else []


def _collect_cuts(analysis: Analysis, children: list[Node], cuts: list[Cut]) -> None:
    source = analysis.source
    for child in children:
        start, end = source.start(child), source.end(child)
        definition = analysis.by_outer.get(child.id)
        if child.type in _COMMENTS:
            if source.only_space_before(start):
                # Whole lines of comment go, newline included.
                line_end = source.line_end(max(start, end - 1))
                stop = min(line_end + 1, len(source.text))
                cuts.append(Cut(source.line_start(start), stop, "", "comment"))
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
            cuts.append(Cut(first_line_end, end, " ...", "statement"))


def _comment_starts(analysis: Analysis) -> tuple[str, ...]:
    marker = line_comment(analysis.language)
    return (marker, "/*") if marker else ("/*",)


def _split_around(source: Source, cut: Cut, focus: Span) -> list[Cut]:
    """The parts of `cut` outside `focus`, each given a placeholder of its own."""
    lo, hi = focus.start_byte, focus.end_byte
    if cut.end <= lo or cut.start >= hi:
        return [cut]
    parts: list[Cut] = []
    indent = source.indent_at(lo)
    if cut.start < lo and source.text[cut.start : lo].strip():
        if cut.what == "comment":
            parts.append(Cut(cut.start, lo, "", cut.what, cut.label))
        else:
            lead = "" if source.only_space_before(cut.start) else "\n" + indent
            parts.append(Cut(cut.start, lo, lead + "...\n", cut.what, cut.label))
    if cut.end > hi and source.text[hi : cut.end].strip():
        if cut.what == "comment":
            parts.append(Cut(hi, cut.end, "\n", cut.what, cut.label))
        else:
            tail = source.text[hi : cut.end]
            trailing = tail[len(tail.rstrip()) :]
            parts.append(Cut(hi, cut.end, "\n" + indent + "..." + trailing, cut.what, cut.label))
    return parts


def build_outline(
    text: str, language: str | None, focus: Span | None, keep_focus: bool
) -> Outline | None:
    analysis = analyze(text, language)
    if analysis is None or language not in QUERIES:
        return None
    source = analysis.source
    cuts: list[Cut] = []
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
            cuts.append(Cut(start, focus.end_byte, marker, "focus"))
    cuts.sort(key=lambda c: c.start)
    pieces: list[str] = []
    pos = 0
    kept: list[Cut] = []
    for cut in cuts:
        if cut.start < pos:
            continue  # nested inside an earlier cut
        pieces.append(text[pos : cut.start])
        pieces.append(cut.replacement)
        pos = cut.end
        kept.append(cut)
    pieces.append(text[pos:])
    result = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", "".join(pieces)).strip("\n")
    return Outline(result + "\n" if result.strip() else "", kept)


def outline(text: str, language: str | None, exclude: Span | None = None) -> str:
    """The file's skeleton: imports, signatures and docstring first lines, bodies shown as "...".

    `exclude` (a symbol or a line range) is replaced by a one-line comment saying it is left out,
    for prompts that give it in full elsewhere. "" when the language has no grammar or no
    definitions table.
    """
    built = build_outline(text, language, exclude, keep_focus=False)
    return built.text if built is not None else ""
