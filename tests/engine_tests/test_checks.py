"""engine.checks and engine.tasks.rewrite_result: what a rewrite must pass before it is written.

Pure functions on crafted answers: the ways a model gets a rewrite wrong (scaffolding copied back,
a symbol dropped or doubled, code outside the focus changed, a cut-off answer) and the ways it gets
it right (which must pass: a check that refuses good rewrites would be switched off).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from samples import CODE

from engine.checks import Problem, blocking, check_rewrite
from engine.code import find_symbol, line_span
from engine.tasks import TaskInput, rewrite_result, scaffolding

TWO = "def add(a, b):\n    return a+b\n\n\ndef sub(a, b):\n    return a-b\n"
TYPED_ADD = "def add(a: int, b: int) -> int:\n    return a+b"


def checks(result: str, original: str = TWO, focus: str | None = "add", **options: object) -> list[str]:
    span = find_symbol(original, "python", focus) if focus else None
    problems = check_rewrite(original, result, "python", span, **options)  # type: ignore[arg-type]
    return [p.check for p in problems]


def rewrite(answer: str, code: str = TWO, symbol: str | None = "add", finish: str = "stop",
            task: str = "refactor", **fields: object) -> list[Problem]:
    task_input = TaskInput(task, code, path=Path("lf.py"), instruction="Add type hints.",
                           symbol=symbol, **fields)  # type: ignore[arg-type]
    result = rewrite_result(task_input, answer, finish)
    assert result.text is not None
    return list(result.problems)


# --- good rewrites pass -------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [
    TYPED_ADD + "\n",
    "def add(a, b):\n    return a + b\n",  # unchanged but for spacing
    "def add(a, b):\n    # adds\n    return a+b\n",
    "def _helper(x):\n    return x\n\n\ndef add(a, b):\n    return _helper(a)+b\n",  # a new helper
])
def test_good_focused_rewrites_pass(answer: str) -> None:
    assert rewrite(answer) == []


def test_a_whole_file_rename_passes() -> None:
    # a rename loses a name and adds one: that is no lost definition
    assert rewrite(TWO.replace("def sub(", "def minus("), symbol=None) == []


def test_a_method_rewrite_passes() -> None:
    code = "class A:\n    def m(self):\n        return 1\n\n    def n(self):\n        return 2\n"
    assert rewrite("def m(self) -> int:\n    return 1\n", code=code, symbol="A.m") == []


# --- the case: placeholder instead of add, and a second sub -------------------------------


def test_the_outline_placeholder_and_a_second_sub_are_refused() -> None:
    answer = ("# ... function add (lines 1-2) is left out here\n\n\n"
              "def sub(a, b):\n    return a-b\n")
    problems = rewrite(answer)
    assert [p.check for p in problems] == ["scaffolding", "symbol", "definitions"], problems
    first = blocking(problems)
    assert first is not None and first.check == "scaffolding"
    assert "is left out here" in first.reason and "\n" not in first.reason


# --- scaffolding ---------------------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    "```python",
    "```",
    "~~~",
    "<|im_end|>",
    "<|im_start|>assistant",
    "<|fim_middle|>",
    "<end_of_turn>",
    "### Answer",
    "    # ... lines 3-4 is left out here",
])
def test_known_markup_in_a_result_is_scaffolding(line: str) -> None:
    result = TWO.replace("    return a+b\n", f"    return a+b\n{line}\n")
    assert "scaffolding" in checks(result, focus=None)


def test_template_lines_are_scaffolding_and_the_originals_own_lines_are_not() -> None:
    # the refactor template's own sentence copied into the code
    copied = rewrite("def add(a, b):\n"
                     "    The rest of the file, for reference only. It stays as it is: do not repeat it.\n"
                     "    return a+b\n")
    assert [p.check for p in copied][:1] == ["scaffolding"]
    # a fence line the original already had (a Markdown string in the code) is no copy
    with_fence = 'DOC = """\n```python\nx = 1\n```\n"""\n\n\n' + TWO
    result = with_fence.replace("return a+b", "return a + b")
    assert "scaffolding" not in checks(result, original=with_fence, focus=None)


def test_scaffolding_lines_come_from_the_real_templates() -> None:
    task = TaskInput("refactor", TWO, path=Path("lf.py"), instruction="Add type hints.",
                     symbol="add")
    lines = scaffolding(task, None)
    assert "# ... function add (lines 1-2) is left out here" in lines  # the outline's marker
    assert any(line.startswith("You are qcode") for line in lines)  # the system prompt
    assert any("Instruction: Add type hints." in line for line in lines)
    assert "def sub(a, b):" in lines  # outline lines that are code: the check skips those
    with_body = TaskInput("doc", CODE, symbol="add")
    assert "..." in scaffolding(with_body, None)  # the outline's placeholder for mul's body
    failing = TaskInput("fix", TWO, symbol="add", failure="E   assert 3 == 4")
    assert not any("assert 3 == 4" in line for line in scaffolding(failing, None))


def test_an_ellipsis_body_placeholder_is_refused_unless_the_file_has_one() -> None:
    assert [p.check for p in rewrite("def add(a, b):\n    ...\n", code=CODE)][:1] == ["scaffolding"]
    stub = "class P:\n    def f(self): ...\n\n\ndef add(a, b):\n    ...\n"
    assert rewrite("def add(a: int, b: int) -> int:\n    ...\n", code=stub) == []


# --- code outside the focus ---------------------------------------------------------------------


def test_code_outside_the_focus_must_stay_byte_identical() -> None:
    span = find_symbol(TWO, "python", "add")
    assert span is not None
    changed_tail = TWO.replace("return a-b", "return b-a")
    assert "outside" in checks(changed_tail)
    changed_head = "import os\n" + TWO
    assert "outside" in checks(changed_head, focus="sub")
    assert "outside" not in checks(changed_head)  # add starts the file: a line before it is its own
    assert "outside" not in checks(TWO.replace("return a+b", "return b+a"))
    # a line range focus too
    lines = line_span(TWO, 5, 6)
    problems = check_rewrite(TWO, TWO.replace("return a+b", "return 0"), "python", lines)
    assert [p.check for p in problems] == ["outside"]


# --- the focused symbol -----------------------------------------------------------------------------


def test_a_lost_focused_symbol() -> None:
    problems = rewrite("def plus(a, b):\n    return a+b\n")
    assert problems[0].check == "symbol" and problems[0].reason == "the rewrite lost function add"


def test_a_doubled_focused_symbol() -> None:
    problems = rewrite(f"{TYPED_ADD}\n\n\ndef add(a, b):\n    return a+b\n")
    assert problems[0].reason == "the rewrite defines function add 2 times"


def test_a_focused_symbol_of_another_kind() -> None:
    problems = rewrite("class add:\n    pass\n")
    assert problems[0].reason == "the rewrite turned function add into a class"


def test_a_line_focus_on_a_whole_symbol_checks_that_symbol() -> None:
    # the TUI sends the enclosing scope's lines, not its name
    span = line_span(TWO, 1, 2)
    renamed = TWO.replace("def add(", "def plus(")
    problems = check_rewrite(TWO, renamed, "python", span)
    assert [p.reason for p in problems] == ["the rewrite lost function add"]
    # a range that is not one symbol names none
    assert check_rewrite(TWO, TWO.replace("return a+b", "return 0"), "python",
                         line_span(TWO, 2, 2)) == []


# --- definitions the answer copied from the context (the quantiles miss of the quality bench) -----

ERR = "class StatisticsError(ValueError):\n    pass\n"
WITH_ERR = ERR + "\n\n" + TWO


@pytest.mark.parametrize("answer", [
    ERR + "\n\n" + TYPED_ADD + "\n",  # the context's class first, as the model saw it
    TYPED_ADD + "\n\n\n" + ERR,  # or after
    "    " + ERR.replace("\n    pass", "\n        pass") + "\n" + TYPED_ADD + "\n",  # or indented
    ERR + "\n\n" + TYPED_ADD + "\n\n\ndef sub(a, b):\n    return a-b\n",  # every neighbour
])
def test_an_identical_copy_of_a_context_definition_is_dropped(answer: str) -> None:
    task = TaskInput("refactor", WITH_ERR, path=Path("q.py"), instruction="Add type hints.", symbol="add")
    result = rewrite_result(task, answer, "stop")
    assert result.problems == ()
    assert result.text == WITH_ERR.replace("def add(a, b):", "def add(a: int, b: int) -> int:")


def test_a_changed_copy_or_a_lost_focus_keeps_the_answer_as_it_is() -> None:
    changed = ERR.replace("pass", "code = 1") + "\n\n" + TYPED_ADD + "\n"
    assert [p.check for p in rewrite(changed, code=WITH_ERR)] == ["definitions"]
    # without the focused symbol there is nothing to keep: the copy stays and the answer is refused
    assert [p.check for p in rewrite(ERR, code=WITH_ERR)] == ["symbol", "definitions"]


def test_a_method_like_one_elsewhere_stays_in_its_class() -> None:
    code = ("class A:\n    def m(self):\n        return 1\n\n\n"
            "class B:\n    def m(self):\n        return 1\n\n    def n(self):\n        return 2\n")
    answer = "class B:\n    def m(self):\n        return 1\n\n    def n(self) -> int:\n        return 2\n"
    task = TaskInput("refactor", code, path=Path("c.py"), instruction="Add type hints.", symbol="B")
    assert rewrite_result(task, answer, "stop").text == code.replace("def n(self):", "def n(self) -> int:")


# --- the kind of change a task allows (engine.change_kind) -------------------------------------------


def test_a_rename_that_changes_logic_is_refused_but_may_be_reviewed() -> None:
    task = TaskInput("refactor", TWO, path=Path("lf.py"), instruction="rename add to plus", symbol="add")
    bad = rewrite_result(task, "def plus(a, b):\n    return a*b\n", "stop")
    problem = bad.refusal()
    assert problem is not None and problem.check == "kind" and problem.forcible
    assert problem.reason == "a rename should change only names, but line 2 `return a+b` became `return a*b`"
    assert bad.warning == problem.reason
    assert bad.refusal(reviewed=True) is None and bad.refusal(force=True) is None
    good = rewrite_result(task, "def plus(a, b):\n    return a+b\n", "stop")
    assert good.refusal() is None and good.warning is None


def test_a_rename_inside_the_focus_leaves_the_same_name_elsewhere_alone() -> None:
    task = TaskInput("refactor", TWO, path=Path("lf.py"), instruction="rename a to first", symbol="sub")
    renamed = rewrite_result(task, "def sub(first, b):\n    return first-b\n", "stop")
    assert renamed.problems == ()
    assert renamed.text == TWO.replace("(a, b):\n    return a-b", "(first, b):\n    return first-b")
    wrong = rewrite_result(task, "def sub(first, b):\n    return first+b\n", "stop")
    assert wrong.warning == "a rename should change only names, but line 6 `return a-b` became `return first+b`"


def test_a_doc_task_that_changes_code_is_refused() -> None:
    task = TaskInput("doc", TWO, path=Path("lf.py"), symbol="sub")
    answer = 'def sub(a, b):\n    """a minus b"""\n    return b-a\n'
    assert [p.check for p in rewrite_result(task, answer, "stop").problems] == ["kind"]
    documented = rewrite_result(task, answer.replace("b-a", "a-b"), "stop")
    assert documented.problems == () and documented.text is not None and '"""a minus b"""' in documented.text


# --- top-level definitions ------------------------------------------------------------------------


def test_a_top_level_definition_duplicated_or_lost_in_a_whole_file_rewrite() -> None:
    doubled = TWO + "\n\ndef sub(a, b):\n    return a-b\n"
    assert checks(doubled, focus=None) == ["definitions"]
    lost = "def add(a, b):\n    return a+b\n"
    problems = check_rewrite(TWO, lost, "python")
    assert [p.reason for p in problems] == ["the rewrite lost function sub"]
    # methods may share names (a property and its setter): only top-level ones are counted
    prop = ("class C:\n    @property\n    def x(self):\n        return 1\n\n"
            "    @x.setter\n    def x(self, v):\n        pass\n")
    assert check_rewrite("class C:\n    pass\n", prop, "python") == []


def test_a_wildcard_import_the_original_lacks_is_refused_but_may_be_forced() -> None:
    """coder-1.5b's type-hint refactors of whole files added `from typing import *`: it can shadow the module's own
    names, and no task asks for it. One the file already has, or a named import, passes."""
    hinted = "from typing import *\n\n\n" + TYPED_ADD + "\n\n\ndef sub(a, b):\n    return a-b\n"
    problems = check_rewrite(TWO, hinted, "python")
    assert [p.check for p in problems] == ["wildcard"]
    assert problems[0].reason == "the rewrite adds `from typing import *`, which can shadow the code's names"
    assert blocking(problems, force=False) is problems[0] and blocking(problems, force=True) is None
    assert check_rewrite(hinted, hinted.replace("a+b", "a + b"), "python") == []  # the file had it already
    named = hinted.replace("from typing import *", "from typing import Any")
    assert check_rewrite(TWO, named, "python") == []
    relative = hinted.replace("from typing import *", "from .models import *")
    assert [p.reason for p in check_rewrite(TWO, relative, "python")] == [
        "the rewrite adds `from .models import *`, which can shadow the code's names"]


def test_a_wildcard_import_nothing_needs_is_taken_out_before_the_checks() -> None:
    """coder-1.5b wrote `from typing import *` and `from re import *` above a function it gave `str` hints: every
    name the rewrite reads unbound the original read unbound too, so both go and the rewrite passes. Where a new
    name may come from one (`List`), the rewrite stays whole and is refused; one the file had stays."""
    code = "import os\n\n\ndef base(path):\n    return os.path.basename(path) + SUFFIX\n"
    hinted = code.replace("def base(path):", "def base(path: str) -> str:")
    answer = "from typing import *\nfrom re import *\n\n" + hinted
    task = TaskInput("refactor", code, path=Path("b.py"), instruction="Add type hints.")
    result = rewrite_result(task, answer, "stop")
    assert result.text == hinted and result.problems == ()
    needs = answer.replace("path: str", "path: List[str]")
    result = rewrite_result(task, needs, "stop")
    assert result.text == needs and [p.check for p in result.problems] == ["wildcard"]
    had = "from typing import *\n" + code
    assert rewrite_result(TaskInput("refactor", had, path=Path("b.py"), instruction="Add type hints."),
                          "from typing import *\n" + hinted, "stop").text == "from typing import *\n" + hinted


def test_a_rewrite_that_reads_a_name_it_no_longer_imports_is_refused() -> None:
    """coder-1.5b gave a file type hints and replaced `import math` by `from typing import List`, while
    `math.sqrt` stayed: it parses, and fails when it runs. A name the original read unbound as well (`dot`, a global
    the module gets elsewhere) is not the rewrite's doing."""
    code = "import math\n\n\ndef norm(v):\n    return math.sqrt(dot(v, v))\n"
    lost = "from typing import List\n\n\ndef norm(v: List[float]) -> float:\n    return math.sqrt(dot(v, v))\n"
    problems = check_rewrite(code, lost, "python")
    assert [p.message() for p in problems] == [
        "the rewrite uses `math`, which nothing defines or imports (--force writes it anyway)"]
    kept = "import math\n" + lost
    assert check_rewrite(code, kept, "python") == []
    # a new name nothing defines fails as surely; a module attribute is there at run time
    assert [p.check for p in check_rewrite(code, kept.replace("List[float]", "Vector"), "python")] == ["unbound"]
    assert check_rewrite(code, kept.replace("dot(v, v)", "dot(v, v), __file__"), "python") == []


def test_rust_impl_blocks_may_repeat() -> None:
    code = "struct S;\n\nimpl S {\n    fn a(&self) {}\n}\n"
    more = code + "\nimpl S {\n    fn b(&self) {}\n}\n"
    assert check_rewrite(code, more, "rust") == []


# --- complete ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("finish", ["length", "cancelled", "context", "partial"])
def test_a_cut_off_answer_is_refused_even_with_force(finish: str) -> None:
    problems = rewrite(TYPED_ADD + "\n", finish=finish)
    assert problems[0].check == "complete" and not problems[0].forcible
    assert blocking(problems, force=True) is problems[0]
    assert f"cut off ({finish})" in problems[0].reason


def test_a_result_that_does_not_parse() -> None:
    problems = rewrite("def add(a, b:\n    return a+b\n")
    assert [p.check for p in problems] == ["parse"]  # the definitions of a broken parse are not compared
    assert blocking(problems, force=True) is None  # --force may write it
    assert problems[0].message().endswith("(--force writes it anyway)")


def test_an_indentation_error_the_grammar_lets_through_is_refused() -> None:
    """Seen in a fix by the old default model: a statement at column 0 right after `for ...:`. tree-sitter's Python
    grammar parses it without an error node; Python's own parser does not, so it is not written. A file that this
    Python cannot parse to begin with (newer syntax) is left to the grammar alone."""
    from engine.code import parses_cleanly

    original = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
    broken = "def f(xs):\n    total = 0\n    for x in xs:\ni = 0\n    return total\n"
    assert parses_cleanly(broken, "python")  # what the grammar alone would let through
    assert [p.check for p in check_rewrite(original, broken, "python")] == ["parse"]
    assert check_rewrite(original, original.replace("total += x", "total = total + x"), "python") == []
    newer = "type Number = int | float\n" + original  # PEP 695: a SyntaxError before Python 3.12
    assert check_rewrite(newer, newer.replace("total += x", "total = total + x"), "python") == []


def test_without_a_grammar_unclosed_brackets_look_cut_off() -> None:
    code = "proc add {a b} {\n    return [expr {$a + $b}]\n}\n"
    cut = "proc add {a b} {\n    return [expr {$a + $b\n"
    problems = check_rewrite(code, cut, "tcl-without-grammar")
    assert [p.check for p in problems] == ["complete"]
    assert check_rewrite(code, code.replace("+", "-"), "tcl-without-grammar") == []


# --- fidelity of the result itself ------------------------------------------------------------------


def test_crlf_file_keeps_crlf_and_no_doubled_carriage_return() -> None:
    crlf = TWO.replace("\n", "\r\n")
    task = TaskInput("refactor", crlf, path=Path("crlf.py"), instruction="Add type hints.",
                     symbol="add")
    # the model copies the CR it saw, or writes plain LF: either way the file stays CRLF
    for answer in (TYPED_ADD.replace("\n", "\r\n") + "\r", TYPED_ADD + "\n"):
        result = rewrite_result(task, answer, "stop")
        assert result.problems == ()
        assert result.text is not None
        assert "\r\r" not in result.text
        assert result.text == crlf.replace("def add(a, b):", "def add(a: int, b: int) -> int:")


@pytest.mark.parametrize("kind", ["class", "def"])
def test_deeply_nested_code_is_bounded(kind: str) -> None:
    """1000 nested definitions (past tree-sitter's own depth): no recursion error, a one-line answer."""
    from engine.code import enclosing_scope, fit_to_budget, outline

    depth = 1000
    text = "".join(" " * i + (f"class C{i}:\n" if kind == "class" else f"def f{i}():\n")
                   for i in range(depth)) + " " * depth + "pass\n"
    assert outline(text, "python") is not None
    scope = enclosing_scope(text, "python", depth, 1)
    fitted = fit_to_budget(text, "python", 500, lambda s: len(s) // 4)
    assert fitted.trimmed and fitted.note is not None
    problems = check_rewrite(text, text.replace("pass", "return 1"), "python", scope)
    assert all("\n" not in p.reason for p in problems)
