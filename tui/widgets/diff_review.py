"""The diff review screen: a proposed rewrite as a unified diff, accepted or rejected as a whole.

The diff scrolls in its own region (↑ ↓ PgUp PgDn Home End) between a title and a button bar that are always on
screen, however long the diff. A warning says when the rewrite changes more than its task allows
(engine.change_kind); then Reject has the focus. Accept is Ctrl+Y, not a letter: the review opens when a request
ends, maybe while the user is typing, and a typed letter must not apply a rewrite.
"""

from __future__ import annotations

from typing import ClassVar

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Static


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
        Binding("ctrl+y", "accept", "Accept", priority=True),
        Binding("escape", "reject", "Reject"),
        Binding("left", "app.focus_previous", "Previous", show=False),
        Binding("right", "app.focus_next", "Next", show=False),
    ]

    def __init__(self, title: str, diff: str, warning: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.diff = diff
        self.warning = warning

    def compose(self) -> ComposeResult:
        added, removed = count_changes(self.diff)
        with Vertical(id="diff-dialog"):
            yield Label(f"{self.title_text}  [+{added} -{removed}]", id="diff-title", markup=False)
            if self.warning:
                yield Label(f"⚠ {self.warning}", id="diff-warning", markup=False)
            with VerticalScroll(id="diff-body"):
                yield Static(Syntax(self.diff, "diff", theme="monokai", word_wrap=False), id="diff-text")
            with Horizontal(id="diff-buttons"):
                yield Button("Accept ^y", variant="success", id="diff-accept", compact=True)
                yield Button("Reject esc", variant="error", id="diff-reject", compact=True)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        # flagged: the safe button; otherwise the diff, so the arrows and PgDn scroll it at once
        self.query_one("#diff-reject" if self.warning else "#diff-body").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "diff-accept")

    def action_accept(self) -> None:
        self.dismiss(True)

    def action_reject(self) -> None:
        self.dismiss(False)
