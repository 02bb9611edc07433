"""Where CLI output goes: answers on stdout, notes/progress/errors on stderr, Ctrl+C as cancel."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import Any, TextIO

from engine.events import DoneEvent, Event, NoticeEvent, Stats, TextEvent

PROG = "qcode"


def err_line(message: str, kind: str = "") -> None:
    """One line on stderr, prefixed like every qcode message."""
    prefix = f"{PROG}: {kind}: " if kind else f"{PROG}: "
    sys.stderr.write(prefix + " ".join(message.splitlines()) + "\n")
    sys.stderr.flush()


class ProgressLine:
    """Progress on stderr: one rewritten line on a terminal, a line per 10% step elsewhere."""

    def __init__(self, stream: TextIO | None = None, *, quiet_unless_tty: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.silent = quiet_unless_tty and not self.tty
        self._open = False
        self._last: tuple[str, int] | None = None
        self._shown = ""

    def __call__(self, message: str, fraction: float | None) -> None:
        if self.silent:
            return
        step = -1 if fraction is None else int(max(0.0, min(fraction, 1.0)) * 100)
        text = message if fraction is None else f"{message}: {step}%"
        if self.tty:
            if text == self._shown:
                return
            self._shown = text
            self.stream.write("\r\x1b[K" + text)
            self._open = True
        else:
            coarse = (message, step // 10 if step >= 0 else -1)
            if coarse == self._last:
                return
            self._last = coarse
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Clear the rewritten line so that what follows starts clean."""
        if self._open:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._open = False


@contextlib.contextmanager
def sigint_cancels(cancel: threading.Event) -> Iterator[None]:
    """While generating, the first Ctrl+C asks the stream to stop; a second one interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def consume(
    events: Iterable[Event], on_text: Callable[[str], None] | None, cancel: threading.Event
) -> DoneEvent:
    """Drive a generation: text to `on_text`, notices to stderr; returns its DoneEvent."""
    done: DoneEvent | None = None
    parts: list[str] = []
    with sigint_cancels(cancel):
        for event in events:
            if isinstance(event, TextEvent):
                parts.append(event.text)
                if on_text is not None:
                    on_text(event.text)
            elif isinstance(event, NoticeEvent):
                err_line(event.message, "note")
            elif isinstance(event, DoneEvent):
                done = event
    if done is None:  # a stream that ended early (cancelled) still has a result
        stats = Stats(finish_reason="cancelled" if cancel.is_set() else "eog")
        done = DoneEvent("".join(parts), stats)
    return done


def was_cancelled(done: DoneEvent, cancel: threading.Event) -> bool:
    return cancel.is_set() or done.stats.finish_reason == "cancelled"


def stats_dict(stats: Stats, model: str = "", kv_type: str = "") -> dict[str, Any]:
    """Stats as JSON-ready figures, filling in model and KV type when the engine left them out."""
    data = stats.to_dict()
    if not data.get("model"):
        data["model"] = model
    if not data.get("kv_type"):
        data["kv_type"] = kv_type
    return data


def print_json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()
