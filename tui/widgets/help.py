"""The help screen: every key binding, then how the actions pick the code they work on."""

from __future__ import annotations

from typing import ClassVar

from rich import box
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Markdown, Static

NOTES = """\
Actions work on the lines of the **selection**, else on the function or class around the
cursor, else on the whole file. Rewrites (refactor, fix, doc) open a diff to accept or
reject; accepting is one edit that undo (ctrl+z) takes back. The prompt line gives refactor
its instruction; Enter there asks a question about the same code.

A completion shows as dim ghost text: **Tab** or **→** accepts it, **Esc** or typing
dismisses it. **Esc** also cancels a running request. Every action is in the command
palette (ctrl+p).
"""


def keys_table(rows: list[tuple[str, str]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, show_edge=False, pad_edge=False)
    table.add_column("Key", style="bold", no_wrap=True)
    table.add_column("Action", ratio=1)
    for key, description in rows:
        table.add_row(key, description)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,q,question_mark", "close", "Close"),
    ]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog"):
            yield Label("qcode keys  (Esc closes)", id="help-title")
            yield Static(keys_table(self.rows), id="help-keys")
            yield Markdown(NOTES, id="help-notes")

    def action_close(self) -> None:
        self.dismiss(None)
