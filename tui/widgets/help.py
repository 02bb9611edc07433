"""The help screen: every command and its keys (from tui.actions), then how actions pick their code."""

from __future__ import annotations

from typing import ClassVar

from rich import box
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Markdown, Static

NOTES = """\
**What an action works on** is shown left of the prompt line: the lines of the **selection**, else
the function or class around the cursor, else the whole file. **F8** switches to the whole file (and
back). Text in the prompt line goes with the **next** action only: Enter asks it as a question, a
task key (F3 refactor needs one) takes it as its instruction; then the line is cleared (↑ brings it back).

**Rewrites** (refactor, fix, doc) open a diff: **Ctrl+Y** accepts, **Esc** rejects. A rewrite that
changes more than its task allows (a doc task that changes code, a rename that changes logic) is
flagged there. Accepting is one edit that Ctrl+Z takes back.

**Completion** (Ctrl+Space): the first line shows after the cursor, further lines under the editor;
**Tab** or **→** inserts exactly what is shown; Esc or typing dismisses it.

**While a request runs** the status line shows the prompt read so far, then the answer's speed;
**Esc** or **Ctrl+C** cancels it (with no request running, Ctrl+C copies the selection). An answer cut
off at the token limit, or stopped because it kept repeating itself, is labelled so.
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
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#help-dialog").focus()  # the arrows and PgDn scroll it

    def action_close(self) -> None:
        self.dismiss(None)
