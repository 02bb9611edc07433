"""The one seam between the app and the engine: load it, run a task, complete at a cursor.

The app only talks to an EngineBackend: an engine.backend.Backend (the embedded Engine, a RemoteEngine, or the
tests' FakeEngine) and the task runner that drives it (engine.tasks, or the tests' stand-in), built in a worker
thread by a loader. So everything above engine.tasks runs the same code with the fake and with the real model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from engine import tasks as engine_tasks
from engine.backend import Backend
from engine.completion import AheadKind
from engine.events import Event, Stats
from engine.settings import QcodeSettings
from engine.tasks import Rewrite, TaskInput, rewrite_result

Progress = Callable[[str, float | None], None]

# a completion is a few lines: keep it short so the suggestion comes back quickly
COMPLETION_MAX_TOKENS = 64


@dataclass(frozen=True)
class ModelSummary:
    """What the status line shows about the loaded model."""

    name: str
    quant: str
    kv_type: str
    drafter: str
    n_ctx: int


Lines = tuple[int, int]  # 1-based, inclusive: the part of the buffer a task is about


class TaskRunner(Protocol):
    """What the app runs on a Backend: engine.tasks (the module satisfies this), or the tests' stand-in."""

    def run_task(
        self, engine: Backend, task: TaskInput, cancel: threading.Event | None = None
    ) -> Iterator[Event]: ...

    def complete_at(
        self, engine: Backend, text: str, offset: int, language: str | None = None,
        max_tokens: int | None = None, cancel: threading.Event | None = None, path: Path | None = None,
    ) -> Iterator[Event]: ...

    def evaluate_ahead(
        self, engine: Backend, text: str, offset: int, kind: AheadKind, path: Path | None = None,
        language: str | None = None, cancel: threading.Event | None = None,
    ) -> Stats: ...


class EngineBackend:
    """A Backend and the task runner that drives it, as the app uses them."""

    def __init__(self, engine: Backend, tasks: TaskRunner, settings: QcodeSettings) -> None:
        self.engine = engine
        self.tasks = tasks
        self.prompts_dir = settings.prompts_dir
        info = engine.info
        self.summary = ModelSummary(
            name=info.name or info.path.stem,
            quant=info.quant or "?",
            kv_type=engine.kv_type,
            drafter=settings.draft,
            n_ctx=engine.n_ctx,
        )

    def run_task(
        self, task: str, code: str, *, path: Path | None, language: str | None,
        instruction: str | None, lines: Lines | None, cancel: threading.Event,
        failure: str | None = None,
    ) -> Iterator[Event]:
        request = _input(task, code, path, language, instruction, lines, failure)
        return iter(self.tasks.run_task(self.engine, request, cancel))

    def rewritten(
        self, task: str, code: str, answer: str, *, path: Path | None, language: str | None,
        instruction: str | None, lines: Lines | None,
    ) -> Rewrite:
        """The whole buffer as an edit task's (finished) answer would leave it, checked as the CLI
        checks it before --apply writes (text None when the answer holds no code).

        Pure text work (no model), so the UI thread may call it while no request runs.
        """
        request = _input(task, code, path, language, instruction, lines)
        return rewrite_result(request, answer, "stop", self.prompts_dir)

    def complete(
        self, text: str, offset: int, *, language: str | None, cancel: threading.Event,
        path: Path | None = None,
    ) -> Iterator[Event]:
        """Stream a completion at `offset`; `path` (the file edited) brings in its repository's neighbouring files."""
        return iter(self.tasks.complete_at(
            self.engine, text, offset, language=language,
            max_tokens=COMPLETION_MAX_TOKENS, cancel=cancel, path=path,
        ))

    def evaluate_ahead(
        self, kind: AheadKind, text: str, offset: int, *, language: str | None, cancel: threading.Event,
        path: Path | None = None,
    ) -> None:
        """Evaluate ahead, in a worker, what completions near `offset` reuse (engine.completion.evaluate_ahead): the
        window around it when a file opens or the cursor rested far from the last completion, or the prompt at it
        while typing pauses. `cancel` stops it within about half a second and keeps what it evaluated."""
        self.tasks.evaluate_ahead(self.engine, text, offset, kind, path=path, language=language, cancel=cancel)

    def close(self) -> None:
        self.engine.close()


def _input(task: str, code: str, path: Path | None, language: str | None, instruction: str | None,
           lines: Lines | None, failure: str | None = None) -> TaskInput:
    return TaskInput(task, code, path=path, language=language, instruction=instruction or None, lines=lines,
                     failure=failure)


Loader = Callable[[QcodeSettings, Progress], EngineBackend]


def load_engine_backend(settings: QcodeSettings, progress: Progress) -> EngineBackend:
    """Load the real engine (slow: reads the model); raises QcodeError on failure."""
    from engine.loader import open_backend

    # the embedded engine, or a server when settings.server_url names one
    return EngineBackend(open_backend(settings, progress), engine_tasks, settings)
