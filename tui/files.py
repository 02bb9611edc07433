"""Files for the editor: open (a new name is a new file, an empty file is fine) and save, by the engine's rules
(engine.files: UTF-8, a BOM kept, atomic writes, a lock, no write over a change made on disk since), and the main
screen's Ctrl+S / Ctrl+O with their dialogs (FileActions).

Every failure is a QcodeError with a one-line reason, for the CLI's error line and the app's notifications.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine import files as disk
from engine.errors import InputError, QcodeError

from .typed_keys import after_typed_keys
from .widgets import ConfirmScreen, PathScreen

if TYPE_CHECKING:
    from textual.app import App
    from textual.notifications import SeverityLevel

    from .widgets import CodeEditor


@dataclass(frozen=True)
class OpenedFile:
    path: Path
    text: str
    new: bool  # not on disk yet: saving creates it
    snapshot: disk.Snapshot | None = None  # what the file held when read (None: a new file)
    bom: bool = False


def open_for_editor(path: Path) -> OpenedFile:
    """The text to edit at `path`; a path that does not exist yet is a new file (saving creates it, and its
    directory)."""
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a file")
    if not path.exists() and not path.is_symlink():
        return OpenedFile(path, "", new=True)
    read = disk.read_text(path)
    return OpenedFile(path, read.text, new=False, snapshot=read.snapshot, bom=read.bom)


def save(path: Path, text: str, *, expect: disk.Snapshot | None = None, bom: bool = False) -> disk.Snapshot:
    """Write `text` to `path` (a new file is created) and return what the file holds now.

    disk.FileChanged when the file no longer holds `expect` (a change made on disk since it was read).
    """
    with disk.locked(path):
        if path.exists() or path.is_symlink():
            return disk.write_text(path, text, expect=expect, bom=bom, backup=False).snapshot
        disk.new_file(path, text, bom=bom)
        return disk.Snapshot.of(disk.encode(text, bom))


class FileActions:
    """Save and Open for the main screen, which provides the editor, the path and what is on disk, and takes
    a file that was opened (load_file) or saved (file_saved)."""

    path: Path | None
    _saved_text: str | None  # None: never saved (piped text)
    _disk: disk.Snapshot | None  # the file as read or last saved: a save over a change made since asks first
    _bom: bool

    if TYPE_CHECKING:  # provided by the screen
        app: App[int]

        @property
        def editor(self) -> CodeEditor: ...
        def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
                   timeout: float | None = None, markup: bool = True) -> None: ...
        async def load_file(self, opened: OpenedFile) -> None: ...
        def file_saved(self, path: Path, text: str, snapshot: disk.Snapshot) -> None: ...

    @property
    def dirty(self) -> bool:
        return self.editor.text != self._saved_text

    @property
    def _file_name(self) -> str:
        return self.path.name if self.path is not None else "untitled"

    @after_typed_keys
    def action_save(self) -> None:
        if self.path is None:
            self.app.push_screen(PathScreen("", title="Save as (Enter saves, Esc cancels)"), self._save_as)
        else:
            self._save_to(self.path)

    def _save_as(self, path: Path | None) -> None:
        if path is not None and path.exists():
            self.app.push_screen(ConfirmScreen(f"{path} exists. Overwrite it?", "Overwrite", "Cancel"),
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
            snapshot = save(path, text, expect=expect, bom=self._bom)
        except disk.FileChanged:
            question = f"{path.name} changed on disk since it was opened. Overwrite it?"
            self.app.push_screen(ConfirmScreen(question, "Overwrite", "Cancel"),
                                 lambda yes: self._save_to(path, overwrite=True) if yes else None)
            return
        except QcodeError as exc:
            self.notify(str(exc), title="Not saved", severity="error")
            return
        self.file_saved(path, text, snapshot)

    @after_typed_keys
    def action_open(self) -> None:
        if self.dirty:
            question = f"Discard unsaved changes to {self._file_name}?"
            self.app.push_screen(ConfirmScreen(question, "Discard", "Keep"),
                                 lambda discard: self._ask_path() if discard else None)
        else:
            self._ask_path()

    def _ask_path(self) -> None:
        start = str(self.path.parent) + "/" if self.path is not None else ""
        self.app.push_screen(PathScreen(start), self._open_path)

    async def _open_path(self, path: Path | None) -> None:
        if path is None:
            return
        try:
            opened = open_for_editor(path)
        except QcodeError as exc:
            self.notify(str(exc), severity="error")
            return
        await self.load_file(opened)
