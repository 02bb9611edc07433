"""The help screen: every key binding and what the actions work on."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

INTRO = """\
# qcode

Actions work on the **selection**, or else on the function or class around the cursor,
or else on the whole file. Rewrites (refactor, fix, doc) open a diff to accept or reject;
accepting is one edit that undo (ctrl+z) takes back. The prompt line gives refactor its
instruction; Enter there asks a question about the same code.

A completion shows as dim ghost text: **Tab** or **→** accepts it, **Esc** or typing dismisses it.
**Esc** also cancels a running request. Every action is in the command palette (ctrl+p).
"""


def help_markdown(rows: list[tuple[str, str]]) -> str:
    table = ["| Key | Action |", "| --- | --- |"]
    table += [f"| `{key}` | {description} |" for key, description in rows]
    return INTRO + "\n## Keys\n\n" + "\n".join(table) + "\n"


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q,question_mark", "close", "Close")]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog"):
            yield Markdown(help_markdown(self.rows), id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
