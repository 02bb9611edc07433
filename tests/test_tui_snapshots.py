"""Snapshots of the main screens at fixed sizes, on the fake engine (pytest-textual-snapshot).

Update after a deliberate change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the SVGs in tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

from typing import Any

from fake_engine import FakeEngine, default_respond
from textual.pilot import Pilot
from tui_helpers import idle, make_app, ready, until

from engine.events import GenerationRequest
from tui.widgets import DiffReviewScreen, HelpScreen


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
    app.editor.cursor_blink = False  # the cursor is drawn steadily while the editor has focus
    app.editor.notify_style_update()  # drop lines cached in whatever blink phase they were
    app.editor.refresh()
    if app._state.startswith("ready"):
        app._set_state("ready")
    if app.metrics.suggestion_ms is not None:
        app.metrics.suggestion_ms = 42.0
    app._refresh_info()
    app.clear_notifications()
    await pilot.pause()


def test_main_screen_with_answer_and_suggestion(snap_compare: Any) -> None:
    app = make_app(engine=FakeEngine(respond=respond))

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot, app)
        app.editor.move_cursor((4, 10))
        await pilot.press("f2")
        await idle(pilot, app)
        app.editor.move_cursor((5, 0))
        app.editor.insert("    ")
        await pilot.press("ctrl+space")
        await until(pilot, lambda: app.job is None and app.editor.has_ghost)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 32), run_before=run_before)


def test_main_screen_narrow(snap_compare: Any) -> None:
    app = make_app(engine=FakeEngine(respond=respond))

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot, app)
        app.editor.move_cursor((4, 10))
        await pilot.press("f2")
        await idle(pilot, app)
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_help_screen(snap_compare: Any) -> None:
    app = make_app()

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot, app)
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await settle(pilot)

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def test_diff_review_screen(snap_compare: Any) -> None:
    app = make_app()

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot, app)
        app.prompt.input.value = "use sum"
        app.editor.move_cursor((12, 10))
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, DiffReviewScreen))
        await settle(pilot)

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)
