"""Route llama.cpp's log into Python: quiet by default, kept for error messages, parsed for progress."""

from __future__ import annotations

import collections
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import llama_cpp

_recent: collections.deque[str] = collections.deque(maxlen=200)
_listeners: list[Callable[[str], None]] = []
_lock = threading.Lock()
_installed = False
_callback_ref: Any = None  # keeps the ctypes callback alive


_interrupted = threading.Event()  # Ctrl+C arrived inside the callback, where ctypes would swallow it


def _on_log(level: int, text: bytes | None, _user: ctypes.c_void_p) -> None:
    try:
        if not text:
            return
        line = text.decode("utf-8", errors="replace")
        with _lock:
            _recent.append(line)
            listeners = list(_listeners)
        for listener in listeners:
            listener(line)
        if os.environ.get("QCODE_LLAMA_LOG"):
            sys.stderr.write(line)
    except KeyboardInterrupt:
        # an exception cannot leave a ctypes callback (it is printed and dropped, and the load goes on):
        # keep it for raise_if_interrupted, called once llama.cpp returns
        _interrupted.set()


def interrupted() -> bool:
    """Whether Ctrl+C arrived while llama.cpp was logging (not yet raised)."""
    return _interrupted.is_set()


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """While llama.cpp runs, turn Ctrl+C into a flag (see interrupted / raise_if_interrupted).

    Python delivers a signal at the next bytecode it runs, and during a long C call that is the first line of one
    of our ctypes callbacks: a KeyboardInterrupt raised there is printed and dropped, and the call goes on. Only
    the main thread receives signals, so elsewhere this does nothing.
    """
    # a process started in the background (nohup, `&` in a script) ignores SIGINT: it keeps ignoring it
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: _interrupted.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def raise_if_interrupted() -> None:
    """Raise the KeyboardInterrupt that arrived inside a log callback, once."""
    if _interrupted.is_set():
        _interrupted.clear()
        raise KeyboardInterrupt


def install() -> None:
    """Silence llama.cpp's own printing (QCODE_LLAMA_LOG=1 shows it) once per process."""
    global _installed, _callback_ref
    if _installed:
        return
    _callback_ref = llama_cpp.llama_log_callback(_on_log)
    llama_cpp.llama_log_set(_callback_ref, ctypes.c_void_p(0))
    _installed = True


def recent_errors(limit: int = 3) -> str:
    """The last few lines llama.cpp logged that look like errors, to explain a failure."""
    with _lock:
        lines = [line.strip() for line in _recent if "error" in line.lower() or "failed" in line]
    return "; ".join(lines[-limit:])


def clear_recent() -> None:
    with _lock:
        _recent.clear()


@contextmanager
def listening(listener: Callable[[str], None]) -> Iterator[None]:
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
