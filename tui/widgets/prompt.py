"""The prompt line: one Input for an instruction (refactor) or a question (Enter asks)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label


class PromptLine(Horizontal):
    def compose(self) -> ComposeResult:
        yield Label("›", id="prompt-mark")
        yield Input(
            placeholder="ask about the code, or an instruction for refactor (F3)",
            id="prompt-input",
            compact=True,
        )

    @property
    def input(self) -> Input:
        return self.query_one("#prompt-input", Input)

    @property
    def value(self) -> str:
        return self.input.value.strip()
