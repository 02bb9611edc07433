"""A rewrite's answer to the change it offers: checked, reviewed as a diff, applied as one undo step, and (with a
test command) saved and tested, or undone when the tests fail. A mixin for the main screen.

The region the rewrite replaces comes from the engine (edit.region_replacement); the checks before review are the
CLI's (Rewrite.refusal), but for a change of another kind than the task allows, which the review shows as a warning
(Rewrite.warning) for the reader to judge.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from engine import files as disk
from engine.edit import region_replacement, unified_diff
from engine.errors import QcodeError
from engine.gate import GatedWrite, write_tested

from .jobs import Job, Location
from .widgets import DiffReviewScreen

if TYPE_CHECKING:
    from textual.app import App
    from textual.notifications import SeverityLevel

    from .host import Host
    from .widgets import CodeEditor


class RewriteActions:
    path: Path | None
    language: str | None
    _saved_text: str | None
    _disk: disk.Snapshot | None
    _bom: bool

    if TYPE_CHECKING:  # provided by the screen
        app: App[int]

        @property
        def qapp(self) -> Host: ...
        @property
        def editor(self) -> CodeEditor: ...
        @property
        def _file_name(self) -> str: ...
        def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
                   timeout: float | None = None, markup: bool = True) -> None: ...
        def _set_state(self, text: str, busy: bool = False, error: bool = False) -> None: ...
        def call_after_refresh(self, callback: object) -> bool: ...

    def _review_rewrite(self, job: Job, answer: str) -> None:
        editor, backend = self.editor, self.qapp.backend
        if backend is None:
            return
        try:
            result = backend.rewritten(
                job.task, job.buffer, answer, path=self.path, language=self.language,
                instruction=job.instruction, lines=job.lines,
            )
            if result.text is None or not result.text.strip():
                self._set_state(f"{job.task}: no code in the answer", error=True)
                self.notify("The answer holds no code to apply.", severity="warning")
                return
            problem = result.refusal(reviewed=True)
            if problem is not None:  # the same checks as the CLI's --apply; the kind of change is a warning
                self._set_state(f"{job.task}: not offered", error=True)
                self.notify(f"Not offered for review: {problem.reason}.", severity="error", timeout=10)
                return
            start, end = (offset_in(job.buffer, location) for location in (job.start, job.end))
            proposed = region_replacement(job.buffer, start, end, result.text)
        except QcodeError as exc:
            self._set_state(f"{job.task} not applied", error=True)
            self.notify(str(exc), title=f"{job.task.capitalize()} failed", severity="error")
            return
        if proposed == job.original:
            self._set_state(f"{job.task}: no changes")
            self.notify("The rewrite changes nothing.")
            return
        if editor.get_text_range(job.start, job.end) != job.original:
            self._code_changed(job)
            return
        warning = result.warning
        # diff against the buffer as it is now: edits made elsewhere meanwhile are not undone
        now = editor.text
        start, end = editor.offset_of(job.start), editor.offset_of(job.end)
        diff = unified_diff(now, now[:start] + proposed + now[end:], str(self.path or "buffer"))
        self._set_state(f"{job.task}: review the diff" + (" (flagged)" if warning else ""))
        self.app.push_screen(
            DiffReviewScreen(f"{job.task.capitalize()} {job.target}", diff, warning),
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
        if self.qapp.settings.test_cmd.strip() and self.path is not None:
            self._test_accepted(job, self.path)

    def _test_accepted(self, job: Job, path: Path) -> None:
        """With a test command, an accepted rewrite is saved and tested; failing tests put the file
        back as it was and undo the rewrite (as the CLI's --apply --test-cmd does)."""
        settings = self.qapp.settings
        text, command = self.editor.text, settings.test_cmd
        self._set_state(f"{job.task}: testing ({command})", busy=True)

        def gate() -> None:
            try:
                with disk.locked(path):
                    gated = write_tested(path, text, expect=self._disk, bom=self._bom,
                                         test_cmd=command, timeout=settings.test_timeout)
            except QcodeError as exc:
                self.app.call_from_thread(self._tested, job, text, None, str(exc))
            else:
                self.app.call_from_thread(self._tested, job, text, gated, None)

        self.app.run_worker(gate, thread=True, group="tests", exit_on_error=False)

    def _tested(self, job: Job, text: str, gated: GatedWrite | None, error: str | None) -> None:
        if gated is None:
            self._set_state(f"{job.task} applied, not tested", error=True)
            self.notify(f"Not saved or tested: {error}", severity="error", timeout=10)
            return
        run = gated.tests
        if not gated.restored:
            self._disk, self._saved_text = gated.written.snapshot, text
            self._set_state(f"{job.task} saved, tests {run.outcome() if run else 'not run'}")
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
        self.notify("The code changed since the request; the rewrite was not applied.", severity="error")


def offset_in(text: str, location: Location) -> int:
    """The character offset of a (row, column) location in `text`."""
    row, column = location
    offset = 0
    for _ in range(row):
        offset = text.index("\n", offset) + 1
    return offset + column
