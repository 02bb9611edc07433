"""The qcode Textual app: loads the engine on a worker thread and pushes the main screen (tui.main_screen).

The app owns what outlives a screen: the settings, the engine (a Backend, built by a loader in a worker) and the
lock that keeps the engine on one thread at a time. Its commands, keys, help and palette come from tui.actions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import BindingsMap, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen

from engine.errors import LoadCancelled, QcodeError
from engine.settings import QcodeSettings

from . import actions, files
from .backend import EngineBackend, Loader, load_engine_backend
from .host import Host
from .main_screen import MainScreen
from .messages import EngineFailed, EngineReady, LoadProgress
from .typed_keys import after_typed_keys
from .widgets import ConfirmScreen, HelpScreen


class QcodeApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "qcode"
    BINDINGS: ClassVar[list[BindingType]] = []  # from tui.actions, per instance (the completion key is a setting)

    def __init__(
        self,
        settings: QcodeSettings,
        path: Path | None = None,
        text: str | None = None,
        loader: Loader = load_engine_backend,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.commands = actions.commands(settings.complete_key)
        self._bindings = BindingsMap(actions.bindings(self.commands, "app"))
        opened: files.OpenedFile | None = None
        if path is not None and text is None:
            opened = files.open_for_editor(path)
        elif path is not None:
            with suppress(QcodeError):  # the CLI read it a moment ago; without a snapshot, saves just write
                opened = files.open_for_editor(path)
        new_file = text is None and opened is not None and opened.new
        if text is None:
            text = opened.text if opened is not None else ""
        self.main = MainScreen(
            self.commands, path, text, new_file=new_file,
            saved=path is not None,  # piped text has never been saved
            snapshot=opened.snapshot if opened is not None else None, bom=opened.bom if opened is not None else False,
        )
        self._loader = loader
        self.backend: EngineBackend | None = None
        self.load_error: str | None = None
        self.engine_lock = threading.Lock()
        self._load_stop = threading.Event()  # stops a model load still in progress

    def on_mount(self) -> None:
        self.push_screen(self.main)
        self.main.engine_loading("loading model…")
        self.load_engine()

    # ---- engine loading ------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load_engine(self) -> None:
        started = time.monotonic()
        last: list[tuple[str, int | None]] = []

        def progress(text: str, fraction: float | None) -> None:
            if self._load_stop.is_set():  # quitting: llama.cpp stops reading the model at its next report
                raise LoadCancelled("the model load was cancelled")
            # llama.cpp reports hundreds of fractions: pass on whole percents only
            step = (text, None if fraction is None else int(fraction * 100))
            if not last or last[-1] != step:
                last.append(step)
                self.post_message(LoadProgress(text, fraction))

        try:
            backend = self._loader(self.settings, progress)
        except QcodeError as exc:
            self.post_message(EngineFailed(str(exc)))
        except Exception as exc:  # any loader crash is a message, never a dead app
            self.post_message(EngineFailed(f"model failed to load: {type(exc).__name__}: {exc}"))
        else:
            self.post_message(EngineReady(backend, time.monotonic() - started))

    def on_load_progress(self, message: LoadProgress) -> None:
        if self.backend is None and self.load_error is None:
            percent = f" {message.fraction:.0%}" if message.fraction is not None else ""
            with suppress(NoMatches):
                self.main.engine_loading(f"loading: {message.text}{percent}")

    def on_engine_ready(self, message: EngineReady) -> None:
        self.backend = message.backend
        with suppress(NoMatches):
            self.main.engine_ready(message.seconds)

    def on_engine_failed(self, message: EngineFailed) -> None:
        self.load_error = message.error
        with suppress(NoMatches):
            self.main.engine_failed()
        self.notify(message.error, title="Model failed to load", severity="error", timeout=15)

    # ---- app-wide commands ---------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.key_rows()))

    def key_rows(self) -> list[tuple[str, str]]:
        """(keys, description) for the help screen, in table order."""
        display = {command.key: self._key_display(command) for command in self.commands}
        return actions.help_rows(self.commands, display)

    def _key_display(self, command: actions.Command) -> str:
        keys = [key.strip() for key in command.keys.split(",")][:2]
        if keys[0] in actions.CTRL_SPACE:
            keys = keys[:1]  # ctrl+@ is only how a terminal spells it
        return " / ".join(self.get_key_display(_binding(key)) for key in keys)

    @after_typed_keys
    async def action_quit(self) -> None:
        if self.main.is_attached and self.main.dirty:
            question = f"Quit without saving {self.main.path.name if self.main.path else 'untitled'}?"
            self.push_screen(ConfirmScreen(question, "Quit", "Stay"), lambda quit_: self._quit() if quit_ else None)
        else:
            self._quit()

    def _quit(self) -> None:
        # textual waits for worker threads on exit: stop the request, or the model load, so that is quick
        self._load_stop.set()
        job = self.main.job
        if job is not None:
            job.cancel.set()
        self.exit(0)

    def shutdown_engine(self, timeout: float = 10.0) -> None:
        """Stop any request and free the model; waits for the worker to leave the engine."""
        self._load_stop.set()
        if self.main.job is not None:
            self.main.job.cancel.set()
        backend, self.backend = self.backend, None
        if backend is not None and self.engine_lock.acquire(timeout=timeout):
            try:
                backend.close()
            finally:
                self.engine_lock.release()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for command in self.commands:
            if command.palette:
                target = self if command.where == "app" else self.main
                yield SystemCommand(command.label, command.help, partial(self.run_action, command.action, target))


def _binding(key: str) -> Any:
    from textual.binding import Binding

    return Binding(key, "")


def run_app(settings: QcodeSettings, path: Path | None, text: str | None) -> int:
    """Run the interface until the user quits; returns the exit code."""
    app = QcodeApp(settings, path, text)
    try:
        app.run()
    finally:
        app.shutdown_engine()
    return app.return_code or 0


_HOST: type[Host] = QcodeApp  # checked by mypy: the main screen's Host is this app
