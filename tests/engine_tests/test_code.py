"""engine.code and engine.languages on real texts: stdlib modules and small JS, Rust, Go, Java."""

from __future__ import annotations

import shlex
import textwrap
from pathlib import Path

import pytest

from engine import code, languages
from engine.code import (
    Span,
    definitions,
    detect_language,
    enclosing_scope,
    find_symbol,
    fit_to_budget,
    has_grammar,
    line_span,
    outline,
    parse,
    parses_cleanly,
    trim_completion,
)
from engine.errors import ContextError, InputError

TEXTWRAP = Path(textwrap.__file__).read_text(encoding="utf-8")
SHLEX = Path(shlex.__file__).read_text(encoding="utf-8")


def tokens(text: str) -> int:
    return len(text) // 4


JS = """\
// Utilities for shapes.
import { sqrt } from "./math.js";

/** Area of a circle. */
export function area(r) {
  const pi = 3.14159;
  return pi * r * r;
}

const perimeter = (r) => {
  return 2 * 3.14159 * r;
};

class Shape extends Base {
  #id = 0;
  constructor(name) {
    super();
    this.name = name;
  }
  describe() {
    return `${this.name} with area ${this.area()}`;
  }
}
"""

RUST = """\
use std::fmt;

/// A point in the plane.
#[derive(Debug, Clone)]
pub struct Point {
    x: f64,
    y: f64,
}

impl Point {
    /// Distance to the origin.
    pub fn norm(&self) -> f64 {
        let s = self.x * self.x + self.y * self.y;
        s.sqrt()
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}
"""

GO = """\
package geo

import (
\t"fmt"
\t"math"
)

// Point is a point.
type Point struct {
\tX, Y float64
}

// Norm is the distance to the origin.
func (p *Point) Norm() float64 {
\ts := p.X*p.X + p.Y*p.Y
\treturn math.Sqrt(s)
}

func Describe(p Point) string {
\tn := p.Norm()
\treturn fmt.Sprintf("%v has norm %v", p, n)
}
"""

JAVA = """\
package shapes;

import java.util.List;

/** A circle. */
public class Circle implements Shape {
    private final double r;

    public Circle(double r) {
        this.r = r;
    }

    @Override
    public double area() {
        double pi = Math.PI;
        return pi * r * r;
    }
}
"""


def sliced(text: str, span: Span | None) -> str:
    assert span is not None
    return text[span.start_byte : span.end_byte]


# --- languages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.py", "python"), ("pkg/b.PYI", "python"), ("x.mjs", "javascript"),
        ("x.jsx", "javascript"), ("lib.rs", "rust"), ("main.go", "go"), ("A.java", "java"),
        ("run.sh", "bash"), ("data.json", "json"), ("app.ts", "typescript"),
        ("Makefile", "make"), ("x.c", "c"),
    ],
)
def test_detect_language_by_extension(path: str, expected: str) -> None:
    assert detect_language(path, "") == expected


@pytest.mark.parametrize(
    ("first_line", "expected"),
    [
        ("#!/usr/bin/env python3", "python"),
        ("#!/usr/bin/python3.11 -u", "python"),
        ("#!/bin/bash", "bash"),
        ("#!/bin/sh -e", "bash"),
        ("#!/usr/bin/env -S node --no-warnings", "javascript"),
        ("#!/usr/bin/env zsh", "bash"),
        ("#!/usr/bin/env awk", None),
    ],
)
def test_detect_language_by_shebang(first_line: str, expected: str | None) -> None:
    assert detect_language("script", first_line + "\necho hi\n") == expected


def test_detect_language_by_content() -> None:
    assert detect_language(None, TEXTWRAP) == "python"
    assert detect_language(None, RUST) == "rust"
    assert detect_language(None, GO) == "go"
    assert detect_language(None, JS) == "javascript"
    assert detect_language(None, '{"a": [1, 2], "b": null}') == "json"
    assert detect_language(None, "Dear team, the meeting moved to Tuesday.\n") is None
    assert detect_language(None, "") is None
    # An unknown extension falls through to the content.
    assert detect_language("notes.txt", SHLEX) == "python"


def test_grammars_are_the_shipped_wheels() -> None:
    for name in ("python", "javascript", "rust", "go", "java", "bash", "json"):
        assert has_grammar(name), name
    assert not has_grammar("typescript")  # no wheel installed: plain text
    assert not has_grammar(None)
    assert not has_grammar("klingon")


def test_missing_grammar_wheel_degrades_to_plain_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(languages._GRAMMARS, "python", ("tree_sitter_not_installed", "language"))
    languages.get_language.cache_clear()
    definitions.analyze.cache_clear()
    try:
        assert not has_grammar("python")
        assert parse(TEXTWRAP, "python") is None
        assert parses_cleanly(TEXTWRAP, "python") is None
        assert find_symbol(TEXTWRAP, "python", "dedent") is None
        assert enclosing_scope(TEXTWRAP, "python", 100) is None
        assert outline(TEXTWRAP, "python") == ""
        fitted = fit_to_budget(TEXTWRAP, "python", 500, tokens)
        assert fitted.trimmed and "line boundary" in (fitted.note or "")
    finally:
        monkeypatch.undo()
        languages.get_language.cache_clear()
        definitions.analyze.cache_clear()
    assert has_grammar("python")


# --- parsing ---------------------------------------------------------------------------------


def test_parses_cleanly() -> None:
    assert parses_cleanly(TEXTWRAP, "python") is True
    assert parses_cleanly(SHLEX, "python") is True
    assert parses_cleanly(JS, "javascript") is True
    assert parses_cleanly(RUST, "rust") is True
    assert parses_cleanly(GO, "go") is True
    assert parses_cleanly(JAVA, "java") is True
    assert parses_cleanly('{"a": [1, 2]}', "json") is True
    assert parses_cleanly("def f(:\n    pass\n", "python") is False  # a MISSING node
    broken = TEXTWRAP.replace("def dedent(text):", "def dedent(text)")
    assert parses_cleanly(broken, "python") is False
    assert parses_cleanly("fn main() { let x = ; }", "rust") is False
    assert parses_cleanly('{"a": [1, 2}', "json") is False
    assert parses_cleanly("anything", "typescript") is None
    assert parses_cleanly("anything", None) is None


def test_parse_returns_a_tree() -> None:
    tree = parse("x = 1\n", "python")
    assert tree is not None
    assert tree.root_node.type == "module"


# --- symbols ---------------------------------------------------------------------------------


def test_find_symbol_in_textwrap() -> None:
    span = find_symbol(TEXTWRAP, "python", "TextWrapper._wrap_chunks")
    assert span is not None
    assert span.kind == "method" and span.name == "TextWrapper._wrap_chunks"
    text = sliced(TEXTWRAP, span)
    assert text.startswith("    def _wrap_chunks(self, chunks):\n")
    assert text.endswith("return lines")
    lines = TEXTWRAP.split("\n")
    assert lines[span.start_line - 1] == "    def _wrap_chunks(self, chunks):"
    assert lines[span.end_line - 1].strip() == "return lines"
    # A bare name prefers the least nested definition: the module's wrap, not the method.
    top = find_symbol(TEXTWRAP, "python", "wrap")
    assert top is not None and top.kind == "function"
    assert sliced(TEXTWRAP, top).startswith("def wrap(")
    method = find_symbol(TEXTWRAP, "python", "TextWrapper.wrap")
    assert method is not None and sliced(TEXTWRAP, method).startswith("    def wrap(self, text):")
    cls = find_symbol(TEXTWRAP, "python", "TextWrapper")
    assert cls is not None and cls.kind == "class"
    assert cls.start_line < span.start_line and span.end_line <= cls.end_line
    assert find_symbol(TEXTWRAP, "python", "no_such_function") is None
    assert find_symbol(TEXTWRAP, "python", "Missing.wrap") is None
    assert find_symbol(TEXTWRAP, "python", "") is None


def test_find_symbol_in_shlex() -> None:
    span = find_symbol(SHLEX, "python", "shlex.read_token")
    assert span is not None and span.kind == "method"
    assert "def read_token(self):" in sliced(SHLEX, span).split("\n")[0]
    quote = find_symbol(SHLEX, "python", "quote")
    assert quote is not None and sliced(SHLEX, quote).startswith("def quote(s):")
    # A property's decorator belongs to the symbol.
    prop = find_symbol(SHLEX, "python", "shlex.punctuation_chars")
    assert sliced(SHLEX, prop).startswith("    @property\n    def punctuation_chars")


def test_offsets_are_characters_not_bytes() -> None:
    text = 'GREETING = "héllo wörld 日本語 🎉"\n\n\ndef target(x):\n    return "ü" + x\n'
    span = find_symbol(text, "python", "target")
    assert span is not None
    assert sliced(text, span) == 'def target(x):\n    return "ü" + x'
    assert (span.start_line, span.end_line) == (4, 5)
    nested = '# é\nclass Ä:\n    """Ünïcödé."""\n    def ß(self):\n        return "€"\n'
    method = find_symbol(nested, "python", "Ä.ß")
    assert method is not None
    assert sliced(nested, method) == '    def ß(self):\n        return "€"'


def test_find_symbol_in_javascript() -> None:
    area = find_symbol(JS, "javascript", "area")
    # The doc comment just above and the `export` keyword belong to the function.
    assert sliced(JS, area) == (
        "/** Area of a circle. */\nexport function area(r) {\n  const pi = 3.14159;\n"
        "  return pi * r * r;\n}"
    )
    arrow = find_symbol(JS, "javascript", "perimeter")
    assert arrow is not None and arrow.kind == "function"
    assert sliced(JS, arrow).startswith("const perimeter = (r) => {")
    method = find_symbol(JS, "javascript", "Shape.describe")
    assert method is not None and method.kind == "method"
    assert sliced(JS, method).startswith("  describe() {")
    # The file's opening comment is separated from `import` and attached to nothing.
    assert "Utilities" not in sliced(JS, find_symbol(JS, "javascript", "Shape"))


def test_find_symbol_in_rust() -> None:
    norm = find_symbol(RUST, "rust", "Point::norm")
    assert norm is not None and norm.kind == "method" and norm.name == "Point.norm"
    assert sliced(RUST, norm).startswith("    /// Distance to the origin.\n    pub fn norm")
    point = find_symbol(RUST, "rust", "Point")
    # The struct, not one of its impl blocks; with its doc comment and attribute.
    assert point is not None and point.kind == "struct"
    assert sliced(RUST, point).startswith("/// A point in the plane.\n#[derive(Debug, Clone)]\n")
    fmt = find_symbol(RUST, "rust", "Point.fmt")
    assert fmt is not None and "write!" in sliced(RUST, fmt)


def test_find_symbol_in_go_and_java() -> None:
    norm = find_symbol(GO, "go", "Point.Norm")
    assert norm is not None and norm.kind == "method"
    assert sliced(GO, norm).startswith("// Norm is the distance to the origin.\nfunc (p *Point)")
    assert find_symbol(GO, "go", "Norm") == norm
    point = find_symbol(GO, "go", "Point")
    assert point is not None and point.kind == "type" and "X, Y float64" in sliced(GO, point)
    area = find_symbol(JAVA, "java", "Circle.area")
    assert sliced(JAVA, area).startswith("    @Override\n    public double area()")
    ctor = find_symbol(JAVA, "java", "Circle.Circle")
    assert ctor is not None and ctor.kind == "constructor"


def test_symbols_lists_every_definition_in_order() -> None:
    names = [s.name for s in code.symbols(RUST, "rust")]
    assert names == ["Point", "Point", "Point.norm", "Point", "Point.fmt"]
    assert code.symbols("plain text", None) == []


def test_enclosing_scope() -> None:
    method = find_symbol(TEXTWRAP, "python", "TextWrapper._split")
    assert method is not None
    inside = enclosing_scope(TEXTWRAP, "python", method.start_line + 3, 5)
    assert inside == method
    # The def line itself, at column 1 (in its indentation), is inside too.
    assert enclosing_scope(TEXTWRAP, "python", method.start_line, 1) == method
    # Class-level code between methods belongs to the class.
    attribute_line = next(
        n for n, line in enumerate(TEXTWRAP.split("\n"), 1)
        if line.startswith("    unicode_whitespace_trans = ")
    )
    scope = enclosing_scope(TEXTWRAP, "python", attribute_line, 5)
    assert scope is not None and scope.name == "TextWrapper" and scope.kind == "class"
    # Module level: no scope.
    assert enclosing_scope(TEXTWRAP, "python", 1, 1) is None
    js = enclosing_scope(JS, "javascript", 22, 10)
    assert js is not None and js.name == "Shape.describe"
    with pytest.raises(InputError, match="out of range"):
        enclosing_scope(TEXTWRAP, "python", 10_000, 1)
    with pytest.raises(InputError):
        enclosing_scope(TEXTWRAP, "python", 0, 1)
    assert enclosing_scope("x\ny\n", None, 2, 1) is None


def test_line_span() -> None:
    text = "one\ntwo\nthree\nfour"
    span = line_span(text, 2, 3)
    assert sliced(text, span) == "two\nthree"
    assert (span.start_line, span.end_line, span.kind) == (2, 3, "lines")
    assert sliced(text, line_span(text, 4, 4)) == "four"
    assert sliced(text + "\n", line_span(text + "\n", 1, 4)) == text
    with pytest.raises(InputError, match="the input has 4 lines"):
        line_span(text, 3, 5)
    with pytest.raises(InputError, match="reversed"):
        line_span(text, 3, 2)
    with pytest.raises(InputError):
        line_span(text, 0, 2)
    with pytest.raises(InputError):
        line_span("", 1, 1)
    crlf = "one\r\ntwo\r\n"
    assert sliced(crlf, line_span(crlf, 1, 2)) == "one\r\ntwo"
    with pytest.raises(InputError) as error:
        line_span(text + "\n", 5, 5)  # a final newline does not start a fifth line
    assert "\n" not in str(error.value)


# --- outlines --------------------------------------------------------------------------------


def test_outline_of_textwrap() -> None:
    skeleton = outline(TEXTWRAP, "python")
    assert len(skeleton) < len(TEXTWRAP) / 4
    assert skeleton.startswith('"""Text wrapping and filling."""\n')
    assert "import re\n" in skeleton
    assert "class TextWrapper:\n" in skeleton
    assert "    def _wrap_chunks(self, chunks):\n" in skeleton
    assert '        """_wrap_chunks(chunks : [string]) -> [string]"""\n        ...\n' in skeleton
    assert "def dedent(text):\n" in skeleton
    assert 'if __name__ == "__main__": ...' in skeleton
    # Bodies and comments are gone.
    assert "cur_line.append" not in skeleton
    assert "# Hardcode the recognized whitespace" not in skeleton
    # Every signature survives, except those of functions nested in elided bodies.
    spans = code.symbols(TEXTWRAP, "python")
    classes = {s.name for s in spans if s.kind == "class"}
    nested = [s for s in spans if "." in s.name and s.name.rsplit(".", 1)[0] not in classes]
    assert {s.name for s in nested} >= {"indent.predicate"}
    assert "def predicate(line):" not in skeleton
    for span in spans:
        if span in nested:
            continue
        first = TEXTWRAP[span.start_byte : span.end_byte].split("\n")[0]
        assert first in skeleton, first


def test_outline_with_exclude_marks_the_gap() -> None:
    method = find_symbol(SHLEX, "python", "shlex.read_token")
    assert method is not None
    skeleton = outline(SHLEX, "python", exclude=method)
    assert "def read_token" not in skeleton
    marker = f"    # ... method shlex.read_token ({method.lines}) is left out here\n"
    assert marker in skeleton
    assert "    def get_token(self):" in skeleton


@pytest.mark.parametrize(
    ("text", "language", "kept", "gone"),
    [
        (JS, "javascript",
         ["export function area(r) { ... }", "const perimeter = (r) => { ... };",
          "class Shape extends Base {", "  #id = 0;", "  describe() { ... }"],
         ["3.14159", "super()"]),
        (RUST, "rust",
         ["use std::fmt;", "pub struct Point {", "    x: f64,", "impl Point {",
          "    pub fn norm(&self) -> f64 { ... }", "impl fmt::Display for Point {"],
         ["sqrt", "write!"]),
        (GO, "go",
         ["package geo", '\t"math"', "type Point struct {",
          "func (p *Point) Norm() float64 { ... }"],
         ["Sprintf", "math.Sqrt"]),
        (JAVA, "java",
         ["import java.util.List;", "public class Circle implements Shape {",
          "    private final double r;", "    public double area() { ... }"],
         ["Math.PI", "this.r = r"]),
    ],
)
def test_outline_of_other_languages(
    text: str, language: str, kept: list[str], gone: list[str]
) -> None:
    skeleton = outline(text, language)
    for line in kept:
        assert line in skeleton, line
    for fragment in gone:
        assert fragment not in skeleton, fragment


def test_outline_without_grammar_is_empty() -> None:
    assert outline("", "python") == ""
    assert outline("# only a comment\n", "python") == ""
    assert outline("let x: number = 1;\n", "typescript") == ""
    assert outline('{"a": 1}', "json") == ""  # a grammar but no definitions


# --- budgets ---------------------------------------------------------------------------------


def test_fit_whole_text_when_it_fits() -> None:
    fitted = fit_to_budget(TEXTWRAP, "python", 10_000, tokens)
    assert fitted.text == TEXTWRAP and not fitted.trimmed and fitted.note is None


def test_fit_keeps_focus_in_place_within_an_outline() -> None:
    focus = find_symbol(TEXTWRAP, "python", "TextWrapper._split")
    assert focus is not None
    fitted = fit_to_budget(TEXTWRAP, "python", 1500, tokens, focus=focus)
    assert fitted.trimmed and tokens(fitted.text) <= 1500
    body = sliced(TEXTWRAP, focus)
    assert body in fitted.text
    # In place: between the methods around it.
    assert fitted.text.index("def _munge_whitespace") < fitted.text.index(body)
    assert fitted.text.index(body) < fitted.text.index("def _fix_sentence_endings")
    assert "cur_line.append" not in fitted.text
    note = fitted.note or ""
    assert note.startswith("input trimmed to fit the context: kept method TextWrapper._split")
    assert f"({focus.lines}) in full and an outline of the rest" in note
    assert "left out 13 function bodies (lines " in note and "\n" not in note


def test_fit_line_focus_inside_a_function_body() -> None:
    focus = line_span(TEXTWRAP, 300, 305)
    fitted = fit_to_budget(TEXTWRAP, "python", 1200, tokens, focus=focus)
    assert sliced(TEXTWRAP, focus) in fitted.text
    assert "    def _wrap_chunks(self, chunks):" in fitted.text
    assert "kept lines 300-305 in full" in (fitted.note or "")
    # The body around the lines is elided, and _wrap_chunks counts once.
    assert "chunks.reverse()" not in fitted.text
    assert "left out 14 function bodies" in (fitted.note or "")


def test_fit_focus_alone_then_its_head() -> None:
    focus = find_symbol(TEXTWRAP, "python", "TextWrapper._wrap_chunks")
    assert focus is not None
    body = sliced(TEXTWRAP, focus)
    fitted = fit_to_budget(TEXTWRAP, "python", tokens(body) + 10, tokens, focus=focus)
    assert fitted.text == body
    assert "kept only method TextWrapper._wrap_chunks" in (fitted.note or "")
    head = fit_to_budget(TEXTWRAP, "python", 200, tokens, focus=focus)
    assert body.startswith(head.text) and tokens(head.text) <= 200
    assert f"kept lines {focus.start_line}-" in (head.note or "")


def test_fit_outline_alone_then_head() -> None:
    skeleton = outline(TEXTWRAP, "python")
    fitted = fit_to_budget(TEXTWRAP, "python", tokens(skeleton) + 5, tokens)
    assert fitted.text == skeleton
    assert (fitted.note or "").startswith("input trimmed to fit the context: kept an outline")
    head = fit_to_budget(TEXTWRAP, "python", 300, tokens)
    assert TEXTWRAP.startswith(head.text) and tokens(head.text) <= 300
    assert head.text.endswith("\n") is False and TEXTWRAP[len(head.text)] == "\n"
    assert "kept lines 1-" in (head.note or "") and "left out lines" in (head.note or "")
    # A cut right after a top-level statement when that costs little room.
    small = fit_to_budget(TEXTWRAP, "python", 40, tokens)
    assert "after a top-level" in (small.note or "")


def test_fit_raises_when_nothing_fits() -> None:
    with pytest.raises(ContextError, match="does not fit"):
        fit_to_budget(TEXTWRAP, "python", 2, tokens)


def test_fit_counts_tokens_a_logarithmic_number_of_times() -> None:
    calls = 0

    def counting(text: str) -> int:
        nonlocal calls
        calls += 1
        return len(text) // 4

    fit_to_budget(SHLEX * 4, "python", 100, counting)
    assert calls < 60


# --- completion boundaries -------------------------------------------------------------------


def test_trim_completion_stops_at_dedent() -> None:
    text, hit = trim_completion(
        "\n    return x\n\ndef g():\n", "def f(x):", "\n\ndef h(): pass\n", "python"
    )
    assert (text, hit) == ("\n    return x", True)


def test_trim_completion_runs_on_inside_the_block() -> None:
    assert trim_completion("    y = x\n    z = y\n", "def f(x):\n", "", "python") == (
        "    y = x\n    z = y\n", False,
    )
    # Once generation ended, trailing blank lines go.
    assert trim_completion("    y = x\n\n\n", "def f(x):\n", "", "python", final=True) == (
        "    y = x", False,
    )


def test_trim_completion_blank_line_then_next_definition() -> None:
    generated = "for i in range(3):\n    print(i)\n\nprint('done')\n"
    assert trim_completion(generated, "", "", "python") == (
        "for i in range(3):\n    print(i)", True,
    )
    # Statements at one level, without a deeper block, continue across blank lines.
    assert trim_completion("x = 1\n\ny = 2\n", "", "", "python") == ("x = 1\n\ny = 2\n", False)


def test_trim_completion_does_not_duplicate_the_suffix() -> None:
    prefix = "def f():\n    x = 1\n"
    assert trim_completion("    y = 2\n    return y\n", prefix, "    return y\n", "python") == (
        "    y = 2\n", True,
    )
    assert trim_completion("    return y\n", prefix, "    return y\n", "python") == ("", True)
    # Further down the suffix.
    assert trim_completion(
        "\n    y = 2\n    return y\n", "def f():\n    x = 1", "\n\n    return y\n", "python"
    ) == ("\n    y = 2", True)


def test_trim_completion_closing_brace() -> None:
    generated = "    let y = 1;\n    y\n}\n\nfn other() {}\n"
    # Without a closing brace after the cursor, the completion supplies it.
    assert trim_completion(generated, "fn f() {\n", "", "rust") == (
        "    let y = 1;\n    y\n}", True,
    )
    # With one, it stops before it.
    assert trim_completion(generated, "fn f() {\n", "}\n", "rust") == (
        "    let y = 1;\n    y\n", True,
    )
    js, hit = trim_completion(
        "    const y = 1;\n    return y;\n  }\n", "  m() {\n", "  }\n}\n", "javascript"
    )
    assert (js, hit) == ("    const y = 1;\n    return y;\n", True)
    # A closing line still being written is not judged yet.
    assert trim_completion("    y\n}", "fn f() {\n", "", "rust") == ("    y\n}", False)


def test_trim_completion_mid_line() -> None:
    assert trim_completion("a, b)\nfoo()", "x = f(", ")\n", "python") == ("a, b", True)
    assert trim_completion("a, b", "x = f(", ")\n", "python") == ("a, b", False)
    assert trim_completion("a, b", "x = f(", ")\n", "python", final=True) == ("a, b", False)
    assert trim_completion("a, b)", "x = f(", ")\n", "python", final=True) == ("a, b", True)
    assert trim_completion("name\n", "print(", ")", None) == ("name", True)


def test_trim_completion_early_stop_on_a_partial_line() -> None:
    # The dedent is visible before the line ends: the caller can stop at once.
    text, hit = trim_completion("    return 1\nde", "def f():\n", "", "python")
    assert (text, hit) == ("    return 1", True)


def test_trim_completion_fills_a_gap_between_two_statements_with_one() -> None:
    prefix = "def f(r, g):\n    top = max(r, g)\n    "
    suffix = "\n    half = top / 2\n    return half\n"
    # the model went on past the gap with statements of its own: only the first one fills it
    generated = "low = min(r, g)\n    spread = top - low\n    other = 1\n"
    assert trim_completion(generated, prefix, suffix, "python") == ("low = min(r, g)", True)
    # a compound statement keeps its body; a bracket closing at the statement's level continues it
    assert trim_completion("if r:\n        g = 0\n    x = 1\n", prefix, suffix, "python") == (
        "if r:\n        g = 0", True,
    )
    assert trim_completion("low = min(\n        r, g,\n    )\n    x = 1\n", prefix, suffix, "python") == (
        "low = min(\n        r, g,\n    )", True,
    )
    # at the end of a block (the next code dedents) several statements may follow
    end = "\n\ndef g():\n    pass\n"
    assert trim_completion(generated, prefix, end, "python") == (generated, False)
    # a statement being typed in the middle of a block is completed, and no more
    assert trim_completion(" = top - low\n    if r:\n        x = 1\n", prefix + "spread", suffix, "python") == (
        " = top - low", True,
    )
    # after a finished line, a new statement below it (and no more)
    assert trim_completion("\n    low = 1\n    x = 2\n", "def f():\n    top = 3", suffix, "python") == (
        "\n    low = 1", True,
    )
    # a line that opens a block keeps its body, up to the line back at its level
    assert trim_completion(" r > g:\n        top = r\n    x = 1\n", prefix + "if", suffix, "python") == (
        " r > g:\n        top = r", True,
    )
