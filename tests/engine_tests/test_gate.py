"""The test command as a gate (engine.gate) and its failure output in a fix prompt (engine.tasks)."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from samples import CODE

from engine import files
from engine.events import ChatTurn
from engine.gate import OUTPUT_MAX_BYTES, run_tests, write_tested
from engine.tasks import FAILURE_MAX_TOKENS, TaskInput, build_request

PY = shlex.quote(sys.executable)


def test_a_passing_and_a_failing_command() -> None:
    passed = run_tests(f"{PY} -c 'print(\"3 passed\")'")
    assert passed.passed and passed.exit_code == 0 and passed.output == "3 passed\n"
    assert passed.outcome() == "passed"
    failed = run_tests(f"{PY} -c 'import sys; print(\"boom\", file=sys.stderr); sys.exit(2)'")
    assert not failed.passed and failed.outcome() == "failed (exit 2)"
    assert failed.output == "boom\n"  # stderr is kept with stdout
    missing = run_tests("no-such-command-anywhere-qcode")
    assert missing.exit_code == 127 and "not found" in missing.output


def test_output_is_bounded_and_keeps_its_end() -> None:
    run = run_tests(f"{PY} -c 'import sys; sys.stdout.write(\"x\" * 10_000_000 + \"THE END\\n\")'")
    assert run.passed
    assert len(run.output.encode()) < OUTPUT_MAX_BYTES + 100
    assert run.output.startswith("[... earlier output left out]") and run.output.endswith("THE END\n")


def test_a_command_past_its_timeout_is_killed_with_its_children() -> None:
    started = time.monotonic()
    # the shell starts a child that would outlive it; both go
    run = run_tests(f"{PY} -c 'import time; time.sleep(300)' & wait", timeout=0.5)
    assert time.monotonic() - started < 30  # a generous bound: it only catches a hang
    assert run.exit_code is None and not run.passed
    assert run.outcome() == "timed out after 0.5 s"


def test_the_gate_keeps_a_passing_rewrite_and_restores_a_failing_one(tmp_path: Path) -> None:
    path = tmp_path / "calc.py"
    path.write_bytes(CODE.encode())
    check = f"{PY} -c 'import calc; assert calc.mul(2, 3) == 6'"
    read = files.read_text(path)
    good = CODE.replace("def mul(a, b):\n    total = 0\n    for _ in range(b):\n        total = total + a\n"
                        "    return total\n", "def mul(a, b):\n    return a * b\n")
    gated = write_tested(path, good, expect=read.snapshot, bom=False, test_cmd=check, timeout=60,
                         cwd=tmp_path)
    assert gated.tests is not None and gated.tests.passed and not gated.restored
    assert path.read_text() == good and gated.written.backup is not None
    gated.written.backup.unlink()
    bad = good.replace("return a * b", "return a + b")
    gated = write_tested(path, bad, expect=gated.written.snapshot, bom=False, test_cmd=check,
                         timeout=60, cwd=tmp_path)
    assert gated.restored and gated.tests is not None and "AssertionError" in gated.tests.output
    assert path.read_text() == good
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["calc.py"]  # no backup left


def test_without_a_command_the_gate_only_writes(tmp_path: Path) -> None:
    path = tmp_path / "calc.py"
    path.write_text(CODE)
    gated = write_tested(path, CODE + "\n# x\n", expect=None, bom=False, test_cmd=" ", timeout=1)
    assert gated.tests is None and not gated.restored and path.read_text().endswith("# x\n")


def test_the_failure_output_goes_into_the_fix_prompt_trimmed_to_its_end(real_engine: Any) -> None:
    """Real tokenizer: the prompt carries the end of a long test run, within the budget."""
    lines = [f"tests/test_calc.py::test_case_{i} PASSED" for i in range(3000)]
    failure = "\n".join([*lines, "E       assert 5 == 6", "FAILED tests/test_calc.py::test_mul - assert 5 == 6",
                         "1 failed, 3000 passed in 0.52s"])
    task = TaskInput("fix", CODE, path=Path("calc.py"), symbol="mul", failure=failure)
    request, _ = build_request(real_engine, task)
    assert isinstance(request.prompt, ChatTurn)
    user = request.prompt.user
    assert "1 failed, 3000 passed" in user and "E       assert 5 == 6" in user
    assert "test_case_0 PASSED" not in user and "[... earlier output left out]" in user
    shown = user[user.index("[... earlier output left out]") :]
    shown = shown[: shown.index("1 failed, 3000 passed") + 30]
    assert real_engine.count_tokens(shown) <= FAILURE_MAX_TOKENS + 16
    # without a failure the prompt says nothing about tests
    plain, _ = build_request(real_engine, TaskInput("fix", CODE, path=Path("calc.py"), symbol="mul"))
    assert isinstance(plain.prompt, ChatTurn) and "tests fail" not in plain.prompt.user


@pytest.mark.parametrize("task", ["refactor", "doc"])
def test_only_fix_shows_the_failure(real_engine: Any, task: str) -> None:
    request, _ = build_request(real_engine, TaskInput(task, CODE, symbol="mul", instruction="x",
                                                      failure="E   assert 5 == 6"))
    assert isinstance(request.prompt, ChatTurn) and "assert 5 == 6" not in request.prompt.user
