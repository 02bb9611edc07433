"""Every command of the interface in one table: its action, keys, footer place, help text and palette entry.

The table is data, so the bindings, the footer's order, the help screen and the command palette cannot disagree,
and the task rows come from the engine's task registry (`commands(tasks)` takes any rows with a name, a key and a
help line). Order matters: the footer shows the commands with `footer` set in table order, and an 80-column terminal
shows only the first few (Help, Save, Open, Prompt, Complete; the task keys collapse to one entry there).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from textual.binding import Binding

from engine.task_registry import REGISTRY

Where = Literal["app", "main"]  # app: on every screen (dialogs too); main: the main screen only


class TaskRow(Protocol):
    """What the table needs of a task (engine.task_registry's rows); those without a key are left out."""

    @property
    def name(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def help(self) -> str: ...


TASK_GROUP = "tasks"  # footer entries of this group collapse to one on narrow terminals


@dataclass(frozen=True)
class Command:
    action: str  # a Textual action, run on the app ("app") or the main screen ("main")
    keys: str  # Textual key names, comma-separated; the first is the one shown
    label: str  # footer and palette name
    help: str  # help screen and palette description
    where: Where = "main"
    footer: bool = True
    palette: bool = True
    key_display: str | None = None
    group: str | None = None

    @property
    def key(self) -> str:
        return self.keys.split(",")[0].strip()


CTRL_SPACE = ("ctrl+space", "ctrl+@", "ctrl+at")  # terminals send NUL for ctrl+space


def completion_keys(setting: str) -> str:
    """The configured completion key(s), with the NUL spellings of ctrl+space added when it is one of them."""
    keys = [key.strip() for key in setting.split(",") if key.strip()]
    if any(key in CTRL_SPACE for key in keys):
        keys += [key for key in CTRL_SPACE if key not in keys]
    return ",".join(keys)


def commands(complete_key: str = "ctrl+space", tasks: Iterable[TaskRow] = REGISTRY) -> tuple[Command, ...]:
    """The table, with the completion key from settings."""
    return (
        Command("help", "f1", "Help", "Keys, and what code each action works on", where="app"),
        Command("save", "ctrl+s", "Save", "Save the file"),
        Command("open", "ctrl+o", "Open", "Open a file (a name that does not exist yet starts a new file)"),
        Command("focus_prompt", "ctrl+l", "Prompt",
                "Go to the prompt line: Enter asks a question; a task key uses the text as its instruction"),
        Command("complete", completion_keys(complete_key), "Complete", "Suggest code at the cursor (ghost text)"),
        *(Command(f"task('{task.name}')", task.key, task.name.capitalize(), task.help, group=TASK_GROUP)
          for task in tasks if task.key),
        Command("quit", "ctrl+q", "Quit", "Quit (asks first if there are unsaved changes)", where="app"),
        Command("focus_answer", "ctrl+t", "Answer",
                "Go to the answer pane to scroll it (again: back to the editor, hiding the pane)"),
        Command("toggle_scope", "f8", "Scope",
                "Switch what actions work on: the code around the cursor, or the whole file"),
        Command("cancel", "escape", "Cancel",
                "Cancel the request; dismiss the suggestion; leave the prompt or answer pane", footer=False),
        Command("interrupt", "ctrl+c", "Cancel request",
                "Cancel the running request (with none running: copy the selection)", footer=False),
        Command("command_palette", "ctrl+p", "Palette", "Command palette: every action by name",
                where="app", footer=False, palette=False),
    )


def bindings(table: Sequence[Command], where: Where) -> list[Binding]:
    """Bindings for one level. Priority: F6/F7 are TextArea's own keys, and tasks must work from the prompt too."""
    return [
        Binding(command.keys, command.action, command.label, show=command.footer, priority=True,
                key_display=command.key_display)
        for command in table if command.where == where
    ]


def main_screen_bindings(table: Sequence[Command]) -> list[Binding]:
    """The main screen's bindings: its own, and the app's shown ones again, so the footer keeps table order
    (Textual lists a focused screen's bindings before the app's)."""
    return [
        Binding(command.keys, command.action if command.where == "main" else f"app.{command.action}",
                command.label, show=command.footer, priority=True, key_display=command.key_display)
        for command in table if command.where == "main" or command.footer
    ]


# keys that are not commands but belong in the help
EXTRA_HELP: tuple[tuple[str, str], ...] = (
    ("tab / →", "Accept the suggestion (exactly what is shown)"),
    ("enter", "In the editor: a new line, indented; in the prompt line: ask the question"),
    ("↑ / ↓", "In the prompt line: earlier prompts"),
    ("?", "In the answer pane: this help (in the editor ? is just text)"),
    ("^z / ^y", "Undo / redo (a rewrite or a suggestion is one step)"),
)


def help_rows(table: Sequence[Command], key_display: dict[str, str]) -> list[tuple[str, str]]:
    """(keys, description) rows for the help screen, in table order."""
    rows = [(key_display.get(command.key, command.key), command.help) for command in table]
    return [*rows, *EXTRA_HELP]
