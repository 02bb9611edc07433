"""Shared scaffolding for the Pilot tests: build the app on an engine, play a scenario, wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fake_engine import FakeEngine, fake_loader
from textual.pilot import Pilot

from engine.settings import QcodeSettings
from tui.app import QcodeApp
from tui.backend import Loader

SAMPLE = '''import math


def add(a, b):
    return a + b


class Circle:
    def __init__(self, radius):
        self.radius = radius

    def area(self):
        return math.pi * self.radius ** 2
'''

Scenario = Callable[[Pilot[int], "RecordingApp"], Awaitable[None]]


class RecordingApp(QcodeApp):
    """QcodeApp that keeps every notification, so tests can read what the user was told."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notes: list[tuple[str, str]] = []

    def notify(self, message: str, **kwargs: Any) -> None:  # type: ignore[override]
        self.notes.append((message, str(kwargs.get("severity", "information"))))
        super().notify(message, **kwargs)

    def noted(self, fragment: str) -> bool:
        return any(fragment in message for message, _ in self.notes)


def make_app(
    text: str | None = SAMPLE,
    path: Path | None = Path("sample.py"),
    engine: FakeEngine | None = None,
    settings: QcodeSettings | None = None,
    loader: Loader | None = None,
    **loader_args: Any,
) -> RecordingApp:
    engine = engine if engine is not None else FakeEngine()
    return RecordingApp(
        settings or QcodeSettings(), path, text,
        loader=loader or fake_loader(engine, **loader_args),
    )


async def until(pilot: Pilot[int], condition: Callable[[], object], timeout: float = 30.0,
                what: str = "condition") -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def ready(pilot: Pilot[int], app: QcodeApp, timeout: float = 30.0) -> None:
    """The engine loaded (or failed to), and the completion warm-up that follows a load is over."""
    await until(pilot, lambda: app.backend is not None or app.load_error is not None,
                timeout, "the engine to load")
    await until(pilot, lambda: app.main.job is None, timeout, "the warm-up")


async def idle(pilot: Pilot[int], app: QcodeApp, timeout: float = 10.0) -> None:
    await until(pilot, lambda: app.main.job is None, timeout, "the request to finish")
    await pilot.pause()


def play(scenario: Scenario, app: RecordingApp | None = None,
         size: tuple[int, int] = (100, 30), timeout: float = 10.0) -> RecordingApp:
    """Run `scenario(pilot, app)` in a headless app; returns the app for checks after exit.

    `timeout` bounds the load and the warm-up before the scenario (the real model needs more).
    """
    app = app if app is not None else make_app()

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await ready(pilot, app, timeout)
            await scenario(pilot, app)

    asyncio.run(main())
    return app


def status_text(app: QcodeApp) -> str:
    state = app.main.query_one("#status-state")
    info = app.main.query_one("#status-info")
    return f"{state.render()} {info.render()}"  # type: ignore[attr-defined]
