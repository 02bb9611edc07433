"""Snapshots of the main screens at fixed sizes, on the fake engine (pytest-textual-snapshot).

Update after a deliberate change with `pytest tests/tui_tests/test_tui_snapshots.py --snapshot-update`
and look at the SVGs in tests/tui_tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fake_engine import FakeEngine, default_respond
from textual.pilot import Pilot
from tui_helpers import idle, make_app, ready, until

from engine.events import GenerationRequest
from tui.widgets import ConfirmScreen, DiffReviewScreen, HelpScreen


def respond(request: GenerationRequest) -> str:
    if isinstance(request.prompt, str) and request.prompt.startswith("COMPLETE\n"):
        return "total = a + b\n    print(total)\n    return total"
    if isinstance(request.prompt, str) and "\nexplain\n" in request.prompt:
        return ("## What it does\n\n`add` returns the **sum** of its arguments.\n\n"
                "```python\nadd(1, 2)  # 3\n```\n\n- works for numbers\n- and strings\n")
    return default_respond(request)


async def settle(pilot: Pilot[Any]) -> None:
    """Fix what varies between runs: cursor blink, measured times, toasts."""
    app = pilot.app
    app.main.editor.cursor_blink = False  # the cursor is drawn steadily while the editor has focus
    app.main.editor.notify_style_update()  # drop lines cached in whatever blink phase they were
    app.main.editor.refresh()
    if app.main._state.startswith("ready"):
        app.main._set_state("ready")
    if app.main.metrics.suggestion_ms is not None:
        app.main.metrics.suggestion_ms = 42.0
    app.main._refresh_info()
    app.clear_notifications()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def explain_line_5(pilot: Pilot[Any], app: Any) -> None:
    """The opening both main-screen snapshots share: the model ready, the cursor in `add`, F2 answered."""
    await ready(pilot, app)
    app.main.editor.move_cursor((4, 10))
    await pilot.press("f2")
    await idle(pilot, app)


def test_main_screen_with_answer_and_suggestion(snap_compare: Any) -> None:
    """120x34: the answer beside the editor; a suggestion's first line after the cursor, the rest under the code."""
    app = make_app(engine=FakeEngine(respond=respond))

    async def run_before(pilot: Pilot[Any]) -> None:
        await explain_line_5(pilot, app)
        app.main.editor.move_cursor((5, 0))
        app.main.editor.insert("    ")
        await pilot.press("ctrl+space")
        await until(pilot, lambda: app.main.job is None and app.main.editor.has_ghost)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 34), run_before=run_before)


def test_main_screen_narrow(snap_compare: Any) -> None:
    """80x24: the answer under the editor, the footer's task keys folded into one entry."""
    app = make_app(engine=FakeEngine(respond=respond))

    async def run_before(pilot: Pilot[Any]) -> None:
        await explain_line_5(pilot, app)
        answer = app.main.answer  # longer than its pane here: it follows its end, once laid out
        await until(pilot, lambda: answer.max_scroll_y > 0 and answer.scroll_y == answer.max_scroll_y,
                    what="the answer to show its end")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_main_screen_while_the_prompt_is_read(snap_compare: Any) -> None:
    """80x24: the status line's progress while the engine reads a prompt."""
    engine = FakeEngine(respond=respond, prompt_gate=threading.Event())
    engine.prompt_gate.set()  # the warm-up goes through
    app = make_app(engine=engine)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot, app)
        engine.prompt_gate.clear()
        app.main.editor.move_cursor((4, 10))
        await pilot.press("f4")
        await until(pilot, lambda: app.main.job is not None and app.main.job.progress is not None)
        app.main._ticker.pause()  # type: ignore[union-attr]  # the elapsed time stays as set here
        app.main.job.started = time.monotonic() - 12.2  # type: ignore[union-attr]
        app.main._show_progress()
        await settle(pilot)

    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
    finally:
        engine.prompt_gate.set()


def test_help_screen(snap_compare: Any) -> None:
    app = make_app()

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot, app)
        await settle(pilot)  # a screen under a dialog keeps what it showed when the dialog opened
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def doc_23_lines(request: GenerationRequest) -> str:
    """A doc answer whose diff is 23 lines, and which changes a line of code."""
    prompt = request.prompt if isinstance(request.prompt, str) else ""
    if "\ndoc\n" not in prompt:
        return respond(request)
    code = prompt.partition("\n---\n")[2].replace("a + b", "b + a")
    return "".join(f"# note {i}\n" for i in range(11)) + code + "\n"


@pytest.mark.parametrize("size", [(80, 24), (120, 34)])
def test_diff_review_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    """A 23-line diff, flagged: title, warning and buttons on screen, the diff scrolling between them."""
    app = make_app(engine=FakeEngine(respond=doc_23_lines))

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot, app)
        app.main.editor.move_cursor((4, 10))
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(app.screen, DiffReviewScreen))
        screen = app.screen
        assert isinstance(screen, DiffReviewScreen) and len(screen.diff.splitlines()) == 23
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_confirm_dialog(snap_compare: Any) -> None:
    app = make_app()

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot, app)
        await settle(pilot)
        app.main.editor.insert("# changed\n")
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
