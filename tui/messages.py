"""Typed messages that worker threads post to the app (post_message is thread-safe)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from engine.events import ProgressEvent, Stats

if TYPE_CHECKING:
    from .backend import EngineBackend


class LoadProgress(Message):
    def __init__(self, text: str, fraction: float | None) -> None:
        super().__init__()
        self.text = text
        self.fraction = fraction


class EngineReady(Message):
    def __init__(self, backend: EngineBackend, seconds: float) -> None:
        super().__init__()
        self.backend = backend
        self.seconds = seconds


class EngineFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class JobMessage(Message):
    """Base of the messages about one request; job_id lets the app drop stale ones."""

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id


class JobChunk(JobMessage):
    def __init__(self, job_id: int, text: str) -> None:
        super().__init__(job_id)
        self.text = text


class JobProgress(JobMessage):
    def __init__(self, job_id: int, progress: ProgressEvent) -> None:
        super().__init__(job_id)
        self.progress = progress


class JobNotice(JobMessage):
    def __init__(self, job_id: int, message: str) -> None:
        super().__init__(job_id)
        self.message = message


class JobDone(JobMessage):
    def __init__(self, job_id: int, text: str, stats: Stats, cancelled: bool) -> None:
        super().__init__(job_id)
        self.text = text
        self.stats = stats
        self.cancelled = cancelled


class JobFailed(JobMessage):
    def __init__(self, job_id: int, error: str) -> None:
        super().__init__(job_id)
        self.error = error
