"""A fast stand-in for the engine, for widget tests.

FakeEngine honours the Engine contract (info, n_ctx, count_tokens, stream with cancel, close);
FakeTasks honours engine.tasks' (TaskInput, run_task, complete_at) by building a request and
streaming it through the FakeEngine; TaskInput, its focus and result_to_file are engine.tasks' own.
Answers come from a `respond(request) -> str` function.
The fake also checks the one rule the app must keep: never two streams at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from engine import tasks
from engine.errors import ModelError
from engine.events import DoneEvent, GenerationRequest, NoticeEvent, Stats, TextEvent
from engine.settings import QcodeSettings
from engine.tasks import TaskInput
from tui.backend import EngineBackend, Progress

Event = TextEvent | NoticeEvent | DoneEvent


@dataclass(frozen=True)
class FakeInfo:
    path: Path = Path("/models/fake-coder-1b.Q4_K_S.gguf")
    arch: str = "fake"
    name: str = "fake-coder-1b"
    quant: str = "Q4_K_S"
    size_bytes: int = 1_000_000
    n_ctx_train: int = 32768
    vocab_size: int = 32000
    has_fim: bool = True
    chat_template: str | None = None
    n_nextn_layers: int = 0
    is_hybrid: bool = False
    is_recurrent: bool = False
    n_swa: int = 0


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
    if task in ("refactor", "fix", "doc"):
        return _rewrite(task, instruction or None, code)
    if task == "test":
        return "def test_add():\n    assert add(1, 2) == 3\n"
    body = " ".join(f"word{i}" for i in range(40))
    return f"## {task.capitalize()}\n\nThis code adds two numbers. {body}\n\n- one\n- two\n"


@dataclass
class FakeEngine:
    respond: Callable[[GenerationRequest], str] = default_respond
    delay: float = 0.002  # seconds per streamed piece
    piece: int = 4  # characters per piece
    n_ctx: int = 4096
    info: FakeInfo = field(default_factory=FakeInfo)
    notice: str | None = None
    fail_with: Exception | None = None
    requests: list[GenerationRequest] = field(default_factory=list)
    closed: bool = False
    cancelled: int = 0
    _active: threading.Lock = field(default_factory=threading.Lock)
    # set by a test to hold the stream at its first piece until released
    gate: threading.Event | None = None
    # how an uncancelled answer ends ("length", "partial", ...: answers that did not finish by themselves)
    finish: str = "eog"

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

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
        reason = self.finish
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
        prompt = request.prompt if isinstance(request.prompt, str) else ""
        # fixed numbers, so the status line is the same in every snapshot
        yield DoneEvent("".join(sent), Stats(
            prompt_tokens=self.count_tokens(prompt), prompt_tokens_evaluated=5,
            completion_tokens=len(sent), ttft_ms=1.0, decode_tokens_per_s=50.0,
            decode_s=len(sent) / 50.0, draft_proposed=10, draft_accepted=7, draft_steps=3,
            drafter="ngram", kv_type="q8_0", model=self.info.name, finish_reason=reason,  # type: ignore[arg-type]
        ))

    def _hold(self, cancel: threading.Event | None) -> None:
        """Wait for the test to open the gate; a cancel ends the wait, as a real step would.

        The wait is long, so a test that times a cancel cannot pass by the gate giving way."""
        assert self.gate is not None
        deadline = time.monotonic() + 60
        while not self.gate.is_set() and time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                return
            time.sleep(0.005)

    def close(self) -> None:
        self.closed = True


class FakeTasks:
    """engine.tasks' signatures over a FakeEngine; the prompt spells out what was asked.

    The task input, its focus (a symbol or `lines` of the code, else all of it) and the splicing of an
    answer back into the file are engine.tasks' own, so the fake cannot drift from them. The prompt holds
    only the focus, so the fake's answers rewrite just that part, as a real model is asked to.
    """

    TaskInput = TaskInput
    result_to_file = staticmethod(tasks.result_to_file)
    rewrite_result = staticmethod(tasks.rewrite_result)
    seen: ClassVar[list[TaskInput]] = []  # every task input run, for tests to read

    @staticmethod
    def focus_text(task: TaskInput) -> str:
        focus = task.focus()
        return task.code if focus is None else task.code[focus.start_byte : focus.end_byte]

    @staticmethod
    def run_task(engine: Any, task: TaskInput, cancel: threading.Event | None = None
                 ) -> Iterator[Event]:
        FakeTasks.seen.append(task)
        code = FakeTasks.focus_text(task)
        prompt = f"TASK\n{task.task}\n{task.instruction or ''}\n---\n{code}"
        return engine.stream(GenerationRequest(prompt, reference=code), cancel)

    @staticmethod
    def complete_at(engine: Any, text: str, offset: int, language: str | None = None,
                    max_tokens: int | None = None, cancel: threading.Event | None = None,
                    path: Path | None = None) -> Iterator[Event]:
        prompt = f"COMPLETE\n{text[:offset]}<CURSOR>{text[offset:]}"
        return engine.stream(GenerationRequest(prompt, max_tokens=max_tokens), cancel)

    @staticmethod
    def warm_completion(engine: Any, text: str, offset: int, path: Path | None = None,
                        language: str | None = None, cancel: threading.Event | None = None) -> Stats:
        """Like engine.completion's: a prompt-only request (one token) the engine streams like any other."""
        events = engine.stream(GenerationRequest(f"WARM\n{text[:offset]}<CURSOR>", max_tokens=1), cancel)
        done = [event for event in events if isinstance(event, DoneEvent)]
        return done[-1].stats


def fake_loader(
    engine: FakeEngine | None = None, fail: str | None = None, load_delay: float = 0.0,
) -> Callable[[QcodeSettings, Progress], EngineBackend]:
    """A loader for QcodeApp(loader=...): reports progress, then gives the fake (or fails)."""
    engine = engine if engine is not None else FakeEngine()

    def load(settings: QcodeSettings, progress: Progress) -> EngineBackend:
        progress("reading fake model", 0.5)
        time.sleep(load_delay)
        if fail is not None:
            raise ModelError(fail)
        return EngineBackend(engine, FakeTasks, settings)

    return load
