"""One engine interface, two implementations: the embedded llama.cpp Engine and a RemoteEngine on an
OpenAI-compatible server. Front ends and engine.tasks use only what Backend names, so they never know which runs.
engine.loader.open_backend picks one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol

from .errors import GenerationError
from .events import ChatTurn, DoneEvent, Event, GenerationRequest
from .fim import FimParts
from .model import ModelInfo
from .settings import QcodeSettings


class Backend(Protocol):
    """What tasks and front ends may use of an engine. Serves one request at a time, from one thread."""

    settings: QcodeSettings
    info: ModelInfo

    @property
    def n_ctx(self) -> int:
        """Context size in tokens that a prompt plus its answer must fit."""
        ...

    @property
    def kv_type(self) -> str:
        """The KV cache type, for stats lines ("server" when a server decides)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` without BOS (a remote backend may estimate)."""
        ...

    def count_turn_tokens(self, turn: ChatTurn) -> int:
        """Tokens of a chat turn as this backend sends it, its template's own included (a remote backend may
        estimate)."""
        ...

    def fim_prompt(self, parts: FimParts) -> str | list[int]:
        """A completion prompt (engine.fim.layout) with the FIM markers the model has; the prefix alone without them."""
        ...

    def stream(self, request: GenerationRequest, cancel: threading.Event | None = None) -> Iterator[Event]:
        """TextEvent pieces, maybe NoticeEvents, and last one DoneEvent."""
        ...

    def complete(self, request: GenerationRequest, cancel: threading.Event | None = None) -> DoneEvent: ...

    def close(self) -> None: ...


class OneRequestAtATime:
    """stream() and complete() over a subclass's _stream, refusing a second request while one runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _stream(self, request: GenerationRequest, cancel: threading.Event) -> Iterator[Event]:
        raise NotImplementedError

    def stream(self, request: GenerationRequest, cancel: threading.Event | None = None) -> Iterator[Event]:
        if not self._lock.acquire(blocking=False):
            raise GenerationError("the engine is busy with another request")
        try:
            yield from self._stream(request, cancel or threading.Event())
        finally:
            self._lock.release()

    def complete(self, request: GenerationRequest, cancel: threading.Event | None = None) -> DoneEvent:
        """Run a request to the end and return its final event."""
        for event in self.stream(request, cancel):
            if isinstance(event, DoneEvent):
                return event
        raise GenerationError("internal error: the stream ended without a result")
