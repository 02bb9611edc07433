"""The quality benchmark: its checkers (a right and a wrong answer each), its corpus, its sandbox, the apply
path it measures, and one end-to-end run on the real default model."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from engine.events import DoneEvent, Stats
from tui.bench.quality import checks, corpus
from tui.bench.quality.cli import format_table, rewrite_counts, select_cases, summarize
from tui.bench.quality.run import apply_answer, judge, rewrite_task
from tui.bench.quality.sandbox import run_checks

SUBJECTS = corpus.load_subjects()
CASES = corpus.load_cases()

PLAIN = "def area(width, height=1):\n    total = width * height\n    return total\n"


def _tree(text: str) -> ast.Module:
    tree = checks.parse(text)
    assert tree is not None
    return tree


def _function(text: str, name: str = "area") -> ast.FunctionDef:
    node = checks.find_function(_tree(text), name)
    assert isinstance(node, ast.FunctionDef)
    return node


# --- checkers -----------------------------------------------------------------------------------------------


def test_parse_refuses_broken_code() -> None:
    assert checks.parse(PLAIN) is not None
    assert checks.parse("def area(width:\n    return width\n") is None


def test_annotations_complete_or_missing() -> None:
    hinted = "def area(width: float, height: float = 1) -> float:\n    total = width * height\n    return total\n"
    assert checks.missing_annotations(_function(hinted)) == []
    half = "def area(width: float, height=1):\n    total = width * height\n    return total\n"
    assert checks.missing_annotations(_function(half)) == ["height", "return"]
    method = "class A:\n    def area(self, *args: int, **kw: str) -> None:\n        pass\n"
    assert checks.missing_annotations(_function(method)) == []


def test_annotations_only_or_more() -> None:
    hinted = (
        "from typing import Optional\n\n"
        "def area(width: float, height: Optional[float] = 1) -> float:\n"
        "    total: float = width * height\n    return total\n"
    )
    assert checks.same_except_annotations(_tree(PLAIN), _tree(hinted))
    changed = hinted.replace("width * height", "width + height")
    assert not checks.same_except_annotations(_tree(PLAIN), _tree(changed))
    new_default = hinted.replace("= 1)", "= 2)")
    assert not checks.same_except_annotations(_tree(PLAIN), _tree(new_default))


def test_docstring_only_or_more() -> None:
    documented = (
        'def area(width, height=1):\n    """The area of a rectangle."""\n'
        "    # multiply the sides\n    total = width * height\n    return total\n"
    )
    assert checks.has_docstring(_function(documented))
    assert not checks.has_docstring(_function(PLAIN))
    assert checks.same_except_docstrings(_tree(PLAIN), _tree(documented))
    assert not checks.same_except_docstrings(_tree(PLAIN), _tree(documented.replace("return total", "return 0")))


def test_rename_only_or_more() -> None:
    renamed = PLAIN.replace("total", "product")
    assert checks.renamed_only(_tree(PLAIN), _tree(renamed), "total", "product")
    assert "total" not in checks.identifiers(_tree(renamed))
    partly = "def area(width, height=1):\n    product = width * height\n    return product + 0\n"
    assert not checks.renamed_only(_tree(PLAIN), _tree(partly), "total", "product")
    half = "def area(width, height=1):\n    product = width * height\n    return total\n"
    assert "total" in checks.identifiers(_tree(half))  # a half-done rename: the old name is still used


def test_facts_found_or_missing() -> None:
    facts = ("binary search|bisect", "insert")
    right = checks.check_facts("It runs a Binary Search for the place to insert x.", facts)
    assert right.passed and right.missing == ()
    wrong = checks.check_facts("It loops over the list.", facts)
    assert not wrong.passed and wrong.missing == facts


# --- sandbox ------------------------------------------------------------------------------------------------


def test_sandbox_passes_and_fails_with_the_failing_check() -> None:
    tests = "from subject import area\n\ndef test_area():\n    assert area(2, 3) == 6\n"
    assert run_checks(PLAIN, tests).passed
    failed = run_checks(PLAIN.replace("*", "+"), tests)
    assert not failed.passed and failed.detail == "FAIL test_area: assert area(2, 3) == 6 (the left side gave 5)"
    broken = run_checks("def area(:\n", tests)
    assert not broken.passed and broken.detail.startswith("ERROR importing the code: SyntaxError")


def test_sandbox_stops_a_hang_and_keeps_out_of_the_caller_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    monkeypatch.chdir(tmp_path)
    tests = "from subject import area\n\ndef test_area():\n    assert area(2, 3) == 6\n"
    hang = run_checks("while True:\n    pass\n", tests, timeout=1)
    assert hang.timed_out and not hang.passed
    writer = "open('left-behind.txt', 'w').write('x')\n" + PLAIN
    assert run_checks(writer, tests).passed
    assert list(tmp_path.iterdir()) == []


# --- corpus -------------------------------------------------------------------------------------------------


def test_corpus_has_the_sizes_the_issue_asks_for() -> None:
    counts = {kind: sum(c.kind == kind for c in CASES) for kind in corpus.KINDS}
    assert counts["infill-line"] >= 20 and counts["infill-block"] >= 8 and counts["fix"] >= 8
    assert min(counts["hints"], counts["docs"], counts["rename"]) >= 8 and counts["explain"] >= 6
    assert {c.kind for c in CASES if c.quick} == set(corpus.KINDS)
    assert len({c.id for c in CASES}) == len(CASES)


def test_every_subject_passes_its_checks_untouched() -> None:
    for subject in SUBJECTS.values():
        run = run_checks(subject.source, subject.checks)
        assert run.passed, (subject.name, run.detail)


def test_every_blank_and_every_seeded_bug_is_noticed() -> None:
    """A case whose blanked lines or seeded bug the checks would not notice measures nothing."""
    for case in CASES:
        subject = SUBJECTS[case.subject]
        if case.lines is not None:
            text, offset = corpus.infill_input(subject.source, case.lines)
            run = run_checks(text[:offset] + "pass" + text[offset:], subject.checks)
            assert not run.passed, case.id
        if case.mutation is not None:
            broken = corpus.apply_mutation(subject.source, case.mutation)
            assert broken != subject.source
            assert not run_checks(broken, subject.checks).passed, case.id


def test_rename_and_docs_cases_ask_for_a_real_change() -> None:
    for case in CASES:
        subject = SUBJECTS[case.subject]
        function = checks.find_function(_tree(subject.source), subject.function)
        assert function is not None
        if case.kind == "rename":
            assert case.rename is not None
            old, new = case.rename
            names = checks.identifiers(function)
            assert old in names and new not in checks.identifiers(_tree(subject.source)), case.id
        if case.kind == "docs":
            stripped = corpus.without_docstring(subject.source, subject.function)
            node = checks.find_function(_tree(stripped), subject.function)
            assert node is not None and not checks.has_docstring(node), case.id


def test_cases_are_derived_as_committed() -> None:
    """The committed cases are what the seeded derivation gives (one subject, to keep this quick)."""
    subject = SUBJECTS["unhex"]
    derived = [{**c, "quick": False} for c in corpus.derive({"unhex": subject})]
    raw = json.loads((Path(corpus.__file__).parent / "data" / "cases.json").read_text())
    committed = [{**c, "quick": False} for c in raw["cases"] if c["subject"] == "unhex"]
    assert derived == committed


def test_infill_input_blanks_the_lines_to_a_cursor() -> None:
    source = "def f(x):\n    y = x + 1\n    z = y * 2\n    return z\n"
    text, offset = corpus.infill_input(source, (2, 3))
    assert text == "def f(x):\n    \n    return z\n"
    assert text[:offset] == "def f(x):\n    "
    assert corpus.blanked_lines(source, (2, 3)) == "    y = x + 1\n    z = y * 2"


# --- the apply path and the judgement ----------------------------------------------------------------------


def _case(kind: str, subject: str) -> corpus.Case:
    return next(c for c in CASES if c.kind == kind and c.subject == subject)


def _done(text: str, finish: str = "eog") -> DoneEvent:
    return DoneEvent(text, Stats(finish_reason=finish))  # type: ignore[arg-type]


def test_an_unparsable_rewrite_is_refused_and_never_written(tmp_path: Path) -> None:
    case, subject = _case("fix", "unhex"), SUBJECTS["unhex"]
    task = rewrite_task(case, subject, tmp_path / subject.filename)
    before = task.path.read_text()
    outcome = apply_answer(case, subject, task, _done("def unhex(s):\n    bits = (0\n    return bits\n"), 10)
    assert outcome.refused and not outcome.written and not outcome.passed
    assert task.path.read_text() == before
    cut = apply_answer(case, subject, task, _done(subject.source, "length"), 10)
    assert cut.refused and not cut.written
    counts = rewrite_counts([outcome, cut])
    assert counts == {"rewrites": 2, "written": 0, "written_unparsable": 0, "refused": 2}


def test_a_right_fix_is_written_and_passes(tmp_path: Path) -> None:
    case, subject = _case("fix", "unhex"), SUBJECTS["unhex"]
    task = rewrite_task(case, subject, tmp_path / subject.filename)
    outcome = apply_answer(case, subject, task, _done(_original_function(subject)), 10)
    assert outcome.written and outcome.written_parses and outcome.passed, outcome.reason
    wrong = apply_answer(case, subject, task, _done("def unhex(s):\n    return 0\n"), 10)
    assert wrong.written and not wrong.passed and wrong.reason.startswith("FAIL")


def _original_function(subject: corpus.Subject) -> str:
    node = checks.find_function(_tree(subject.source), subject.function)
    assert node is not None
    return ast.get_source_segment(subject.source, node) or ""


def test_judge_rename_hints_docs() -> None:
    subject = SUBJECTS["unhex"]
    source = subject.source
    renamed = re.sub(r"\bbits\b", "value", source)
    assert judge(_case("rename", "unhex"), subject, source, _tree(renamed)) == (True, "")
    assert judge(_case("rename", "unhex"), subject, source, _tree(source))[0] is False
    hinted = source.replace("def unhex(s):", "def unhex(s: bytes) -> int:")
    assert judge(_case("hints", "unhex"), subject, source, _tree(hinted)) == (True, "")
    assert judge(_case("hints", "unhex"), subject, source, _tree(source.replace("def unhex(s):",
                                                                                "def unhex(s: bytes):")))[0] is False
    stripped = corpus.without_docstring(source, "unhex")
    assert judge(_case("docs", "unhex"), subject, stripped, _tree(source)) == (True, "")
    assert judge(_case("docs", "unhex"), subject, stripped, _tree(stripped))[1] == "no docstring"


# --- the command --------------------------------------------------------------------------------------------


def test_select_cases_and_the_table() -> None:
    quick = select_cases(CASES, True, "", "")
    assert 0 < len(quick) < len(CASES) and all(c.quick for c in quick)
    assert [c.kind for c in select_cases(CASES, False, "fix", "unhex")] == ["fix"]
    from engine.errors import QcodeError

    with pytest.raises(QcodeError):
        select_cases(CASES, False, "bogus", "")
    from tui.bench.quality.run import Outcome

    outcomes = [Outcome("a", "fix", True, written=True, written_parses=True), Outcome("b", "fix", False)]
    result = {"model": "m", "name": "n", "quant": "Q4_K_S", "run_s": 1.0, "summary": summarize(outcomes),
              "rewrite_counts": rewrite_counts(outcomes)}
    table = format_table(result)
    assert "fix                 1      2    50%" in table
    assert "rewrites written although they do not parse: 0 (written 1, refused 0, of 2)" in table


def test_bad_kind_is_one_line_and_no_model_loads(run_qcode) -> None:  # type: ignore[no-untyped-def]
    done = run_qcode(["bench", "--quality", "--kinds", "bogus"])
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "qcode bench --quality: error: unknown kind 'bogus'; choose from " + ", ".join(corpus.KINDS)
    ]


@pytest.mark.slow
def test_three_cases_end_to_end_on_the_default_model(run_qcode) -> None:  # type: ignore[no-untyped-def]
    done = run_qcode(["bench", "--quality", "--json", "--cases",
                      "infill-line/unhex:9,fix/unhex,explain/unhex", "--threads", "2"], timeout=1800)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    (model,) = result["models"]
    assert [c["case"] for c in model["cases"]] == ["infill-line/unhex:9", "fix/unhex", "explain/unhex"]
    assert set(model["summary"]) == {"infill-line", "fix", "explain"}
    assert model["rewrite_counts"]["written_unparsable"] == 0
    for case in model["cases"]:
        assert case["answer"].strip(), case
    assert "[3/3]" in done.stderr
