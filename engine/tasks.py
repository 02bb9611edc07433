"""Single-turn tasks: each request is built fresh and short from one template, the code and its focus.

The tasks are engine.task_registry's rows: prose tasks (explain, review, ask) stream text; code tasks answer with code
only (the prompt opens a code fence for the model, and the n-gram drafter copies from the original), and those that
rewrite (refactor, fix, doc) replace the code they were given, while test writes a new file. Completion at a cursor is
engine.completion's (complete_at and evaluate_ahead are re-exported here).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import code as codetools
from . import edit
from .change_kind import allowed_kind, kind_violation
from .checks import Problem, blocking, check_rewrite, without_unneeded_wildcards
from .completion import complete_at as complete_at
from .completion import evaluate_ahead as evaluate_ahead
from .errors import ContextError, InputError
from .events import ChatTurn, Event, GenerationRequest, NoticeEvent
from .prompts import render
from .task_registry import BY_NAME, NAMES

if TYPE_CHECKING:
    from .backend import Backend
    from .code import Span

CODE_FENCE_END = "```"
# the most of a failing test run's output a fix prompt carries (its end: the summary, the last failure)
FAILURE_MAX_TOKENS = 1024


@dataclass(frozen=True)
class TaskInput:
    task: str
    code: str
    path: Path | None = None
    language: str | None = None
    instruction: str | None = None
    symbol: str | None = None
    lines: tuple[int, int] | None = None
    failure: str | None = None  # what the test command printed when it failed (fix aims at it)

    def resolved_language(self) -> str | None:
        return self.language or codetools.detect_language(self.path, self.code)

    def focus(self) -> codetools.Span | None:
        """The symbol or line range the task is about, or None for the whole input."""
        language = self.resolved_language()
        if self.symbol:
            span = codetools.find_symbol(self.code, language, self.symbol)
            if span is None:
                where = self.path or "the input"
                raise InputError(f"no function or class named {self.symbol!r} in {where}")
            return span
        if self.lines:
            return codetools.line_span(self.code, *self.lines)
        return None


def _fence(language: str | None) -> str:
    # the language's own name ("python", not "py"): the info string code models saw most in training
    return language or ""


def _focus_words(focus: codetools.Span | None) -> str:
    """How the prompt names the part of the file a task is about: "the function `add`", "lines 3-9", or ""."""
    if focus is None:
        return ""
    if focus.kind == "lines":
        return focus.lines
    return f"the {focus.kind} `{focus.name}`"


def _language_name(language: str | None) -> str:
    return {"javascript": "JavaScript", "typescript": "TypeScript", "cpp": "C++", "csharp": "C#"}.get(
        language or "", (language or "").capitalize() or "source"
    )


def _variables(task: TaskInput, language: str | None, focus: codetools.Span | None) -> dict[str, str]:
    """The template variables every task gives besides its code and context."""
    return {
        "focus": _focus_words(focus),
        "language": language or "",
        "language_name": _language_name(language),
        "fence": _fence(language),
        "path": str(task.path) if task.path else "",
        "instruction": (task.instruction or "").strip(),
        "failure": (task.failure or "").strip(),
    }


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")


def _keep_tail(text: str, max_tokens: int, count_tokens: Callable[[str], int]) -> str:
    """The last lines of `text` that fit `max_tokens` (a test run's summary and last failure are at its end)."""
    if count_tokens(text) <= max_tokens:
        return text
    lines = text.split("\n")
    low, high = 1, len(lines)  # the smallest start whose tail fits, found by bisection
    while low < high:
        middle = (low + high) // 2
        if count_tokens("\n".join(lines[middle:])) <= max_tokens:
            high = middle
        else:
            low = middle + 1
    tail = "\n".join(lines[low:])
    if not tail.strip():  # one huge last line: keep its end
        tail = lines[-1][-max_tokens * 2 :]
    return "[... earlier output left out]\n" + tail


def build_request(engine: Backend, task: TaskInput) -> tuple[GenerationRequest, list[str]]:
    """The request for a task and the notices the user should see (what was trimmed)."""
    spec = BY_NAME.get(task.task)
    if spec is None:
        raise InputError(f"unknown task {task.task!r}; choose one of {', '.join(NAMES)}")
    if spec.instruction == "required" and not (task.instruction or "").strip():
        raise InputError("ask needs a question" if spec.name == "ask"
                         else f"{spec.name} needs an instruction: -m \"what to change\"")
    settings = engine.settings
    language = task.resolved_language()
    focus = task.focus()
    editing = spec.rewrites
    variables = _variables(task, language, focus)
    if variables["failure"]:
        limit = min(FAILURE_MAX_TOKENS, engine.n_ctx // 4)
        variables["failure"] = _keep_tail(variables["failure"], limit, engine.count_tokens)
    system = render("system", settings.prompts_dir)
    prefill = f"```{variables['fence']}\n" if spec.kind == "code" else ""

    def turn(code: str, context: str) -> ChatTurn:
        user = render(spec.template, settings.prompts_dir, code=code, context=context, **variables)
        return ChatTurn(system, user, prefill=prefill, think=settings.think)

    overhead = engine.count_turn_tokens(turn("", ""))
    notices: list[str] = []
    target = task.code[focus.start_byte : focus.end_byte] if focus else task.code
    max_tokens = settings.max_tokens
    if editing:
        # the answer repeats the code it rewrites, so it needs room for all of it and some growth
        # (a model stuck in a loop then stops soon, and the answer is refused as cut off)
        max_tokens = int(engine.count_tokens(target) * 1.5) + 128
    budget = engine.n_ctx - overhead - max_tokens - settings.draft_max - 8
    if editing:
        if engine.count_tokens(target) > budget:
            raise ContextError(
                f"the code to rewrite ({engine.count_tokens(target)} tokens) does not fit the "
                f"context of {engine.n_ctx} tokens with room for the answer; focus on part of it "
                "with --symbol NAME or --lines A:B, or raise --ctx"
            )
        context = ""
        if focus is not None:
            outline = codetools.outline(task.code, language, exclude=focus)
            rest_budget = budget - engine.count_tokens(target)
            if outline and engine.count_tokens(outline) <= rest_budget:
                context = outline
            elif outline:
                notices.append("left out the outline of the rest of the file: it does not fit")
        code_text, context_text = target, context
    else:
        fitted = codetools.fit_to_budget(
            task.code, language, max(budget, 0), engine.count_tokens, focus
        )
        if fitted.note:
            notices.append(fitted.note)
        code_text, context_text = fitted.text, ""
        if focus is not None and not fitted.trimmed and len(task.code) != len(target):
            # the focus is the subject; the rest of the file is context only
            code_text = target
            outline = codetools.outline(task.code, language, exclude=focus)
            context_text = outline if engine.count_tokens(outline) < max(budget, 0) else ""
    # the model sees LF line ends whatever the file has: splice gives the file its own back
    code_text, context_text = _lf(code_text), _lf(context_text)
    request = GenerationRequest(
        prompt=turn(code_text, context_text),  # the backend renders it (its system part is the reusable prefix)
        max_tokens=max_tokens,
        stop=(CODE_FENCE_END,) if prefill else (),
        reference=code_text if prefill else "",
    )
    return request, notices


def run_task(
    engine: Backend, task: TaskInput, cancel: threading.Event | None = None
) -> Iterator[Event]:
    """Notices first, then the engine's stream for the task's request."""
    request, notices = build_request(engine, task)
    for notice in notices:
        yield NoticeEvent(notice)
    yield from engine.stream(request, cancel)


def result_to_file(task: TaskInput, answer: str) -> str | None:
    """The whole new file an edit task's answer stands for; None when the answer holds no code.

    The prompt opened a code fence, so the answer is normally bare code; a model that wrote prose and fences
    anyway is handled by extract_code. A focused symbol is spliced back into its file (without the definitions the
    answer copied from the context: edit.drop_echoed_definitions), a whole-file answer
    over all of it (so the file keeps its line endings, indentation style and final newline or lack of one).
    """
    language = task.resolved_language()
    if CODE_FENCE_END in answer:
        new_code = edit.extract_code(answer, language)
    else:
        new_code = answer if answer.strip() else None
    if new_code is None:
        return None
    focus = task.focus()
    if focus is not None and focus.kind != "lines":
        new_code = edit.drop_echoed_definitions(new_code, task.code, focus, language)
    span = focus if focus is not None else edit.whole_span(task.code)
    return edit.splice(task.code, span, new_code.rstrip("\n"))


def scaffolding(task: TaskInput, prompts_dir: Path | None) -> frozenset[str]:
    """The lines of the task's prompt that are not the user's code: the system prompt, the template's
    own text and the outline's placeholders (a test run's output is left out: it quotes real code)."""
    language = task.resolved_language()
    focus = task.focus()
    outline = codetools.outline(task.code, language, exclude=focus) if focus is not None else ""
    variables = {**_variables(task, language, focus), "failure": ""}
    text = render("system", prompts_dir) + "\n" + render(
        BY_NAME[task.task].template, prompts_dir, code="", context=outline, **variables
    )
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


KIND_CHECK = "kind"  # a rewrite's problem (engine.change_kind): a person reviewing its diff may still accept it


@dataclass(frozen=True)
class Rewrite:
    """An edit task's result: the whole new file (None when the answer held no code) and what the
    checks found wrong with it (engine.checks, and engine.change_kind for doc tasks and renames)."""

    text: str | None
    problems: tuple[Problem, ...] = ()

    def refusal(self, force: bool = False, *, reviewed: bool = False) -> Problem | None:
        """The problem that forbids writing the result, or None; `force` overrides the forcible ones.

        A `reviewed` rewrite (a person reads its diff before accepting it, as in the TUI) is not refused for
        changing more than its task allows: `warning` tells the reviewer instead.
        """
        return blocking([p for p in self.problems if not (reviewed and p.check == KIND_CHECK)], force)

    @property
    def warning(self) -> str | None:
        """Why the rewrite changes more than its task allows (a doc task code, a rename logic); None when not."""
        return next((p.reason for p in self.problems if p.check == KIND_CHECK), None)


def rewrite_result(
    task: TaskInput, answer: str, finish_reason: str, prompts_dir: Path | None = None
) -> Rewrite:
    """The new file an edit task's answer stands for, checked (pure text work: no model, no disk)."""
    text = result_to_file(task, answer)
    if text is None:
        return Rewrite(None)
    language, focus = task.resolved_language(), task.focus()
    if language == "python":
        text = without_unneeded_wildcards(task.code, text)
    problems = check_rewrite(
        task.code, text, language, focus, finish_reason=finish_reason,
        scaffolding=scaffolding(task, prompts_dir),
        renaming=allowed_kind(task.task, task.instruction) == "rename",
    )
    if not any(p.check in ("parse", "outside") for p in problems):
        violation = _kind_violation(task, focus, text, language)
        if violation is not None:
            problems.append(Problem(KIND_CHECK, violation))
    return Rewrite(text, tuple(problems))


def _kind_violation(task: TaskInput, focus: Span | None, text: str, language: str | None) -> str | None:
    """engine.change_kind over the focused region (a rename inside one function leaves the same name elsewhere
    alone), or over the whole file; `text` changed nothing outside the focus."""
    if focus is None:
        return kind_violation(task.task, task.instruction, task.code, text, language)
    old = task.code[focus.start_byte : focus.end_byte]
    new = text[focus.start_byte : len(text) - (len(task.code) - focus.end_byte)]
    return kind_violation(task.task, task.instruction, old, new, language, first_line=focus.start_line)
