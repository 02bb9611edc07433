"""The diff review screen: a proposed rewrite as a unified diff, accepted or rejected as a whole."""

from __future__ import annotations

from typing import ClassVar

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


def count_changes(diff: str) -> tuple[int, int]:
    """(added, removed) lines of a unified diff, headers excluded."""
    added = removed = 0
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


class DiffReviewScreen(ModalScreen[bool]):
    """Dismisses with True to apply the rewrite, False to discard it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a,y", "accept", "Accept"),
        Binding("r,n,escape", "reject", "Reject"),
    ]

    def __init__(self, title: str, diff: str) -> None:
        super().__init__()
        self.title_text = title
        self.diff = diff

    def compose(self) -> ComposeResult:
        added, removed = count_changes(self.diff)
        with Vertical(id="diff-dialog"):
            yield Label(f"{self.title_text}  [+{added} -{removed}]", id="diff-title", markup=False)
            with VerticalScroll(id="diff-body"):
                yield Static(
                    Syntax(self.diff, "diff", theme="monokai", word_wrap=False),
                    id="diff-text",
                )
            with Horizontal(id="diff-buttons"):
                yield Button("Accept (a)", variant="success", id="diff-accept",
                             compact=True)
                yield Button("Reject (r)", variant="error", id="diff-reject",
                             compact=True)

    def on_mount(self) -> None:
        self.query_one("#diff-body").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "diff-accept")

    def action_accept(self) -> None:
        self.dismiss(True)

    def action_reject(self) -> None:
        self.dismiss(False)
