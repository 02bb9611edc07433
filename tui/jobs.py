"""One request to the engine, and the loop a worker thread runs to stream it as messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Literal

from textual.message import Message

from engine.errors import QcodeError
from engine.events import DoneEvent, Event, FinishReason, NoticeEvent, ProgressEvent, Stats, TextEvent
from engine.task_registry import BY_NAME

from .messages import JobChunk, JobDone, JobFailed, JobNotice, JobProgress

Location = tuple[int, int]


@dataclass
class Job:
    id: int
    kind: Literal["task", "complete", "warm"]
    task: str
    cancel: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)
    first_text_at: float | None = None
    # the buffer region the request is about (whole lines): a rewrite replaces exactly this range
    start: Location = (0, 0)
    end: Location = (0, 0)
    original: str = ""  # the region's text
    target: str = ""  # the region in words: "function add", "lines 3-9", "file"
    # what the task was given, kept to turn its answer back into a buffer
    buffer: str = ""
    lines: tuple[int, int] | None = None
    instruction: str | None = None
    # the editor's edit count when the job started: a completion for older text is stale
    version: int = 0
    # the answer so far, filled on the UI thread as chunks arrive
    text: str = ""
    # the engine's last word on how far it got (None: nothing heard yet), and the answer's speed
    progress: ProgressEvent | None = None
    rate: float | None = None
    capped: bool = False  # a completion that filled the preview: stopped on purpose, shown as it is

    @property
    def is_rewrite(self) -> bool:
        return self.kind == "task" and BY_NAME[self.task].rewrites

    @property
    def answers_code(self) -> bool:
        """The answer is bare code: the engine opened its code fence in the prompt."""
        return self.kind == "task" and BY_NAME[self.task].kind == "code"


def drive(
    job: Job,
    open_events: Callable[[], Iterator[Event]],
    lock: threading.Lock,
    post: Callable[[Message], object],
) -> None:
    """Run one request on a worker thread; every outcome ends in JobDone or JobFailed."""
    # the lock keeps a second request off the engine while a cancelled one is still unwinding
    with lock:
        if job.cancel.is_set():
            post(JobDone(job.id, "", Stats(finish_reason="cancelled"), cancelled=True))
            return
        pieces: list[str] = []
        done: DoneEvent | None = None
        events: Iterator[Event] | None = None
        try:
            events = open_events()
            # after a cancel the engine stops at its next step and ends with its DoneEvent; read
            # to the end so its state stays consistent, but show nothing more
            for event in events:
                if isinstance(event, TextEvent):
                    if not job.cancel.is_set():
                        pieces.append(event.text)
                        post(JobChunk(job.id, event.text))
                elif isinstance(event, NoticeEvent):
                    post(JobNotice(job.id, event.message))
                elif isinstance(event, ProgressEvent):
                    if not job.cancel.is_set():
                        post(JobProgress(job.id, event))
                elif isinstance(event, DoneEvent):
                    done = event
        except QcodeError as exc:
            post(JobFailed(job.id, str(exc)))
            return
        except Exception as exc:  # a crash in generation is a notification, not a dead app
            post(JobFailed(job.id, f"generation failed: {type(exc).__name__}: {exc}"))
            return
        finally:
            if isinstance(events, Generator):  # a stream left early releases the engine now
                events.close()
        cancelled = job.cancel.is_set() or (
            done is not None and done.stats.finish_reason == "cancelled"
        )
        if done is None:
            reason: FinishReason = "cancelled" if cancelled else "eog"
            done = DoneEvent("".join(pieces), Stats(finish_reason=reason))
        text = "".join(pieces) if cancelled else done.text or "".join(pieces)
        post(JobDone(job.id, text, done.stats, cancelled))
