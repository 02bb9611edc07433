"""The prompt line: what the next action works on, then one Input for a question or an instruction.

Its text goes with the next action only (Enter asks it, a task key takes it as its instruction) and is then
cleared; ↑ and ↓ bring earlier prompts back.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Input, Label

PLACEHOLDER = "ask about the code (Enter), or an instruction for the next task key"


class PromptInput(Input):
    """An Input with a history of what was sent."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history(-1)", "Earlier", show=False),
        Binding("down", "history(1)", "Later", show=False),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.history: list[str] = []
        self._at = 0  # index into history; len(history) is the line being typed

    def remember(self, text: str) -> None:
        if text and (not self.history or self.history[-1] != text):
            self.history.append(text)
        self._at = len(self.history)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self._at = max(0, min(len(self.history), self._at + step))
        self.value = self.history[self._at] if self._at < len(self.history) else ""
        self.cursor_position = len(self.value)


class PromptLine(Horizontal):
    def compose(self) -> ComposeResult:
        yield Label("", id="prompt-scope", markup=False)
        yield Label("›", id="prompt-mark")
        yield PromptInput(placeholder=PLACEHOLDER, id="prompt-input", compact=True)

    @property
    def input(self) -> PromptInput:
        return self.query_one("#prompt-input", PromptInput)

    @property
    def value(self) -> str:
        return self.input.value.strip()

    def take(self) -> str | None:
        """The prompt's text for the action about to run, which uses it up; None when empty."""
        text = self.value
        self.input.remember(text)
        self.input.value = ""
        return text or None

    def expect(self, task: str | None) -> None:
        """Say in the empty line that Enter runs `task` (None: back to asking)."""
        self.input.placeholder = (
            f"instruction for {task} (Enter runs it, Esc cancels)" if task else PLACEHOLDER
        )

    def set_scope(self, scope: str) -> None:
        self.query_one("#prompt-scope", Label).update(scope)
