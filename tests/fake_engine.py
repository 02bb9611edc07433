"""A fast stand-in for the engine, for widget tests.

FakeEngine is an engine.backend.Backend (type-checked: mypy reads this file); FakeTasks is a
tui.backend.TaskRunner: it builds a request and streams it through the FakeEngine; the task input, its
focus and the checked rewrite (rewrite_result) are engine.tasks' own.
Answers come from a `respond(request) -> str` function.
The fake also checks the one rule the app must keep: never two streams at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from engine.backend import Backend
from engine.completion import AheadKind
from engine.errors import GenerationError, ModelError
from engine.events import (
    ChatTurn,
    DoneEvent,
    Event,
    FinishReason,
    GenerationRequest,
    NoticeEvent,
    ProgressEvent,
    Stats,
    TextEvent,
)
from engine.fim import FimParts
from engine.model import ModelInfo
from engine.settings import QcodeSettings, load_settings
from engine.task_registry import BY_NAME
from engine.tasks import TaskInput
from tui.backend import EngineBackend, Progress, TaskRunner


def fake_info() -> ModelInfo:
    return ModelInfo(
        path=Path("/models/fake-coder-1b.Q4_K_S.gguf"), arch="fake", name="fake-coder-1b", quant="Q4_K_S",
        size_bytes=1_000_000, n_ctx_train=32768, vocab_size=32000, n_layer=1, n_embd=1, has_fim=True,
        chat_template=None, n_nextn_layers=0, is_hybrid=False, is_recurrent=False, n_swa=0,
    )


def _rewrite(task: str, instruction: str | None, code: str) -> str:
    """A deterministic 'rewrite': one marker comment line in front of the code."""
    indent = code[: len(code) - len(code.lstrip(" \t"))]
    note = f"{indent}# {task}: {instruction}\n" if instruction else f"{indent}# {task}ed\n"
    return note + code + ("" if code.endswith("\n") else "\n")


def default_respond(request: GenerationRequest) -> str:
    prompt = request.prompt if isinstance(request.prompt, str) else ""
    if prompt.startswith("COMPLETE\n"):
        return "return a + b\n"
    if prompt.startswith("WARM\n"):
        return ""  # a warm-up only evaluates its prompt
    head, _, code = prompt.partition("\n---\n")
    _, task, instruction = [*head.split("\n", 2), "", ""][:3]
    # like engine.tasks, code tasks have a code fence opened for them: the answer is bare code
    spec = BY_NAME.get(task)
    if spec is not None and spec.rewrites:
        return _rewrite(task, instruction or None, code)
    if spec is not None and spec.kind == "code":  # a new file: the tests
        return "def test_add():\n    assert add(1, 2) == 3\n"
    body = " ".join(f"word{i}" for i in range(40))
    return f"## {task.capitalize()}\n\nThis code adds two numbers. {body}\n\n- one\n- two\n"


@dataclass
class FakeEngine:
    respond: Callable[[GenerationRequest], str] = default_respond
    delay: float = 0.002  # seconds per streamed piece
    piece: int = 4  # characters per piece
    n_ctx: int = 4096
    info: ModelInfo = field(default_factory=fake_info)
    settings: QcodeSettings = field(default_factory=load_settings)
    kv_type: str = "q8_0"
    notice: str | None = None
    fail_with: Exception | None = None
    requests: list[GenerationRequest] = field(default_factory=list)
    closed: bool = False
    cancelled: int = 0
    _active: threading.Lock = field(default_factory=threading.Lock)
    # set by a test to hold the stream at its first piece until released
    gate: threading.Event | None = None
    # how an uncancelled answer ends ("length", "partial", ...: answers that did not finish by themselves)
    finish: FinishReason = "eog"
    # set by a test to hold the stream half-way through its prompt, after that ProgressEvent
    prompt_gate: threading.Event | None = None

    @property
    def user_requests(self) -> list[GenerationRequest]:
        """The requests other than the app's completion warm-ups (one-token requests when a file opens)."""
        return [request for request in self.requests if request.max_tokens != 1]

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def count_turn_tokens(self, turn: ChatTurn) -> int:
        return self.count_tokens(f"{turn.system}\n{turn.user}\n{turn.prefill}")

    def fim_prompt(self, parts: FimParts) -> str:
        return f"COMPLETE\n{parts.prefix}<CURSOR>{parts.suffix or ''}"

    def complete(self, request: GenerationRequest, cancel: threading.Event | None = None) -> DoneEvent:
        for event in self.stream(request, cancel):
            if isinstance(event, DoneEvent):
                return event
        raise GenerationError("the fake stream ended without a result")

    def stream(
        self, request: GenerationRequest, cancel: threading.Event | None = None
    ) -> Iterator[Event]:
        if not self._active.acquire(blocking=False):
            raise RuntimeError("FakeEngine used from two threads at once")
        try:
            yield from self._stream(request, cancel)
        finally:
            self._active.release()

    def _stream(
        self, request: GenerationRequest, cancel: threading.Event | None
    ) -> Iterator[Event]:
        if self.closed:
            raise ModelError("engine is closed")
        self.requests.append(request)
        if self.notice:
            yield NoticeEvent(self.notice)
        if self.fail_with is not None:
            raise self.fail_with
        answer = self.respond(request)
        sent: list[str] = []
        reason: FinishReason = self.finish
        if request.max_tokens is not None and len(answer) > request.max_tokens * self.piece:
            answer, reason = answer[: request.max_tokens * self.piece], "length"  # a piece stands for a token
        # progress as the engine reports it: the prompt in two batches, then every 4 pieces of the answer
        total = self.count_tokens(request.prompt if isinstance(request.prompt, str) else "")
        yield ProgressEvent("prompt", 0, total, 0.0)
        yield ProgressEvent("prompt", total // 2, total, 0.5)
        if self.prompt_gate is not None:
            self._hold(cancel, self.prompt_gate)
        if cancel is not None and cancel.is_set():
            self.cancelled += 1
            yield DoneEvent("", Stats(finish_reason="cancelled"))
            return
        yield ProgressEvent("prompt", total, total, 1.0)
        limit = request.max_tokens or len(answer)
        for start in range(0, len(answer), self.piece):
            if self.gate is not None and start:
                self._hold(cancel)
            if cancel is not None and cancel.is_set():
                reason = "cancelled"
                self.cancelled += 1
                break
            time.sleep(self.delay)
            sent.append(answer[start : start + self.piece])
            yield TextEvent(sent[-1])
            if len(sent) % 4 == 0:
                yield ProgressEvent("decode", len(sent), limit, 1.0 + len(sent) / 50)
        prompt = request.prompt if isinstance(request.prompt, str) else ""
        # fixed numbers, so the status line is the same in every snapshot
        yield DoneEvent("".join(sent), Stats(
            prompt_tokens=self.count_tokens(prompt), prompt_tokens_evaluated=5,
            completion_tokens=len(sent), ttft_ms=1.0, decode_tokens_per_s=50.0,
            decode_s=len(sent) / 50.0, draft_proposed=10, draft_accepted=7, draft_steps=3,
            drafter="ngram", kv_type=self.kv_type, model=self.info.name, finish_reason=reason,
        ))

    def _hold(self, cancel: threading.Event | None, gate: threading.Event | None = None) -> None:
        """Wait for the test to open the gate; a cancel ends the wait, as a real step would.

        The wait is long, so a test that times a cancel cannot pass by the gate giving way."""
        gate = gate or self.gate
        assert gate is not None
        deadline = time.monotonic() + 60
        while not gate.is_set() and time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                return
            time.sleep(0.005)

    def close(self) -> None:
        self.closed = True


class FakeTasks:
    """A TaskRunner over any Backend; the prompt spells out what was asked.

    The prompt holds only the focus, so the fake's answers rewrite just that part, as a real model is asked to.
    """

    seen: ClassVar[list[TaskInput]] = []  # every task input run, for tests to read

    @staticmethod
    def focus_text(task: TaskInput) -> str:
        focus = task.focus()
        return task.code if focus is None else task.code[focus.start_byte : focus.end_byte]

    @staticmethod
    def run_task(engine: Backend, task: TaskInput, cancel: threading.Event | None = None) -> Iterator[Event]:
        FakeTasks.seen.append(task)
        code = FakeTasks.focus_text(task)
        prompt = f"TASK\n{task.task}\n{task.instruction or ''}\n---\n{code}"
        return engine.stream(GenerationRequest(prompt, reference=code), cancel)

    @staticmethod
    def complete_at(engine: Backend, text: str, offset: int, language: str | None = None,
                    max_tokens: int | None = None, cancel: threading.Event | None = None,
                    path: Path | None = None) -> Iterator[Event]:
        prompt = engine.fim_prompt(FimParts(text[:offset], text[offset:]))
        return engine.stream(GenerationRequest(prompt, max_tokens=max_tokens), cancel)

    @staticmethod
    def evaluate_ahead(engine: Backend, text: str, offset: int, kind: AheadKind, path: Path | None = None,
                       language: str | None = None, cancel: threading.Event | None = None) -> Stats:
        """Like engine.completion's: a prompt-only request (one token) the engine streams like any other, of the
        text up to the cursor (a warm-up) or of the completion prompt at it (a prefetch)."""
        prompt: str | list[int] = f"WARM\n{text[:offset]}<CURSOR>"
        if kind == "prefetch":
            prompt = engine.fim_prompt(FimParts(text[:offset], text[offset:]))
        events = engine.stream(GenerationRequest(prompt, max_tokens=1), cancel)
        done = [event for event in events if isinstance(event, DoneEvent)]
        return done[-1].stats


# checked by mypy (pyproject's files): the fakes fill the interfaces the real engine and tasks fill
_BACKEND: type[Backend] = FakeEngine
_TASKS: TaskRunner = FakeTasks


def fake_loader(
    engine: FakeEngine | None = None, fail: str | None = None, gate: threading.Event | None = None,
) -> Callable[[QcodeSettings, Progress], EngineBackend]:
    """A loader for QcodeApp(loader=...): reports progress, then gives the fake (or fails).

    With a `gate`, the load holds after its progress report until the test opens it.
    """
    engine = engine if engine is not None else FakeEngine()

    def load(settings: QcodeSettings, progress: Progress) -> EngineBackend:
        progress("reading fake model", 0.5)
        if gate is not None:
            gate.wait(60)
        if fail is not None:
            raise ModelError(fail)
        return EngineBackend(engine, FakeTasks, settings)

    return load
