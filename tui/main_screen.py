"""The main screen: the editor, the answer pane, the prompt line, the status line and the footer.

Its actions are the main-screen rows of tui.actions. Requests run on worker threads (tui.jobs.drive) and come back
as typed messages; one job at a time, and the app's engine lock keeps a cancelled one off the engine until it has
unwound. Files go through tui.files, a rewrite's region and its allowed kind of change through the engine.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import suppress
from functools import cache, partial, wraps
from pathlib import Path
from typing import Literal, TypeVar, cast

from textual import on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import BindingsMap
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import MountError
from textual.widgets import Input, TextArea

from engine import files as disk
from engine.code import Span, detect_language, enclosing_scope
from engine.completion import AheadKind
from engine.errors import InputError
from engine.events import CUT_OFF, Event, NoticeEvent
from engine.gate import run_tests
from engine.task_registry import BY_NAME

from . import files
from .actions import Command, main_screen_bindings
from .backend import EngineBackend
from .files import FileActions
from .host import Host
from .jobs import Job, Location, drive
from .messages import JobChunk, JobDone, JobFailed, JobNotice, JobProgress
from .rewrites import RewriteActions
from .typed_keys import after_typed_keys
from .widgets import (
    AnswerPane,
    CodeEditor,
    Metrics,
    PromptLine,
    QcodeFooter,
    StatusLine,
)
from .widgets.status import FINISH_WORDS, progress_text

NARROW_WIDTH = 100  # below this the answer pane goes under the editor instead of beside it
SCOPE_DELAY = 0.3  # seconds after the last edit before the scope label is worked out again
# seconds after the last edit before the completion prompt at the cursor is evaluated ahead (one at a time: keys
# typed while one runs wait for it, and then only the latest text is evaluated)
PREFETCH_DELAY = 0.05
Scope = Literal["cursor", "file"]

ScreenT = TypeVar("ScreenT", bound="MainScreen")
MessageT = TypeVar("MessageT", bound=Message)


def _tolerate_teardown(
    handler: Callable[[ScreenT, MessageT], Awaitable[None]],
) -> Callable[[ScreenT, MessageT], Awaitable[None]]:
    """A worker's message can arrive while the app tears its widgets down: drop it then."""

    @wraps(handler)
    async def handle(screen: ScreenT, message: MessageT) -> None:
        with suppress(NoMatches, MountError):
            await handler(screen, message)

    return handle


class MainScreen(FileActions, RewriteActions, Screen[None]):
    def __init__(
        self, commands: Sequence[Command], path: Path | None, text: str, *, new_file: bool = False,
        saved: bool = True, snapshot: disk.Snapshot | None = None, bom: bool = False,
    ) -> None:
        super().__init__()
        self._disk = snapshot
        self._bom = bom
        self._bindings = BindingsMap(main_screen_bindings(commands))
        self.path = path
        self._initial_text = text
        self._saved_text = text if saved else None  # None: never saved (piped text)
        self._new_file = new_file
        self.language: str | None = None
        self.job: Job | None = None
        self._job_ids = 0
        self.metrics = Metrics()
        self.scope: Scope = "cursor"
        self._pending_task: str | None = None  # F3 with an empty prompt: Enter runs it
        self._state = "loading model…"
        self._busy_flag = False
        self._error_flag = False
        self._ticker: Timer | None = None
        self._scope_cache: tuple[int, int, str] | None = None  # (version, row, label)
        self._scope_timer: Timer | None = None
        self._prefetch_timer: Timer | None = None
        self._scope_version = -1  # the editor's version when the label was last worked out

    @property
    def qapp(self) -> Host:
        return cast(Host, self.app)

    # ---- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        self.language = usable_language(detect_language(self.path, self._initial_text))
        with Horizontal(id="main"):
            yield CodeEditor(self._initial_text, language=self.language, id="editor")
            yield AnswerPane(id="answer", classes="-hidden")
        yield PromptLine(id="prompt")
        yield StatusLine(id="status")
        yield QcodeFooter()

    @property
    def editor(self) -> CodeEditor:
        return self.query_one("#editor", CodeEditor)

    @property
    def answer(self) -> AnswerPane:
        return self.query_one("#answer", AnswerPane)

    @property
    def prompt(self) -> PromptLine:
        return self.query_one("#prompt", PromptLine)

    @property
    def status(self) -> StatusLine:
        return self.query_one("#status", StatusLine)

    def on_mount(self) -> None:
        self.editor.focus()
        self._refresh_scope()
        self._refresh_info()

    def on_unmount(self) -> None:
        # however the app ends (Ctrl+Q, a signal, a test harness's exit), a request still running stops at its
        # next step: textual waits for worker threads on the way out
        if self.job is not None:
            self.job.cancel.set()

    def on_resize(self) -> None:
        self.set_class(self.app.size.width < NARROW_WIDTH, "-narrow")

    # ---- the engine's state (told by the app) -----------------------------------------------
    def engine_loading(self, text: str) -> None:
        self._set_state(text, busy=True)

    def engine_ready(self, seconds: float) -> None:
        self._set_state(f"ready (loaded in {seconds:.1f} s)")
        self._refresh_info()
        self.warm_completion()

    def engine_failed(self) -> None:
        self._set_state("model not loaded", error=True)

    def _require_backend(self) -> EngineBackend | None:
        app = self.qapp
        if app.backend is not None:
            return app.backend
        if app.load_error is not None:
            self.notify(app.load_error, title="No model", severity="error")
        else:
            self.notify("The model is still loading.", severity="warning")
        return None

    # ---- requests ------------------------------------------------------------------------
    def _start_job(self, job: Job, open_events: Callable[[], Iterator[Event]], state: str) -> None:
        self.job = job
        if job.kind != "warm":
            self.metrics = Metrics()  # the last request's figures do not describe this one
            self._refresh_info()
            self._set_state(state, busy=True)
            self._ticker = self.set_interval(1.0, self._show_progress)
        self.run_worker(
            partial(drive, job, open_events, self.qapp.engine_lock, self.post_message),
            thread=True, group="job", name=f"{job.task}-{job.id}", exit_on_error=False,
        )

    def _next_job(self, kind: Literal["task", "complete", "warm"], task: str, **fields: object) -> Job:
        self._job_ids += 1
        return Job(self._job_ids, kind, task, version=self.editor.version, **fields)  # type: ignore[arg-type]

    def _busy(self) -> bool:
        job = self.job
        if job is None:
            return False
        if job.kind == "warm":
            job.cancel.set()  # the warm-up gives way; the engine lock queues the new request behind it
            return False
        self.notify(f"Busy with {job.task}: Esc cancels it.", severity="warning")
        return True

    def warm_completion(self) -> None:
        """Prepare the engine for the first Ctrl+Space at the cursor, in the background; any request cancels it."""
        self._evaluate_ahead("warm-up")

    def _prefetch_completion(self) -> None:
        """Typing paused: evaluate the completion prompt at the cursor, so Ctrl+Space there answers at once."""
        self._prefetch_timer = None
        if self.job is not None and self.job.kind == "warm":
            # the last one still runs (a batch is not interrupted): this text's turn comes after it
            self._prefetch_timer = self.set_timer(PREFETCH_DELAY, self._prefetch_completion)
            return
        self._evaluate_ahead("prefetch")

    def _evaluate_ahead(self, what: AheadKind) -> None:
        backend = self.qapp.backend
        if backend is None or self.job is not None or not self.editor.text.strip():
            return
        editor = self.editor
        text, offset, language = editor.text, editor.offset_of(editor.cursor_location), self.language
        job = self._next_job("warm", what)
        path = self.path

        def events() -> Iterator[Event]:
            backend.evaluate_ahead(what, text, offset, language=language, cancel=job.cancel, path=path)
            yield from ()

        self._start_job(job, events, "")

    @after_typed_keys
    def action_complete(self) -> None:
        backend = self._require_backend()
        if backend is None:
            return
        if self.job is not None and self.job.kind == "complete":
            return  # the suggestion is already on its way
        if self._busy():
            return
        editor = self.editor
        editor.dismiss_ghost()
        if not editor.selection.is_empty:
            editor.move_cursor(editor.selection.end)
        where = editor.cursor_location
        text, offset, language = editor.text, editor.offset_of(where), self.language
        job = self._next_job("complete", "complete", start=where, end=where)
        path = self.path
        self._start_job(job, lambda: backend.complete(
            text, offset, language=language, cancel=job.cancel, path=path,
        ), "completing…")

    @after_typed_keys
    async def action_task(self, task: str) -> None:
        if BY_NAME[task].instruction == "required" and not self.prompt.value:
            self._pending_task = task
            self.prompt.expect(task)
            self.app.set_focus(self.prompt.input)
            self.notify("Type what to change, then Enter.", severity="information")
            return
        await self._run_task(task, self.prompt.take())

    @on(Input.Submitted, "#prompt-input")
    async def _prompt_submitted(self, event: Input.Submitted) -> None:
        task, self._pending_task = self._pending_task or "ask", None
        self.prompt.expect(None)
        text = self.prompt.take()
        if text:
            await self._run_task(task, text)
            if self.job is not None:
                self.editor.focus()

    async def _run_task(self, task: str, instruction: str | None) -> None:
        backend = self._require_backend()
        if backend is None or self._busy():
            return
        editor = self.editor
        editor.dismiss_ghost()
        start, end, label, lines = self._target()
        code = editor.get_text_range(start, end)
        if not code.strip():
            self.notify("There is no code to work on.", severity="warning")
            return
        buffer, path, language = editor.text, self.path, self.language
        job = self._next_job("task", task, start=start, end=end, original=code, target=label,
                             buffer=buffer, lines=lines, instruction=instruction)
        self.job = job  # claimed before the await below, so a second key press is refused
        self._show_answer(True)
        # the stream opens before the worker starts, so every chunk finds it ready
        await self.answer.begin(f"{task} · {label}" + (f" · {instruction}" if instruction else ""))
        if job.answers_code:
            # the engine opened a code fence in the prompt: the answer is bare code
            await self.answer.write(f"```{language or ''}\n")
        test_cmd = self.qapp.settings.test_cmd if task == "fix" else ""
        timeout = self.qapp.settings.test_timeout

        def events() -> Iterator[Event]:
            failure = None
            if test_cmd.strip():  # on the worker thread: the tests may take a while
                run = run_tests(test_cmd, timeout=timeout)
                yield NoticeEvent(f"the tests {run.outcome()} before the fix ({test_cmd})")
                failure = None if run.passed else run.output
            # the whole buffer goes with a line focus: the engine adds an outline of the rest
            yield from backend.run_task(
                task, buffer, path=path, language=language, instruction=instruction, lines=lines,
                cancel=job.cancel, failure=failure,
            )

        self._start_job(job, events, f"{task}… (Esc cancels)")

    def _target(self) -> tuple[Location, Location, str, tuple[int, int] | None]:
        """The selection's lines, else (scope "cursor") the function or class at the cursor, else the file.

        Returns the region's start and end locations, its name and its 1-based line range (None: the whole file).
        """
        editor = self.editor
        document = editor.document
        if not editor.selection.is_empty:
            (first, _), (last, last_column) = sorted(editor.selection)
            if last_column == 0 and last > first:
                last -= 1  # a selection of whole lines ends at the start of the next one
            label = f"lines {first + 1}-{last + 1}"
        else:
            row, column = editor.cursor_location
            scope = None
            if self.scope == "cursor":
                scope = scope_at(editor.text, self.language, row, column)
            if scope is None:
                return (0, 0), document.end, "file", None
            first = editor.location_of(scope.start_byte)[0]  # a character offset, despite the name
            last = editor.location_of(scope.end_byte)[0]
            label = f"{scope.kind} {scope.name}".strip()
        start, end = (first, 0), (last, len(document[last]))
        if not editor.get_text_range((0, 0), start).strip() and not editor.get_text_range(
            end, document.end
        ).strip():
            # the region is the whole file: no focus, or the engine would add an empty outline
            return (0, 0), document.end, label, None
        return start, end, label, (first + 1, last + 1)

    def action_toggle_scope(self) -> None:
        self.scope = "file" if self.scope == "cursor" else "cursor"
        self._scope_cache = None
        self._refresh_scope()
        self.notify("Actions work on the whole file." if self.scope == "file"
                    else "Actions work on the code around the cursor.")

    def _refresh_scope(self) -> None:
        """The prompt line's label: what the next action works on."""
        editor = self.editor
        self._scope_version = editor.version
        if not editor.selection.is_empty:
            label = self._target()[2]
        elif self.scope == "file":
            label = "file"
        else:
            # the scope at a row needs a parse of the file: once per edit and row
            row = editor.cursor_location[0]
            cached = self._scope_cache
            if cached is not None and cached[:2] == (editor.version, row):
                label = cached[2]
            else:
                label = self._target()[2]
                self._scope_cache = (editor.version, row, label)
        with suppress(NoMatches):
            self.prompt.set_scope(label)

    def action_cancel(self) -> None:
        if self.job is not None and self.job.kind != "warm":
            self._cancel_job()
            return
        editor = self.editor
        if editor.dismiss_ghost():
            return
        if self._pending_task is not None:
            self._pending_task = None
            self.prompt.expect(None)
        if not editor.has_focus:
            self.app.set_focus(editor)
            return
        raise SkipAction()

    def action_interrupt(self) -> None:
        """Ctrl+C: cancel a running request; with none, let the focused widget copy its selection."""
        if self.job is None or self.job.kind == "warm":
            raise SkipAction()
        self._cancel_job()

    def _cancel_job(self) -> None:
        job = self.job
        if job is not None and not job.cancel.is_set():
            job.cancel.set()
            if job.kind != "warm":
                self._set_state(f"cancelling {job.task}…", busy=True)

    # ---- worker messages -----------------------------------------------------------------
    def _current(self, job_id: int) -> Job | None:
        return self.job if self.job is not None and self.job.id == job_id else None

    @_tolerate_teardown
    async def on_job_chunk(self, message: JobChunk) -> None:
        job = self._current(message.job_id)
        if job is None:
            return
        if job.first_text_at is None:
            job.first_text_at = time.monotonic()
        job.text += message.text
        if job.kind == "complete":
            self._show_suggestion(job)
        elif job.kind == "task":
            await self.answer.write(message.text)

    @_tolerate_teardown
    async def on_job_progress(self, message: JobProgress) -> None:
        job = self._current(message.job_id)
        if job is None or job.kind == "warm":
            return
        progress = job.progress = message.progress
        if progress.stage == "decode" and job.first_text_at is not None:
            seconds = time.monotonic() - job.first_text_at
            job.rate = (progress.done - 1) / seconds if seconds > 0 else None
        self._show_progress()

    def _show_progress(self) -> None:
        job = self.job
        if job is None or job.kind == "warm" or job.cancel.is_set():
            return
        text = progress_text(job.task, job.progress, time.monotonic() - job.started, job.rate)
        self._set_state(text + " (Esc cancels)", busy=True)

    @_tolerate_teardown
    async def on_job_notice(self, message: JobNotice) -> None:
        if self._current(message.job_id) is not None:
            self.notify(message.message, title="Note")

    def _end_job(self) -> None:
        self.job = None
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def _finished(self, job_id: int) -> Job | None:
        """The current job, now over; None when the message is about another one, or a warm-up (nothing to show)."""
        job = self._current(job_id)
        if job is None:
            return None
        self._end_job()
        return None if job.kind == "warm" else job

    @_tolerate_teardown
    async def on_job_done(self, message: JobDone) -> None:
        job = self._finished(message.job_id)
        if job is None:
            return
        elapsed_ms = (time.monotonic() - job.started) * 1000
        stats = message.stats
        if stats.completion_tokens:
            self.metrics.stats = stats
        reason = stats.finish_reason
        if job.kind == "complete":
            self._completion_done(job, message, elapsed_ms)
            self._refresh_info()
            return
        cut_off = reason in CUT_OFF and not message.cancelled
        footnote = "\n\n*(cancelled)*" if message.cancelled else ""
        if cut_off:
            footnote = f"\n\n*({FINISH_WORDS.get(reason, reason)})*"
        await self.answer.finish(self._close_fence(job) + footnote)
        self._refresh_info()
        if message.cancelled:
            self._set_state(f"{job.task} cancelled")
        elif cut_off:
            self._set_state(f"{job.task}: {FINISH_WORDS.get(reason, reason)}", error=True)
            if job.is_rewrite:
                # like the CLI's --apply: a rewrite that did not finish is never offered for applying
                self.notify("The rewrite did not finish, so it is not offered for review.", severity="warning")
        elif job.is_rewrite:
            self._review_rewrite(job, message.text)
        else:
            self._set_state(f"{job.task} done")

    def _completion_done(self, job: Job, message: JobDone, elapsed_ms: float) -> None:
        job.text = message.text
        if message.stats.finish_reason == "partial":
            self.editor.dismiss_ghost()  # a dropped stream: never offer half a suggestion
            self._set_state("completion failed: the answer was cut off", error=True)
        elif message.cancelled:
            if job.capped:
                self._suggestion_shown(job, elapsed_ms, message)  # stopped because it filled the preview
            else:
                self.editor.dismiss_ghost()  # a part-streamed suggestion goes with its request
                self._set_state("completion cancelled")
        elif not job.text.strip():
            self._set_state("no suggestion")
            self.notify("The model suggested nothing here.", severity="warning")
        else:
            self._show_suggestion(job)
            self._suggestion_shown(job, elapsed_ms, message)

    def _suggestion_shown(self, job: Job, elapsed_ms: float, message: JobDone) -> None:
        self.metrics.suggestion_ms = elapsed_ms
        stats = message.stats
        self.metrics.suggestion_eval = (stats.prompt_tokens_evaluated, stats.prompt_tokens)
        self._set_state("Tab accepts, Esc dismisses" if self.editor.has_ghost else "ready")

    @_tolerate_teardown
    async def on_job_failed(self, message: JobFailed) -> None:
        job = self._finished(message.job_id)
        if job is None:
            return
        if job.kind == "task":
            await self.answer.finish(self._close_fence(job))
        self._set_state(f"{job.task} failed", error=True)
        self.notify(message.error, title=f"{job.task.capitalize()} failed", severity="error", timeout=10)

    def _close_fence(self, job: Job) -> str:
        if not job.answers_code:
            return ""
        return ("" if self.answer.text.endswith("\n") else "\n") + "```"

    def _show_suggestion(self, job: Job) -> None:
        editor = self.editor
        if job.capped:
            return  # the preview is full: the rest of the stream is not shown
        if editor.version != job.version or editor.cursor_location != job.start:
            job.cancel.set()  # the text moved on: this suggestion is for a buffer that is gone
            return
        shown = editor.show_ghost(job.text, job.start)
        if shown is not None and shown != job.text:
            job.capped = True  # as much as the preview shows: stop generating
            job.cancel.set()

    @on(TextArea.Changed, "#editor")
    def _editor_changed(self) -> None:
        job = self.job
        if job is not None and job.kind == "complete" and self.editor.version != job.version:
            job.cancel.set()
        self._refresh_state_line()
        # the scope label parses the file: once typing pauses, not on every key
        if self._scope_timer is not None:
            self._scope_timer.stop()
        self._scope_timer = self.set_timer(SCOPE_DELAY, self._refresh_scope)
        if self._prefetch_timer is not None:
            self._prefetch_timer.stop()
        self._prefetch_timer = self.set_timer(PREFETCH_DELAY, self._prefetch_completion)

    @on(TextArea.SelectionChanged, "#editor")
    def _cursor_moved(self) -> None:
        job = self.job
        if job is not None and job.kind == "complete" and self.editor.cursor_location != job.start:
            job.cancel.set()
        if self._scope_version == self.editor.version:  # typing moves the cursor too: its timer waits
            self._refresh_scope()

    @on(CodeEditor.GhostChanged)
    def _ghost_changed(self, event: CodeEditor.GhostChanged) -> None:
        job = self.job
        if not event.shown and job is not None and job.kind == "complete":
            job.cancel.set()  # accepted or dismissed while still streaming: stop it
        if not event.shown and self._state.startswith("Tab accepts"):
            self._set_state("accepted" if event.accepted else "ready")

    # ---- files (the dialogs around them: tui.files.FileActions) -----------------------------
    async def load_file(self, opened: files.OpenedFile) -> None:
        """Show another file: the running request, the answer and the suggestion were about the old one."""
        self._cancel_job()
        self._end_job()  # what it still sends is dropped; the engine lock keeps the next request behind it
        self.path = opened.path
        self._saved_text = opened.text
        self._new_file = opened.new
        self._disk, self._bom = opened.snapshot, opened.bom
        editor = self.editor
        language = usable_language(detect_language(opened.path, opened.text))
        editor.language = None  # load the text without highlighting the old language on it
        editor.load_text(opened.text)
        self._set_language(language)
        await self.answer.clear()
        self._show_answer(False)
        editor.focus()
        self._scope_cache = None
        self._refresh_scope()
        self._set_state("new file: saving creates it" if opened.new else "opened")
        self.call_after_refresh(self.warm_completion)

    def file_saved(self, path: Path, text: str, snapshot: disk.Snapshot) -> None:
        if self.path != path:
            self.path = path
            self._set_language(detect_language(path, text))
        self._saved_text, self._disk = text, snapshot
        self._new_file = False
        self.notify(f"Saved {path}")
        self._refresh_state_line()

    def _set_language(self, language: str | None) -> None:
        self.language = usable_language(language)
        self.editor.language = self.language

    # ---- panes and focus -----------------------------------------------------------------
    def action_focus_prompt(self) -> None:
        # at once, not on the next loop turn as Widget.focus() does: keys typed right after
        # ctrl+l (a paste, a fast typist) must land in the prompt
        self.app.set_focus(self.prompt.input)

    def action_focus_answer(self) -> None:
        answer = self.answer
        if answer.has_focus:
            self._show_answer(False)
            self.app.set_focus(self.editor)
            return
        self._show_answer(True)
        self.app.set_focus(answer)

    def _show_answer(self, visible: bool) -> None:
        self.answer.set_class(not visible, "-hidden")  # the editor keeps its cursor in view as it resizes

    # ---- status line ---------------------------------------------------------------------
    def _set_state(self, text: str, busy: bool = False, error: bool = False) -> None:
        self._state = text
        self._busy_flag = busy
        self._error_flag = error
        self._refresh_state_line()

    def _refresh_state_line(self) -> None:
        # NoMatches: not composed yet, or torn down while a worker's message was on its way
        with suppress(NoMatches):
            mark = " ●" if self.dirty or self._new_file else ""
            self.status.set_state(f"{self._file_name}{mark} │ {self._state}",
                                  busy=self._busy_flag, error=self._error_flag)

    def _refresh_info(self) -> None:
        backend = self.qapp.backend
        summary = backend.summary if backend is not None else None
        with suppress(NoMatches):
            self.status.set_info(summary, self.metrics)


@cache
def _highlightable() -> frozenset[str]:
    return frozenset(TextArea().available_languages)


def usable_language(language: str | None) -> str | None:
    """The language if TextArea has its tree-sitter grammar installed, else None (plain text)."""
    return language if language in _highlightable() else None


def scope_at(text: str, language: str | None, row: int, column: int) -> Span | None:
    """The function or class around a 0-based editor position (the engine counts from 1); None outside any."""
    if language is None:
        return None
    try:
        return enclosing_scope(text, language, row + 1, column + 1)
    except InputError:  # the empty row after a final newline is no line to the engine
        return None
