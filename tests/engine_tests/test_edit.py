"""engine.edit: diffs that apply, code taken out of answers, splices (writes: test_files.py)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from engine.code import Span, find_symbol, line_span
from engine.edit import extract_code, splice, unified_diff
from engine.errors import InputError

TEXTWRAP = Path(textwrap.__file__).read_text(encoding="utf-8")


# --- diffs -----------------------------------------------------------------------------------


def test_unified_diff_equal_is_empty() -> None:
    assert unified_diff(TEXTWRAP, TEXTWRAP, "textwrap.py") == ""


def test_unified_diff_headers_and_hunks() -> None:
    new = TEXTWRAP.replace("def dedent(text):", "def dedent(text: str) -> str:")
    diff = unified_diff(TEXTWRAP, new, "lib/textwrap.py")
    lines = diff.split("\n")
    assert lines[0] == "--- a/lib/textwrap.py"
    assert lines[1] == "+++ b/lib/textwrap.py"
    assert lines[2].startswith("@@ -")
    assert "-def dedent(text):" in lines and "+def dedent(text: str) -> str:" in lines
    assert diff.endswith("\n")
    assert unified_diff("a\n", "b\n", "/abs/x.py").startswith("--- a/abs/x.py\n+++ b/abs/x.py\n")


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs the patch tool")
@pytest.mark.parametrize(
    ("old", "new"),
    [
        (TEXTWRAP, TEXTWRAP.replace("    return text\n", "    return text  # same\n")),
        ("a\nb\nc", "a\nB\nc"),  # no final newline on either side
        ("a\nb\n", "a\nb"),  # the final newline removed
        ("", "first line\n"),
    ],
    ids=["textwrap", "no-final-newline", "final-newline-removed", "new-content"],
)
def test_unified_diff_applies_with_patch(tmp_path: Path, old: str, new: str) -> None:
    target = tmp_path / "f.py"
    target.write_text(old, encoding="utf-8", newline="")
    diff = unified_diff(old, new, "f.py")
    result = subprocess.run(
        ["patch", "-p1", "--quiet", "--batch"], input=diff, text=True, cwd=tmp_path,
        capture_output=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert target.read_bytes().decode("utf-8") == new


def test_unified_diff_marks_missing_final_newline() -> None:
    diff = unified_diff("x = 1", "x = 2", "f.py")
    assert diff.count("\\ No newline at end of file\n") == 2


# --- extracting code ---------------------------------------------------------------------------

FUNC = "def f(x):\n    return x + 1\n"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # prose around a fenced block
        (f"Here is the fix:\n\n```python\n{FUNC}```\n\nThis adds one.", FUNC),
        # the language's block wins over a bigger one in another language
        ("```bash\npip install something-with-a-long-name && run it twice\n```\n"
         f"```py\n{FUNC}```", FUNC),
        # the largest of several matching blocks
        (f"```python\nx = 1\n```\nand\n```python\n{FUNC}```", FUNC),
        # an answer cut before its closing fence
        (f"```python\n{FUNC}", FUNC),
        # tildes, and a longer fence holding a shorter one
        (f"~~~python\n{FUNC}~~~\n", FUNC),
        ('````markdown\n```python\nprint(1)\n```\n````', "```python\nprint(1)\n```\n"),
        # a fence indented in a list item
        ("1. Replace it:\n   ```python\n   def f(x):\n       return x + 1\n   ```\n", FUNC),
        # CRLF line ends
        (f"```python\r\n{FUNC.replace(chr(10), chr(13) + chr(10))}```\r\n", FUNC),
        # a thinking block is never the answer
        (f"<think>\n```python\nwrong = True\n```\n</think>\n```python\n{FUNC}```", FUNC),
        # a bare whole-file answer, prose lines before and after dropped
        (f"Here is the updated code:\n{FUNC}\nThis version adds one to x.", FUNC),
        (FUNC, FUNC),
    ],
)
def test_extract_code(answer: str, expected: str) -> None:
    assert extract_code(answer, "python") == expected


def test_extract_code_prefers_untagged_over_other_languages() -> None:
    answer = "Run:\n```sh\nmake test && make install\n```\nCode:\n```\nfn main() {}\n```\n"
    assert extract_code(answer, "rust") == "fn main() {}\n"
    # With nothing else, a block in another language still counts.
    assert extract_code("```js\nlet x = 1;\n```", "python") == "let x = 1;\n"


def test_extract_code_without_grammar_uses_looks() -> None:
    rust = 'fn main() {\n    println!("hi");\n}'
    assert extract_code(rust, None) == rust + "\n"
    assert extract_code("let x: number = 1;\nexport default x;", "typescript") is not None


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "   \n\n",
        "I think the code is fine as it is. Nothing needs to change.",
        "OK",
        "The function adds one to its argument and returns the result.",
        "```python\n```",  # an empty block
        "<think>\nstill thinking about def f(x): return x",
    ],
)
def test_extract_code_finds_nothing(answer: str) -> None:
    assert extract_code(answer, "python") is None


# --- splicing --------------------------------------------------------------------------------


def test_splice_reindents_a_dedented_method() -> None:
    span = find_symbol(TEXTWRAP, "python", "TextWrapper._munge_whitespace")
    assert span is not None
    replacement = (
        "def _munge_whitespace(self, text):\n"
        '    """Expand tabs."""\n'
        "    if self.expand_tabs:\n"
        "        text = text.expandtabs(self.tabsize)\n"
        "    return text\n"
    )
    result = splice(TEXTWRAP, span, replacement)
    assert (
        "    def _munge_whitespace(self, text):\n"
        '        """Expand tabs."""\n'
        "        if self.expand_tabs:\n"
        "            text = text.expandtabs(self.tabsize)\n"
        "        return text\n\n\n    def _split(self, text):"
    ) in result
    assert result.count("def _munge_whitespace") == 1
    assert find_symbol(result, "python", "TextWrapper._split") is not None


def test_splice_keeps_correct_indentation_and_fixes_too_much() -> None:
    src = "class A:\n    def m(self):\n        return 1\n\n    def n(self):\n        pass\n"
    span = find_symbol(src, "python", "A.m")
    assert span is not None
    expected = "class A:\n    def m(self):\n        return 2\n\n    def n(self):\n        pass\n"
    assert splice(src, span, "    def m(self):\n        return 2") == expected
    assert splice(src, span, "        def m(self):\n            return 2\n") == expected
    assert splice(src, span, "\n\ndef m(self):\n    return 2\n\n") == expected


def test_splice_tabs_and_top_level() -> None:
    go = "package p\n\nfunc F() int {\n\treturn 1\n}\n"
    span = find_symbol(go, "go", "F")
    assert span is not None
    assert splice(go, span, "func F() int {\n\treturn 2\n}\n") == (
        "package p\n\nfunc F() int {\n\treturn 2\n}\n"
    )


def test_splice_line_span_and_mid_line_span() -> None:
    text = "a = 1\nb = 2\nc = 3\n"
    two = line_span(text, 2, 2)
    assert splice(text, two, "b = 20\nb2 = 21\n") == "a = 1\nb = 20\nb2 = 21\nc = 3\n"
    # Removing lines.
    assert splice(text, line_span(text, 2, 2), "") == "a = 1\n\nc = 3\n"
    js = "const f = () => {\n  return 1;\n};\n"
    # A span starting after code on its line: later lines take that line's indentation.
    start = js.index("{")
    end = js.index("}") + 1
    span = Span("body", "lines", 1, 3, start, end)
    assert splice(js, span, "{\n  return 2;\n}") == "const f = () => {\n  return 2;\n};\n"


def test_splice_keeps_crlf_line_ends() -> None:
    text = "a = 1\r\nb = 2\r\nc = 3\r\n"
    result = splice(text, line_span(text, 2, 2), "b = 20\nb2 = 21\n")
    assert result == "a = 1\r\nb = 20\r\nb2 = 21\r\nc = 3\r\n"


def test_splice_rejects_a_span_outside_the_text() -> None:
    span = Span("x", "lines", 1, 1, 5, 500)
    with pytest.raises(InputError):
        splice("short", span, "x")
