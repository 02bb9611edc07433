"""The app end to end on the real default model: load, complete, explain, fix then accept, cancel.

Everything the fake engine stands in for in test_tui_app.py happens here for real once.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from tui_helpers import RecordingApp, idle, play, ready, status_text, until

try:
    import engine.generate  # noqa: F401  (the real engine: llama.cpp and the default model)
except ImportError as exc:  # pragma: no cover - only while the engine is being written
    pytest.skip(f"engine.generate is not importable: {exc}", allow_module_level=True)

from engine.backend import Backend
from engine.change_kind import kind_violation
from engine.completion import AheadKind
from engine.events import Event, Stats, TextEvent
from engine.generate import DECODE_PROGRESS_EVERY
from engine.settings import QcodeSettings, load_settings
from engine.tasks import TaskInput
from tui.backend import EngineBackend, TaskRunner, load_engine_backend
from tui.widgets import DiffReviewScreen
from tui.widgets.status import FINISH_WORDS

pytestmark = pytest.mark.slow
SLOW = 600.0  # seconds: a busy two-core machine decodes a few tokens a second


@pytest.fixture(scope="module")
def settings() -> QcodeSettings:
    # short answers keep the prose tasks quick; rewrites get room for the code whatever this is
    return load_settings(max_tokens=48)


@pytest.fixture(scope="module")
def backend(settings: QcodeSettings) -> Iterator[EngineBackend]:
    """One real engine for the module; the apps below never use it from two threads at once."""
    loaded = load_engine_backend(settings, lambda text, fraction: None)
    try:
        yield loaded
    finally:
        loaded.close()


def record_states(app: RecordingApp) -> list[str]:
    """Every state the status line is given from now on (a fast machine could finish between two polls)."""
    states: list[str] = []
    set_state = app.main._set_state

    def recording(text: str, busy: bool = False, error: bool = False) -> None:
        states.append(text)
        set_state(text, busy, error)

    app.main._set_state = recording  # type: ignore[method-assign]
    return states


def real_app(backend: EngineBackend, settings: QcodeSettings, text: str,
             path: Path = Path("calc.py")) -> RecordingApp:
    return RecordingApp(settings, path, text, loader=lambda s, progress: backend)


def test_real_model_loads_in_a_worker_with_a_visible_loading_state(
    settings: QcodeSettings,
) -> None:
    """The real loader, held at its first progress report until the test has seen the loading state.

    A model in the page cache loads in under a second: without the hold, what the status shows
    while loading depends on the machine's speed.
    """
    reported, release = threading.Event(), threading.Event()

    def held_loader(settings: QcodeSettings, progress: Any) -> EngineBackend:
        def held(text: str, fraction: float | None) -> None:
            progress(text, fraction)
            if not release.is_set():
                reported.set()
                release.wait(SLOW)

        return load_engine_backend(settings, held)

    app = RecordingApp(settings, Path("calc.py"), "x = 1\n", loader=held_loader)
    states: list[str] = []

    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, reported.is_set, SLOW, "the first progress report")
            await until(pilot, lambda: "loading:" in status_text(app), SLOW, "the loading state")
            states.append(status_text(app))
            await pilot.press("y")  # the editor answers keys while the model loads
            assert app.backend is None  # still held: the key went in during the load
            release.set()
            await until(pilot, lambda: app.backend is not None or app.load_error, SLOW)
            await pilot.pause()
            states.append(status_text(app))
            states.append(app.main.editor.text)

    try:
        asyncio.run(main())
    finally:
        release.set()
        app.shutdown_engine()
    assert app.load_error is None  # (shutdown_engine has let the backend go)
    assert "loading:" in states[0]
    assert "ready" in states[1]
    assert "Qwen2.5 Coder 1.5B Instruct GGUF Q4_K_S · kv q8_0 · draft auto" in states[1]
    assert states[2] == "yx = 1\n"


def test_real_completion_shows_ghost_text_that_tab_accepts(
    backend: EngineBackend, settings: QcodeSettings,
) -> None:
    text = "def add(a, b):\n    \n\nprint(add(1, 2))\n"

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor((1, 4))
        await pilot.press("ctrl+space")
        await idle(pilot, app, SLOW)
        assert editor.has_ghost, app.notes
        suggestion = editor.ghost_text
        assert suggestion.strip()
        first = app.main.metrics.suggestion_eval
        assert "suggest" in status_text(app)
        # the same place again: the engine reuses the evaluated prefix
        await pilot.press("escape")
        await pilot.press("ctrl+space")
        await idle(pilot, app, SLOW)
        assert editor.ghost_text == suggestion  # greedy: the same suggestion
        again = app.main.metrics.suggestion_eval
        assert first is not None and again is not None
        assert again[0] < again[1], f"no state reuse: evaluated {again[0]} of {again[1]}"
        await pilot.press("tab")
        assert editor.text == text.replace("    \n", "    " + suggestion + "\n", 1)
        await pilot.press("ctrl+z")
        assert editor.text == text

    play(scenario, real_app(backend, settings, text), timeout=SLOW)


def test_real_explain_streams_markdown_into_the_answer_pane(
    backend: EngineBackend, settings: QcodeSettings,
) -> None:
    text = "def add(a, b):\n    return a + b\n"

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        # record what the pane holds at every write: a fast machine may finish before a poll
        # could catch the answer half-written, so "streams" is checked from the writes themselves
        seen: list[tuple[str, bool]] = []
        write = app.main.answer.write

        async def recording_write(fragment: str) -> None:
            await write(fragment)
            seen.append((app.main.answer.text, app.main.job is not None))

        app.main.answer.write = recording_write  # type: ignore[method-assign]
        states = record_states(app)
        app.main.editor.move_cursor((1, 8))
        await pilot.press("f2")
        await idle(pilot, app, SLOW)
        assert app.main.answer.text.strip()
        streamed = [text for text, running in seen if running]
        assert len(streamed) >= 2, seen  # pieces showed while the request ran, growing the pane
        assert all(later.startswith(earlier) for earlier, later in pairwise(streamed))
        assert app.main.answer.markdown.source == app.main.answer.text
        stats = app.main.metrics.stats
        assert stats is not None
        # how it ended, in words: done, or cut off at the limit (max_tokens is small here)
        ending = FINISH_WORDS.get(stats.finish_reason, "done")
        assert f"explain{':' if ending != 'done' else ''} {ending}" in status_text(app), app.notes
        assert "tok/s" in status_text(app) and "ctx " in status_text(app)
        # the engine's progress reached the status line: the prompt read, then the answer's speed
        # (its total may count a task's reusable prefix too, which the stats leave out)
        read = [re.search(r"prompt ([\d,]+)/([\d,]+) tok", state) for state in states]
        totals = [int(m[2].replace(",", "")) for m in read if m is not None and m[1] == m[2]]
        assert totals and totals[-1] >= stats.prompt_tokens_evaluated > 0, states
        if stats.completion_tokens > 2 * DECODE_PROGRESS_EVERY:
            assert any(re.search(r"explain · \d+ tok · [\d.]+ tok/s", state) for state in states), states

    play(scenario, real_app(backend, settings, text), timeout=SLOW)


@pytest.mark.parametrize(("key", "task"), [("f5", "fix"), ("f6", "doc")])
def test_real_rewrite_shows_a_diff_and_accepting_is_one_undo_step(
    backend: EngineBackend, settings: QcodeSettings, key: str, task: str,
) -> None:
    text = "def add(a, b):\n    return a - b\n"

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        editor = app.main.editor
        editor.move_cursor((1, 8))
        await pilot.press(key)
        await until(pilot, lambda: isinstance(app.screen, DiffReviewScreen) or (
            app.main.job is None and app.notes), SLOW, "the diff")
        assert isinstance(app.screen, DiffReviewScreen), app.notes
        diff = app.screen.diff
        assert diff.startswith("--- a/calc.py")
        # the review flags what the engine's check finds in the rewrite, no more and no less
        new = "".join(line[1:] + "\n" for line in diff.splitlines()[3:] if not line.startswith("-"))
        assert app.screen.warning == kind_violation(task, None, text, new, "python")
        await pilot.press("ctrl+y")
        await pilot.pause()
        assert editor.text == new != text and "def add" in editor.text
        await pilot.press("ctrl+z")
        assert editor.text == text

    play(scenario, real_app(backend, settings, text), timeout=SLOW)


class WrappedTasks:
    """engine.tasks as given: a test's wrapper changes one of its calls."""

    def __init__(self, inner: TaskRunner) -> None:
        self.inner = inner

    def run_task(self, engine: Backend, task: TaskInput, cancel: threading.Event | None = None) -> Iterator[Event]:
        return self.inner.run_task(engine, task, cancel)

    def complete_at(self, engine: Backend, text: str, offset: int, language: str | None = None,
                    max_tokens: int | None = None, cancel: threading.Event | None = None,
                    path: Path | None = None) -> Iterator[Event]:
        return self.inner.complete_at(engine, text, offset, language, max_tokens, cancel, path)

    def evaluate_ahead(self, engine: Backend, text: str, offset: int, kind: AheadKind, path: Path | None = None,
                       language: str | None = None, cancel: threading.Event | None = None) -> Stats:
        return self.inner.evaluate_ahead(engine, text, offset, kind, path, language, cancel)


class CountingTasks(WrappedTasks):
    """engine.tasks, counting the completion warm-ups the app asks for."""

    def __init__(self, inner: TaskRunner) -> None:
        super().__init__(inner)
        self.warm_ups: list[int] = []
        self.prefetches: list[int] = []

    def evaluate_ahead(self, engine: Backend, text: str, offset: int, kind: AheadKind, path: Path | None = None,
                       language: str | None = None, cancel: threading.Event | None = None) -> Stats:
        (self.warm_ups if kind == "warm-up" else self.prefetches).append(offset)
        return super().evaluate_ahead(engine, text, offset, kind, path, language, cancel)


def test_real_completion_is_warmed_up_when_the_file_opens(
    backend: EngineBackend, settings: QcodeSettings,
) -> None:
    counting = CountingTasks(backend.tasks)
    text = "import os\n\n\ndef home():\n    return os.path.expanduser('~')\n"

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        assert counting.warm_ups == [0]  # after the load, at the cursor, before any key
        assert "ready" in status_text(app)
        app.main.editor.move_cursor((4, 0))
        await pilot.press("ctrl+space")
        await idle(pilot, app, SLOW)
        assert not any(severity == "error" for _, severity in app.notes), app.notes

    play(scenario, real_app(EngineBackend(backend.engine, counting, settings), settings, text), timeout=SLOW)


def test_real_completion_after_a_typing_pause_evaluates_one_token(
    backend: EngineBackend, settings: QcodeSettings,
) -> None:
    counting = CountingTasks(backend.tasks)
    text = "import os\n\n\ndef home():\n    return os.path.expanduser('~')\n\n\ndef config_dir():\n    return os.pa"

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await idle(pilot, app, SLOW)  # the warm-up
        app.main.editor.move_cursor((8, 16))  # after "os.pa"
        await pilot.press("t")
        await until(pilot, lambda: counting.prefetches, SLOW, "the prefetch")
        await idle(pilot, app, SLOW)
        assert counting.prefetches == [len(text) + 1]
        await pilot.press("ctrl+space")
        await idle(pilot, app, SLOW)
        stats = app.main.metrics.stats
        assert stats is not None and stats.prompt_tokens_evaluated == 1, stats
        assert app.main.editor.has_ghost

    play(scenario, real_app(EngineBackend(backend.engine, counting, settings), settings, text), timeout=SLOW)


class HeldTasks(WrappedTasks):
    """engine.tasks, with a task's stream held after its first piece until `release`.

    The test presses Esc while the real engine is mid-answer (a fast machine could otherwise
    finish 48 tokens before the key arrives); the engine itself must then stop.
    """

    def __init__(self, inner: TaskRunner) -> None:
        super().__init__(inner)
        self.release = threading.Event()

    def run_task(self, engine: Backend, task: TaskInput, cancel: threading.Event | None = None) -> Iterator[Event]:
        held = False
        for event in self.inner.run_task(engine, task, cancel):
            yield event
            if not held and isinstance(event, TextEvent):
                held = True
                self.release.wait(SLOW)


@pytest.mark.parametrize("key", ["escape", "ctrl+c"])
def test_real_escape_or_ctrl_c_cancels_a_running_answer(
    backend: EngineBackend, settings: QcodeSettings, key: str,
) -> None:
    text = "def add(a, b):\n    return a + b\n"
    held = HeldTasks(backend.tasks)

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await pilot.press("f4")
        await until(pilot, lambda: app.main.answer.text, SLOW, "the first piece")
        await pilot.press(key)
        held.release.set()
        await idle(pilot, app, SLOW)
        assert "review cancelled" in status_text(app)
        assert app.main.answer.text.endswith("*(cancelled)*")
        stats = app.main.metrics.stats
        assert stats is not None and stats.finish_reason == "cancelled"
        assert stats.completion_tokens < settings.max_tokens
        # the engine is free again right away
        app.main.editor.move_cursor((1, 4))
        await pilot.press("ctrl+space")
        await idle(pilot, app, SLOW)
        assert not any(severity == "error" for _, severity in app.notes), app.notes

    play(scenario, real_app(EngineBackend(backend.engine, held, settings), settings, text), timeout=SLOW)


def test_real_model_context_errors_are_notifications(settings: QcodeSettings) -> None:
    """A rewrite that cannot fit a tiny context window says so and leaves the app running."""
    small = load_settings(max_tokens=48, n_ctx=256)
    backend = load_engine_backend(small, lambda text, fraction: None)
    text = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(60))

    async def scenario(pilot: Pilot[int], app: RecordingApp) -> None:
        await ready(pilot, app)
        app.main.editor.move_cursor((200, 0))  # outside any function: the whole file
        await pilot.press("f5")
        await idle(pilot, app, SLOW)
        assert any("does not fit" in note and severity == "error"
                   for note, severity in app.notes), app.notes
        assert app.is_running

    try:
        play(scenario, real_app(backend, small, text), timeout=SLOW)
    finally:
        backend.close()
