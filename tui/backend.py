"""The one seam between the app and the engine: load it, run a task, complete at a cursor.

The app only talks to a Backend, built in a worker thread by a loader; tests hand the app a
loader that wraps tests/fake_engine.FakeEngine in the same EngineBackend, so everything above
engine.tasks runs the same code with the fake and with the real model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engine.errors import ModelError
from engine.events import DoneEvent, NoticeEvent, TextEvent
from engine.settings import QcodeSettings

if TYPE_CHECKING:
    from engine.tasks import Rewrite

Event = TextEvent | NoticeEvent | DoneEvent
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


class Backend(Protocol):
    summary: ModelSummary

    def run_task(
        self, task: str, code: str, *, path: Path | None, language: str | None,
        instruction: str | None, lines: Lines | None, cancel: threading.Event,
        failure: str | None = None,
    ) -> Iterator[Event]: ...

    def rewritten(
        self, task: str, code: str, answer: str, *, path: Path | None, language: str | None,
        instruction: str | None, lines: Lines | None,
    ) -> Rewrite: ...

    def complete(
        self, text: str, offset: int, *, language: str | None, cancel: threading.Event,
        path: Path | None = None,
    ) -> Iterator[Event]: ...

    def warm(
        self, text: str, offset: int, *, language: str | None, cancel: threading.Event,
        path: Path | None = None,
    ) -> None: ...

    def close(self) -> None: ...


class EngineBackend:
    """An Engine plus the engine.tasks functions (or stand-ins with the same signatures)."""

    def __init__(self, engine: Any, tasks: Any, settings: QcodeSettings) -> None:
        self.engine = engine
        self.tasks = tasks
        self.prompts_dir = settings.prompts_dir
        info = engine.info
        k, v = settings.kv_type_k, settings.kv_type_v
        kv = str(getattr(engine, "kv_type", "") or (k if k == v else f"{k}/{v}"))  # a server says "server"
        self.summary = ModelSummary(
            name=str(getattr(info, "name", "") or Path(str(getattr(info, "path", "?"))).stem),
            quant=str(getattr(info, "quant", "") or "?"),
            kv_type=kv,
            drafter=settings.draft,
            n_ctx=int(engine.n_ctx),
        )

    def _input(self, task: str, code: str, path: Path | None, language: str | None,
               instruction: str | None, lines: Lines | None, failure: str | None = None) -> Any:
        return self.tasks.TaskInput(
            task, code, path=path, language=language, instruction=instruction or None,
            lines=lines, failure=failure,
        )

    def run_task(
        self, task: str, code: str, *, path: Path | None, language: str | None,
        instruction: str | None, lines: Lines | None, cancel: threading.Event,
        failure: str | None = None,
    ) -> Iterator[Event]:
        request = self._input(task, code, path, language, instruction, lines, failure)
        return iter(self.tasks.run_task(self.engine, request, cancel))

    def rewritten(
        self, task: str, code: str, answer: str, *, path: Path | None, language: str | None,
        instruction: str | None, lines: Lines | None,
    ) -> Rewrite:
        """The whole buffer as an edit task's (finished) answer would leave it, checked as the CLI
        checks it before --apply writes (text None when the answer holds no code).

        Pure text work (no model), so the UI thread may call it while no request runs.
        """
        request = self._input(task, code, path, language, instruction, lines)
        result: Rewrite = self.tasks.rewrite_result(request, answer, "stop", self.prompts_dir)
        return result

    def complete(
        self, text: str, offset: int, *, language: str | None, cancel: threading.Event,
        path: Path | None = None,
    ) -> Iterator[Event]:
        """Stream a completion at `offset`; `path` (the file edited) brings in its repository's neighbouring files."""
        return iter(self.tasks.complete_at(
            self.engine, text, offset, language=language,
            max_tokens=COMPLETION_MAX_TOKENS, cancel=cancel, path=path,
        ))

    def warm(
        self, text: str, offset: int, *, language: str | None, cancel: threading.Event,
        path: Path | None = None,
    ) -> None:
        """Evaluate ahead what completions near `offset` reuse (engine.completion.warm_completion), in a worker.

        For when a file opens, after a request of another kind, or when the cursor rested far from the last
        completion; `cancel` stops it within about half a second and keeps what it evaluated.
        """
        self.tasks.warm_completion(self.engine, text, offset, path=path, language=language, cancel=cancel)

    def close(self) -> None:
        self.engine.close()


Loader = Callable[[QcodeSettings, Progress], Backend]


def load_engine_backend(settings: QcodeSettings, progress: Progress) -> Backend:
    """Load the real engine (slow: reads the model); raises QcodeError on failure."""
    try:
        import engine.tasks as tasks
        from engine.loader import open_backend
    except ImportError as exc:
        raise ModelError(f"the engine is not available: {exc}") from exc
    # the embedded engine, or a server when settings.server_url names one
    return EngineBackend(open_backend(settings, progress), tasks, settings)
