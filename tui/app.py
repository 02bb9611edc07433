"""The qcode Textual app: an editor, a prompt line, a streamed answer, a status line.

The engine loads on a worker thread and every request runs on one too; workers post typed
messages (tui.messages) back, and one lock keeps the engine on one thread at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import suppress
from functools import cache, partial, wraps
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from textual import on, work
from textual.actions import SkipAction
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingsMap, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.events import Resize
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, TextArea

from engine import files
from engine.code import Span, detect_language, enclosing_scope
from engine.edit import unified_diff
from engine.errors import InputError, LoadCancelled, QcodeError
from engine.events import CUT_OFF, Event, NoticeEvent
from engine.gate import GatedWrite, run_tests, write_tested
from engine.settings import QcodeSettings
from engine.tasks import CODE_ANSWER_TASKS

from .backend import EngineBackend, Loader, load_engine_backend
from .jobs import Job, Location, drive
from .messages import (
    EngineFailed,
    EngineReady,
    JobChunk,
    JobDone,
    JobFailed,
    JobNotice,
    LoadProgress,
)
from .widgets import (
    AnswerPane,
    CodeEditor,
    ConfirmScreen,
    DiffReviewScreen,
    GhostLines,
    HelpScreen,
    Metrics,
    PathScreen,
    PromptLine,
    StatusLine,
)

TASKS: tuple[tuple[str, str, str], ...] = (
    # task, key, what it does
    ("explain", "f2", "Explain the code"),
    ("refactor", "f3", "Rewrite the code as the prompt line says"),
    ("review", "f4", "Review the code for bugs and risks"),
    ("fix", "f5", "Fix bugs in the code"),
    ("doc", "f6", "Add documentation to the code"),
    ("test", "f7", "Write tests for the code"),
)
# tasks whose prompt opens a code fence for the model (engine.tasks): their answers are code
NARROW_WIDTH = 100  # below this the answer pane goes under the editor instead of beside it

AppT = TypeVar("AppT", bound=App[int])
MessageT = TypeVar("MessageT", bound=Message)


def _tolerate_teardown(
    handler: Callable[[AppT, MessageT], Awaitable[None]],
) -> Callable[[AppT, MessageT], Awaitable[None]]:
    """A worker's message can arrive while the app tears its widgets down: drop it then."""

    @wraps(handler)
    async def handle(app: AppT, message: MessageT) -> None:
        with suppress(NoMatches):
            await handler(app, message)

    return handle


class QcodeApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "qcode"
    # the completion key comes from settings and is added per instance (see _ordered_bindings)
    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: TextArea binds F6/F7 itself, and the tasks must work from the prompt too
        *(Binding(key, f"task('{task}')", task.capitalize(), priority=True)
          for task, key, _ in TASKS),
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+o", "open", "Open", priority=True),
        Binding("ctrl+l", "focus_prompt", "Prompt", priority=True),
        Binding("ctrl+t", "toggle_answer", "Answer pane", show=False, priority=True),
        Binding("escape", "cancel", "Cancel", show=False, priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        settings: QcodeSettings,
        path: Path | None = None,
        text: str | None = None,
        loader: Loader = load_engine_backend,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.path = path
        # what the file held when read: a save refuses to write over a change made on disk since
        disk: files.TextFile | None = None
        if path is not None and text is None:
            disk = _read_file(path)
        elif path is not None:
            with suppress(QcodeError):  # the CLI read it a moment ago; without a snapshot, saves just write
                disk = _read_file(path)
        self._disk: files.Snapshot | None = disk.snapshot if disk is not None else None
        self._bom = disk.bom if disk is not None else False
        if text is None:
            text = disk.text if disk is not None else ""
            self._saved_text = text
        else:
            # text read for us from `path` is what is on disk; piped text has never been saved
            self._saved_text = text if path is not None else ""
        self._initial_text = text
        self._loader = loader
        self.backend: EngineBackend | None = None
        self.load_error: str | None = None
        self.job: Job | None = None
        self._job_ids = 0
        self._engine_lock = threading.Lock()
        self._load_stop = threading.Event()  # stops a model load still in progress
        self.metrics = Metrics()
        self.language: str | None = None
        self._state = "loading model…"
        self._busy_flag = False
        self._error_flag = False
        self._bindings = _ordered_bindings(self._bindings, settings.complete_key)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # a dialog has the keyboard: the main screen's actions wait until it closes
        return not (action in _MAIN_SCREEN_ACTIONS and len(self.screen_stack) > 1)

    # ---- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        self.language = _usable_language(detect_language(self.path, self._initial_text))
        editor = CodeEditor(self._initial_text, language=self.language, id="editor")
        ghost = GhostLines("", id="ghost")
        editor.ghost_lines = ghost
        with Horizontal(id="main"):
            yield editor
            yield AnswerPane(id="answer", classes="-hidden")
        yield PromptLine(id="prompt")
        yield StatusLine(id="status")
        yield Footer(compact=True, show_command_palette=False)
        yield ghost

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
        self.query_one("#ghost", GhostLines).display = False
        self.editor.focus()
        self._set_state("loading model…", busy=True)
        self._refresh_info()
        self.load_engine()

    def on_resize(self, event: Resize) -> None:
        # on the app, not self.screen: a dialog may be the active screen when the size changes
        self.set_class(event.size.width < NARROW_WIDTH, "-narrow")

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

    @_tolerate_teardown
    async def on_load_progress(self, message: LoadProgress) -> None:
        if self.backend is None and self.load_error is None:
            percent = f" {message.fraction:.0%}" if message.fraction is not None else ""
            self._set_state(f"loading: {message.text}{percent}", busy=True)

    @_tolerate_teardown
    async def on_engine_ready(self, message: EngineReady) -> None:
        self.backend = message.backend
        self._set_state(f"ready (loaded in {message.seconds:.1f} s)")
        self._refresh_info()

    @_tolerate_teardown
    async def on_engine_failed(self, message: EngineFailed) -> None:
        self.load_error = message.error
        self._set_state("model not loaded", error=True)
        self.notify(message.error, title="Model failed to load", severity="error", timeout=15)

    def _require_backend(self) -> EngineBackend | None:
        if self.backend is not None:
            return self.backend
        if self.load_error is not None:
            self.notify(self.load_error, title="No model", severity="error")
        else:
            self.notify("The model is still loading.", severity="warning")
        return None

    # ---- requests ------------------------------------------------------------------------
    def _start_job(self, job: Job, open_events: Callable[[], Iterator[Event]]) -> None:
        self.job = job
        self.run_worker(
            partial(drive, job, open_events, self._engine_lock, self.post_message),
            thread=True, group="job", name=f"{job.task}-{job.id}", exit_on_error=False,
        )

    def _next_job(self, kind: str, task: str, **fields: object) -> Job:
        self._job_ids += 1
        return Job(self._job_ids, kind, task, version=self.editor.version, **fields)  # type: ignore[arg-type]

    def _busy(self) -> bool:
        if self.job is None:
            return False
        self.notify(f"Busy with {self.job.task}: Esc cancels it.", severity="warning")
        return True

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
        self._set_state("completing…", busy=True)
        path = self.path
        self._start_job(job, lambda: backend.complete(
            text, offset, language=language, cancel=job.cancel, path=path,
        ))

    async def action_task(self, task: str) -> None:
        instruction = self.prompt.value or None
        if task == "refactor" and instruction is None:
            self.notify("Type what to change in the prompt line, then press F3.",
                        severity="warning")
            self.set_focus(self.prompt.input)
            return
        await self._run_task(task, instruction)

    @on(Input.Submitted, "#prompt-input")
    async def ask(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if question:
            await self._run_task("ask", question)

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
        self._set_state(f"{task}… (Esc cancels)", busy=True)  # the answer's title names the code
        self._show_answer(True)
        # the stream opens before the worker starts, so every chunk finds it ready
        await self.answer.begin(f"{task} · {label}" + (f" · {instruction}" if instruction else ""))
        if task in CODE_ANSWER_TASKS:
            # the engine opened a code fence in the prompt: the answer is bare code
            await self.answer.write(f"```{language or ''}\n")
        test_cmd = self.settings.test_cmd if task == "fix" else ""

        def events() -> Iterator[Event]:
            failure = None
            if test_cmd.strip():  # on the worker thread: the tests may take a while
                run = run_tests(test_cmd, timeout=self.settings.test_timeout)
                yield NoticeEvent(f"the tests {run.outcome()} before the fix ({test_cmd})")
                failure = None if run.passed else run.output
            # the whole buffer goes with a line focus: the engine adds an outline of the rest
            yield from backend.run_task(
                task, buffer, path=path, language=language, instruction=instruction, lines=lines,
                cancel=job.cancel, failure=failure,
            )

        self._start_job(job, events)

    def _target(self) -> tuple[Location, Location, str, tuple[int, int] | None]:
        """The lines of the selection, else of the scope around the cursor, else the whole file.

        Returns the region's start and end locations, its name and its 1-based line range.
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
            scope = _scope_at(editor.text, self.language, row, column)
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

    def action_cancel(self) -> None:
        if not isinstance(self.screen, Screen) or self.screen is not self.screen_stack[0]:
            raise SkipAction()  # a dialog's own Esc closes it
        if self.job is not None:
            if not self.job.cancel.is_set():
                self.job.cancel.set()
                self._set_state(f"cancelling {self.job.task}…", busy=True)
            return
        if self.editor.dismiss_ghost():
            return
        if self.prompt.input.has_focus:
            self.set_focus(self.editor)
            return
        raise SkipAction()

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
        else:
            await self.answer.write(message.text)

    @_tolerate_teardown
    async def on_job_notice(self, message: JobNotice) -> None:
        if self._current(message.job_id) is not None:
            self.notify(message.message, title="Note")

    @_tolerate_teardown
    async def on_job_done(self, message: JobDone) -> None:
        job = self._current(message.job_id)
        if job is None:
            return
        self.job = None
        elapsed_ms = (time.monotonic() - job.started) * 1000
        if message.stats.completion_tokens:
            self.metrics.stats = message.stats
        cut_off = message.stats.finish_reason in CUT_OFF
        if job.kind == "complete":
            job.text = message.text
            if message.stats.finish_reason == "partial":
                self.editor.dismiss_ghost()  # a dropped stream: never offer half a suggestion
                self._set_state("completion failed: the answer was cut off", error=True)
            elif message.cancelled:
                self.editor.dismiss_ghost()  # a part-streamed suggestion goes with its request
                self._set_state("completion cancelled")
            elif not job.text.strip():
                self._set_state("no suggestion")
                self.notify("The model suggested nothing here.", severity="warning")
            else:
                self.metrics.suggestion_ms = elapsed_ms
                stats = message.stats
                self.metrics.suggestion_eval = (stats.prompt_tokens_evaluated, stats.prompt_tokens)
                shown = self._show_suggestion(job)
                self._set_state("Tab accepts, Esc dismisses" if shown else "ready")
            self._refresh_info()
            return
        await self.answer.finish(self._close_fence(job) + (
            "\n\n*(cancelled)*" if message.cancelled else ""))
        self._refresh_info()
        if message.cancelled:
            self._set_state(f"{job.task} cancelled")
        elif job.is_rewrite and cut_off:
            # like the CLI's --apply: a rewrite that did not finish is never offered for applying
            self._set_state(f"{job.task}: the answer was cut off ({message.stats.finish_reason})", error=True)
            self.notify("The rewrite did not finish, so it is not offered for review.", severity="warning")
        elif job.is_rewrite:
            self._review_rewrite(job, message.text)
        else:
            self._set_state(f"{job.task} done")

    @_tolerate_teardown
    async def on_job_failed(self, message: JobFailed) -> None:
        job = self._current(message.job_id)
        if job is None:
            return
        self.job = None
        if job.kind == "task":
            await self.answer.finish(self._close_fence(job))
        self._set_state(f"{job.task} failed", error=True)
        self.notify(message.error, title=f"{job.task.capitalize()} failed", severity="error",
                    timeout=10)

    def _close_fence(self, job: Job) -> str:
        if job.task not in CODE_ANSWER_TASKS:
            return ""
        return ("" if self.answer.text.endswith("\n") else "\n") + "```"

    def _show_suggestion(self, job: Job) -> bool:
        editor = self.editor
        if editor.version != job.version or editor.cursor_location != job.start:
            job.cancel.set()  # the text moved on: this suggestion is for a buffer that is gone
            return False
        return editor.show_ghost(job.text, job.start)

    @on(TextArea.Changed, "#editor")
    def _editor_changed(self) -> None:
        job = self.job
        if job is not None and job.kind == "complete" and self.editor.version != job.version:
            job.cancel.set()
        self._refresh_state_line()

    @on(TextArea.SelectionChanged, "#editor")
    def _cursor_moved(self) -> None:
        job = self.job
        if job is not None and job.kind == "complete" and self.editor.cursor_location != job.start:
            job.cancel.set()

    @on(CodeEditor.GhostChanged)
    def _ghost_changed(self, event: CodeEditor.GhostChanged) -> None:
        job = self.job
        if not event.shown and job is not None and job.kind == "complete":
            job.cancel.set()  # accepted or dismissed while still streaming: stop it
        if not event.shown and self._state.startswith("Tab accepts"):
            self._set_state("accepted" if event.accepted else "ready")

    # ---- rewrites ------------------------------------------------------------------------
    def _review_rewrite(self, job: Job, answer: str) -> None:
        editor, backend = self.editor, self.backend
        if backend is None:
            return
        try:
            result = backend.rewritten(
                job.task, job.buffer, answer, path=self.path, language=self.language,
                instruction=job.instruction, lines=job.lines,
            )
        except QcodeError as exc:
            self.notify(str(exc), title=f"{job.task.capitalize()} failed", severity="error")
            return
        if result.text is None or not result.text.strip():
            self._set_state(f"{job.task}: no code in the answer", error=True)
            self.notify("The answer holds no code to apply.", severity="warning")
            return
        problem = result.refusal()
        if problem is not None:  # the same checks as the CLI's --apply
            self._set_state(f"{job.task}: not offered", error=True)
            self.notify(f"Not offered for review: {problem.reason}.", severity="error", timeout=10)
            return
        result_text = result.text
        # the new text of the region: what the result has between the untouched head and tail
        head = job.buffer[: editor_offset(job.buffer, job.start)]
        tail = job.buffer[editor_offset(job.buffer, job.end):]
        if not (result_text.startswith(head) and result_text.endswith(tail)):
            self.notify("The rewrite changed code outside its region; not applied.",
                        severity="error")
            return
        proposed = result_text[len(head) : len(result_text) - len(tail)]
        # the region keeps its own trailing newlines: a model's extra blank line is no change
        proposed = proposed.rstrip("\n") + job.original[len(job.original.rstrip("\n")):]
        if proposed == job.original:
            self._set_state(f"{job.task}: no changes")
            self.notify("The rewrite changes nothing.")
            return
        if editor.get_text_range(job.start, job.end) != job.original:
            self._code_changed(job)
            return
        # diff against the buffer as it is now: edits made elsewhere meanwhile are not undone
        now = editor.text
        start, end = editor.offset_of(job.start), editor.offset_of(job.end)
        diff = unified_diff(now, now[:start] + proposed + now[end:], str(self.path or "buffer"))
        self._set_state(f"{job.task}: review the diff")
        self.push_screen(
            DiffReviewScreen(f"{job.task.capitalize()} {job.target}", diff),
            partial(self._apply_rewrite, job, proposed),
        )

    def _apply_rewrite(self, job: Job, proposed: str, accepted: bool | None) -> None:
        if not accepted:
            self._set_state(f"{job.task} rejected")
            return
        editor = self.editor
        if editor.get_text_range(job.start, job.end) != job.original:
            self._code_changed(job)
            return
        editor.history.checkpoint()  # one undo step for the whole rewrite
        editor.replace(proposed, job.start, job.end, maintain_selection_offset=False)
        editor.history.checkpoint()
        editor.move_cursor(job.start)
        # after the dialog closes, so the screen's focus restore does not take it back
        self.call_after_refresh(editor.focus)
        self._set_state(f"{job.task} applied (ctrl+z undoes it)")
        if self.settings.test_cmd.strip() and self.path is not None:
            self._test_accepted(job, self.path)

    def _test_accepted(self, job: Job, path: Path) -> None:
        """With a test command, an accepted rewrite is saved and tested; failing tests put the file
        back as it was and undo the rewrite (as the CLI's --apply --test-cmd does)."""
        text, command = self.editor.text, self.settings.test_cmd
        self._set_state(f"{job.task}: testing ({command})", busy=True)

        def gate() -> None:
            try:
                with files.locked(path):
                    gated = write_tested(path, text, expect=self._disk, bom=self._bom,
                                         test_cmd=command, timeout=self.settings.test_timeout)
            except QcodeError as exc:
                self.call_from_thread(self._tested, job, text, None, str(exc))
            else:
                self.call_from_thread(self._tested, job, text, gated, None)

        self.run_worker(gate, thread=True, group="tests", exit_on_error=False)

    def _tested(self, job: Job, text: str, gated: GatedWrite | None, error: str | None) -> None:
        if gated is None:
            self._set_state(f"{job.task} applied, not tested", error=True)
            self.notify(f"Not saved or tested: {error}", severity="error", timeout=10)
            return
        run = gated.tests
        if not gated.restored:
            self._disk, self._saved_text = gated.written.snapshot, text
            self._set_state(f"{job.task} saved, tests {run.outcome() if run else 'not run'}")
            self._refresh_state_line()
            return
        assert run is not None
        if self.editor.text == text:
            self.editor.undo()  # nothing typed since: the rewrite is the last undo step
        self._set_state(f"{job.task} undone: tests {run.outcome()}", error=True)
        last = run.output.strip().splitlines()[-1:] or [""]
        self.notify(f"The tests {run.outcome()} after the rewrite; {self._file_name} is back as it "
                    f"was. {last[0]}", title="Rewrite undone", severity="error", timeout=15)

    def _code_changed(self, job: Job) -> None:
        self._set_state(f"{job.task} not applied", error=True)
        self.notify("The code changed since the request; the rewrite was not applied.",
                    severity="error")

    # ---- files ---------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return self.editor.text != self._saved_text

    def action_save(self) -> None:
        if self.path is None:
            self.push_screen(PathScreen("", title="Save as (Enter saves, Esc cancels)"),
                             self._save_as)
        else:
            self._save_to(self.path)

    def _save_as(self, path: Path | None) -> None:
        if path is not None and path.exists():
            self.push_screen(ConfirmScreen(f"{path} exists. Overwrite it?", "Overwrite", "Cancel"),
                             lambda yes: self._save_to(path) if yes else None)
        else:
            self._save_to(path)

    def _save_to(self, path: Path | None, overwrite: bool = False) -> None:
        if path is None:
            return
        text = self.editor.text
        # the file as opened may have changed on disk since: ask before writing over that
        expect = self._disk if path == self.path and not overwrite else None
        try:
            with files.locked(path):
                if path.exists() or path.is_symlink():
                    snapshot = files.write_text(path, text, expect=expect, bom=self._bom,
                                                backup=False).snapshot
                else:
                    files.new_file(path, text, bom=self._bom)
                    snapshot = files.Snapshot.of(files.encode(text, self._bom))
        except files.FileChanged:
            question = f"{path.name} changed on disk since it was opened. Overwrite it?"
            self.push_screen(ConfirmScreen(question, "Overwrite", "Cancel"),
                             lambda yes: self._save_to(path, overwrite=True) if yes else None)
            return
        except QcodeError as exc:
            self.notify(str(exc), title="Not saved", severity="error")
            return
        except OSError as exc:
            self.notify(f"cannot write {path}: {exc.strerror or exc}", title="Not saved",
                        severity="error")
            return
        if self.path != path:
            self.path = path
            self._set_language(detect_language(path, text))
        self._saved_text, self._disk = text, snapshot
        self.notify(f"Saved {path}")
        self._refresh_state_line()

    def action_open(self) -> None:
        if self.dirty:
            question = f"Discard unsaved changes to {self._file_name}?"
            self.push_screen(ConfirmScreen(question, "Discard", "Keep"), self._confirmed_open)
        else:
            self._ask_path()

    def _confirmed_open(self, discard: bool | None) -> None:
        if discard:
            self._ask_path()

    def _ask_path(self) -> None:
        start = str(self.path.parent) + "/" if self.path is not None else ""
        self.push_screen(PathScreen(start), self._open_path)

    def _open_path(self, path: Path | None) -> None:
        if path is None:
            return
        try:
            disk = _read_file(path)
        except QcodeError as exc:
            self.notify(str(exc), severity="error")
            return
        text = disk.text if disk is not None else ""
        self.path = path
        self._saved_text = text
        self._disk, self._bom = (disk.snapshot, disk.bom) if disk is not None else (None, False)
        editor = self.editor
        language = _usable_language(detect_language(path, text))
        editor.language = None  # load the text without highlighting the old language on it
        editor.load_text(text)
        self._set_language(language)
        editor.focus()
        self._refresh_state_line()

    def _set_language(self, language: str | None) -> None:
        self.language = _usable_language(language)
        self.editor.language = self.language

    async def action_quit(self) -> None:
        if self.dirty:
            question = f"Quit without saving {self._file_name}?"
            self.push_screen(ConfirmScreen(question, "Quit", "Stay"), self._confirmed_quit)
        else:
            self._quit()

    def _confirmed_quit(self, quit_: bool | None) -> None:
        if quit_:
            self._quit()

    def _quit(self) -> None:
        # textual waits for worker threads on exit: stop the request, or the model load, so that is quick
        self._load_stop.set()
        self._cancel_job()
        self.exit(0)

    def shutdown_engine(self, timeout: float = 10.0) -> None:
        """Stop any request and free the model; waits for the worker to leave the engine."""
        self._load_stop.set()
        if self.job is not None:
            self.job.cancel.set()
        backend, self.backend = self.backend, None
        if backend is not None and self._engine_lock.acquire(timeout=timeout):
            try:
                backend.close()
            finally:
                self._engine_lock.release()

    # ---- other actions -------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.key_rows()))

    def action_focus_prompt(self) -> None:
        # at once, not on the next loop turn as Widget.focus() does: keys typed right after
        # ctrl+l (a paste, a fast typist) must land in the prompt
        self.set_focus(self.prompt.input)

    def action_toggle_answer(self) -> None:
        self._show_answer(self.answer.has_class("-hidden"))

    def _show_answer(self, visible: bool) -> None:
        self.answer.set_class(not visible, "-hidden")

    def key_rows(self) -> list[tuple[str, str]]:
        """(keys, description) for the help screen, from the live bindings."""
        keys_of: dict[str, list[str]] = {}
        for bindings in self._bindings.key_to_bindings.values():
            for binding in bindings:
                if binding.description:
                    shown = self.get_key_display(binding)
                    keys = keys_of.setdefault(binding.action, [])
                    if shown not in keys:
                        keys.append(shown)
        rows = [(" / ".join(keys[:2]), _ACTION_HELP.get(action, action))
                for action, keys in keys_of.items()]
        return [
            *rows,
            ("tab / →", "Accept the suggestion"),
            ("^z / ^y", "Undo / redo"),
            ("enter", "In the prompt line: ask the question about the code"),
        ]

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Complete", "Suggest code at the cursor", self.action_complete)
        for task, _key, text in TASKS:
            yield SystemCommand(task.capitalize(), text, partial(self.action_task, task))
        yield SystemCommand("Ask", "Ask the prompt line's question about the code",
                            self._ask_from_palette)
        yield SystemCommand("Save", "Save the file", self.action_save)
        yield SystemCommand("Open", "Open another file", self.action_open)
        yield SystemCommand("Cancel request", "Stop the running request", self._cancel_job)
        yield SystemCommand("Toggle answer pane", "Show or hide the answer",
                            self.action_toggle_answer)
        yield SystemCommand("Focus prompt", "Type an instruction or question",
                            self.action_focus_prompt)
        yield SystemCommand("Help", "Keys and how actions pick their code", self.action_help)

    async def _ask_from_palette(self) -> None:
        if self.prompt.value:
            await self._run_task("ask", self.prompt.value)
        else:
            self.notify("Type the question in the prompt line first.", severity="warning")
            self.set_focus(self.prompt.input)

    def _cancel_job(self) -> None:
        if self.job is not None:
            self.job.cancel.set()

    # ---- status line ---------------------------------------------------------------------
    @property
    def _file_name(self) -> str:
        return self.path.name if self.path is not None else "untitled"

    def _set_state(self, text: str, busy: bool = False, error: bool = False) -> None:
        self._state = text
        self._busy_flag = busy
        self._error_flag = error
        self._refresh_state_line()

    def _refresh_state_line(self) -> None:
        # NoMatches: not composed yet, or torn down while a worker's message was on its way
        with suppress(NoMatches):
            mark = " ●" if self.dirty else ""
            self.status.set_state(f"{self._file_name}{mark} │ {self._state}",
                                  busy=self._busy_flag, error=self._error_flag)

    def _refresh_info(self) -> None:
        summary = self.backend.summary if self.backend is not None else None
        with suppress(NoMatches):
            self.status.set_info(summary, self.metrics)


_MAIN_SCREEN_ACTIONS = frozenset({
    "complete", "task", "save", "open", "focus_prompt", "toggle_answer", "help",
})
_ACTION_HELP = {
    "complete": "Complete at the cursor (ghost text)",
    **{f"task('{task}')": text for task, _key, text in TASKS},
    "save": "Save the file",
    "open": "Open another file",
    "focus_prompt": "Go to the prompt line",
    "toggle_answer": "Show or hide the answer pane",
    "help": "This help",
    "quit": "Quit (asks first if there are unsaved changes)",
    "cancel": "Cancel the request / dismiss the suggestion",
    "command_palette": "Command palette: every action by name",
}


# the order bindings take in the footer: on a narrow terminal only the first few fit (80 columns end after Quit)
_FOOTER_ORDER = ["complete", *(f"task('{task}')" for task, _, _ in TASKS), "quit", "help", "save", "open",
                 "focus_prompt"]
_CTRL_SPACE = ("ctrl+space", "ctrl+@", "ctrl+at")  # terminals send NUL for ctrl+space


def _ordered_bindings(current: BindingsMap, complete_key: str) -> BindingsMap:
    """The app's bindings with the configured completion key added, in footer order."""
    keys = [key.strip() for key in complete_key.split(",") if key.strip()]
    if any(key in _CTRL_SPACE for key in keys):
        keys += [key for key in _CTRL_SPACE if key not in keys]
    pairs = [(key, binding) for key, bindings in current.key_to_bindings.items()
             for binding in bindings if key not in keys]
    # the aliases have no description: neither the footer nor the help lists them
    pairs += [(key, Binding(key, "complete", "" if index else "Complete", priority=True))
              for index, key in enumerate(keys)]

    def rank(pair: tuple[str, Binding]) -> int:
        action = pair[1].action
        return _FOOTER_ORDER.index(action) if action in _FOOTER_ORDER else len(_FOOTER_ORDER)

    ordered = BindingsMap()
    for key, binding in sorted(pairs, key=rank):
        ordered.key_to_bindings.setdefault(key, []).append(binding)
    return ordered


@cache
def _highlightable() -> frozenset[str]:
    return frozenset(TextArea().available_languages)


def _scope_at(text: str, language: str | None, row: int, column: int) -> Span | None:
    """The function or class around a 0-based editor position (the engine counts from 1); None outside any."""
    if language is None:
        return None
    try:
        return enclosing_scope(text, language, row + 1, column + 1)
    except InputError:  # the empty row after a final newline is no line to the engine
        return None


def _usable_language(language: str | None) -> str | None:
    """The language if TextArea has its tree-sitter grammar installed, else None (plain text)."""
    return language if language in _highlightable() else None


def editor_offset(text: str, location: Location) -> int:
    """The character offset of a (row, column) location in `text`."""
    row, column = location
    offset = 0
    for _ in range(row):
        offset = text.index("\n", offset) + 1
    return offset + column


def _read_file(path: Path) -> files.TextFile | None:
    """The file by the engine's reading rules; None for a new file (it is created on save)."""
    if not path.exists() and not path.is_symlink():
        return None
    return files.read_text(path)


def run_app(settings: QcodeSettings, path: Path | None, text: str | None) -> int:
    """Run the interface until the user quits; returns the exit code."""
    app = QcodeApp(settings, path, text)
    try:
        app.run()
    finally:
        app.shutdown_engine()
    return app.return_code or 0
