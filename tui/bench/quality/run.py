"""Run the quality cases on one model through the product's own paths, and judge each result.

- infills: `engine.completion.complete_at` (what the editor and `qcode complete` use, with the windows the
  backend's measured prompt cost gives), the completion inserted at the cursor, then the subject's checks;
- rewrites (fix, hints, docs, rename): what `qcode fix|refactor|doc FILE --symbol NAME --apply` does: `run_task`,
  `rewrite_result` and its refusal rules, the same atomic write (onto a copy in a temporary folder); a fix gets the
  failing checks' output as `fix` gets a failing test command's; then the checks and the kind's own judgement;
- explain: `run_task`, and the facts the answer must mention.
Every file the model's work touches lives in a temporary folder; the checks run in a separate process.
"""

from __future__ import annotations

import ast
import contextlib
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.events import DoneEvent, Event, NoticeEvent

from . import checks
from .corpus import Case, Subject, apply_mutation, blanked_lines, infill_input, without_docstring
from .sandbox import DEFAULT_TIMEOUT_S, run_checks

if TYPE_CHECKING:
    from engine.backend import Backend

LANGUAGE = "python"
PROJECT = "Lib"  # the folder the subjects come from in CPython's source
_TASK_OF_KIND = {"fix": "fix", "hints": "refactor", "docs": "doc", "rename": "refactor", "explain": "explain"}


@dataclass
class Outcome:
    """One case's result: passed or not, why, and what the model said."""

    case: str
    kind: str
    passed: bool
    reason: str = ""
    seconds: float = 0.0
    answer: str = ""
    finish_reason: str = ""
    completion_tokens: int = 0
    speed: str = ""  # the engine's figures for the answer: where the time went
    written: bool = False  # a rewrite that the apply path wrote (to the temporary copy)
    written_parses: bool | None = None  # Python's own parser on what was written
    refused: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["seconds"] = round(self.seconds, 2)
        return data


def _from(done: DoneEvent) -> dict[str, Any]:
    stats = done.stats
    return {"answer": done.text, "finish_reason": stats.finish_reason, "completion_tokens": stats.completion_tokens,
            "speed": f"prompt {stats.prompt_tokens} tok ({stats.prompt_tokens_evaluated} evaluated), "
                     f"ttft {stats.ttft_ms / 1000:.1f} s, {stats.completion_tokens} tok at "
                     f"{stats.decode_tokens_per_s:.1f} tok/s, drafter {stats.drafter}"}


def _drain(events: Iterator[Event]) -> tuple[DoneEvent, list[str]]:
    done: DoneEvent | None = None
    notices: list[str] = []
    for event in events:
        if isinstance(event, DoneEvent):
            done = event
        elif isinstance(event, NoticeEvent):
            notices.append(event.message)
    if done is None:
        raise RuntimeError("the engine's stream ended without a result")
    return done, notices


def run_case(
    engine: Backend, case: Case, subject: Subject, timeout: float = DEFAULT_TIMEOUT_S, windows: Any = None
) -> Outcome:
    """One case; `windows` (a CompletionBudget) fixes the infill prompt's windows, None takes the backend's."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qcode-quality-") as folder, contextlib.chdir(_project(folder)):
        # run from the file's folder with a relative path, as `qcode fix bisect.py` would be: the prompt shows the
        # path and the folder's name (completion's repository name), and a temporary folder's name is random
        path = Path(subject.filename)
        if case.kind in ("infill-line", "infill-block"):
            outcome = _infill(engine, case, subject, path, timeout, windows)
        elif case.kind == "explain":
            outcome = _explain(engine, case, subject, path)
        else:
            outcome = _rewrite(engine, case, subject, path, timeout)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _project(folder: str) -> Path:
    project = Path(folder) / PROJECT
    project.mkdir()
    return project


def _infill(engine: Backend, case: Case, subject: Subject, path: Path, timeout: float, windows: Any) -> Outcome:
    from engine.completion import complete_at

    assert case.lines is not None
    text, offset = infill_input(subject.source, case.lines)
    path.write_text(text, encoding="utf-8")
    done, _ = _drain(complete_at(engine, text, offset, language=LANGUAGE, cancel=threading.Event(), path=path,
                                 budget=windows))
    result = text[:offset] + done.text + text[offset:]
    run = run_checks(result, subject.checks, timeout)
    expected = blanked_lines(subject.source, case.lines)
    exact = _normalized(expected) == _normalized(text[offset - len(_line_head(text, offset)) : offset] + done.text)
    return Outcome(
        case.id, case.kind, run.passed, "" if run.passed else run.detail, **_from(done),
        details={"expected": expected, "exact": exact},
    )


def _line_head(text: str, offset: int) -> str:
    return text[text.rfind("\n", 0, offset) + 1 : offset]


def _normalized(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip("\n").split("\n"))


def _explain(engine: Backend, case: Case, subject: Subject, path: Path) -> Outcome:
    from engine.tasks import TaskInput, run_task

    path.write_text(subject.source, encoding="utf-8")
    task = TaskInput("explain", subject.source, path=path, language=LANGUAGE, symbol=subject.function)
    done, _ = _drain(run_task(engine, task, threading.Event()))
    facts = checks.check_facts(done.text, case.facts)
    reason = "" if facts.passed else "does not mention: " + ", ".join(facts.missing)
    return Outcome(
        case.id, case.kind, facts.passed, reason, **_from(done),
        details={"found": list(facts.found), "missing": list(facts.missing)},
    )


def rewrite_input(case: Case, subject: Subject) -> str:
    """The file the rewrite task starts from."""
    if case.kind == "fix":
        assert case.mutation is not None
        return apply_mutation(subject.source, case.mutation)
    if case.kind == "docs":
        return without_docstring(subject.source, subject.function)
    return subject.source


def rewrite_task(case: Case, subject: Subject, path: Path, timeout: float = DEFAULT_TIMEOUT_S) -> Any:
    """The TaskInput a user's `qcode fix|refactor|doc FILE --symbol NAME` builds, on a copy at `path`; a fix
    carries the failing checks' output, as `qcode fix` carries a failing test command's."""
    from engine.tasks import TaskInput

    source = rewrite_input(case, subject)
    path.write_text(source, encoding="utf-8")
    failure = run_checks(source, subject.checks, timeout).detail if case.kind == "fix" else None
    return TaskInput(
        _TASK_OF_KIND[case.kind], source, path=path, language=LANGUAGE, instruction=case.instruction,
        symbol=subject.function, failure=failure,
    )


def _rewrite(engine: Backend, case: Case, subject: Subject, path: Path, timeout: float) -> Outcome:
    from engine.tasks import run_task

    task = rewrite_task(case, subject, path, timeout)
    done, _ = _drain(run_task(engine, task, threading.Event()))
    return apply_answer(case, subject, task, done, timeout, engine.settings.prompts_dir)


def apply_answer(
    case: Case, subject: Subject, task: Any, done: DoneEvent, timeout: float, prompts_dir: Path | None = None
) -> Outcome:
    """What `--apply` does with the answer (refuse, or write atomically to task.path), then the judgement."""
    from engine import files
    from engine.tasks import rewrite_result

    outcome = Outcome(case.id, case.kind, False, **_from(done))
    rewrite = rewrite_result(task, done.text, done.stats.finish_reason, prompts_dir)
    if rewrite.text is None:
        outcome.reason = "no code in the answer"
        return outcome
    problem = rewrite.refusal(False)
    if problem is not None:
        outcome.refused = outcome.reason = problem.message()
        outcome.details["refusals"] = [p.check for p in rewrite.problems]
        return outcome
    files.write_text(task.path, rewrite.text, backup=True)
    outcome.written = True
    written = task.path.read_text(encoding="utf-8")
    tree = checks.parse(written)
    outcome.written_parses = tree is not None
    if tree is None:
        outcome.reason = "written although it does not parse"
        return outcome
    run = run_checks(written, subject.checks, timeout)
    if not run.passed:
        outcome.reason = run.detail
        return outcome
    outcome.passed, outcome.reason = judge(case, subject, task.code, tree)
    return outcome


def judge(case: Case, subject: Subject, before: str, after: ast.Module) -> tuple[bool, str]:
    """Whether a rewrite whose checks pass made the asked change and nothing else."""
    original = checks.parse(before)
    assert original is not None
    function = checks.find_function(after, subject.function)
    if case.kind == "fix":
        return True, ""
    if function is None:
        return False, f"no function {subject.function} in the result"
    if case.kind == "hints":
        missing = checks.missing_annotations(function)
        if missing:
            return False, "not annotated: " + ", ".join(missing)
        if not checks.same_except_annotations(original, after):
            return False, "changed more than the annotations"
        return True, ""
    if case.kind == "docs":
        if not checks.has_docstring(function):
            return False, "no docstring"
        if not checks.same_except_docstrings(original, after):
            return False, "changed more than the docstrings"
        return True, ""
    if case.kind == "rename":
        assert case.rename is not None
        old, new = case.rename
        names = checks.identifiers(function)
        if old in names:
            return False, f"{old} is still used"
        if new not in names:
            return False, f"{new} is not used"
        if not checks.renamed_only(original, after, old, new):
            return False, "changed more than the name"
        return True, ""
    raise ValueError(f"unknown rewrite kind {case.kind!r}")
