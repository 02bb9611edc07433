"""The footer: Textual's, with the task keys folded into one entry where the terminal is too narrow for them."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

TASK_PREFIX = "task("
WIDE = 120  # columns from which every task key is listed on its own


class QcodeFooter(Footer):
    def __init__(self, fold_from: str = "f2", fold_to: str = "f7") -> None:
        super().__init__(compact=True, show_command_palette=False)
        self._fold = f"{fold_from}…{fold_to}"
        self._narrow: bool | None = None

    def compose(self) -> ComposeResult:
        self._narrow = self.app.size.width < WIDE
        folded = False
        for widget in super().compose():
            if self._narrow and isinstance(widget, FooterKey) and widget.action.startswith(TASK_PREFIX):
                if not folded:
                    folded = True
                    # a click shows the help, which lists every task key
                    yield FooterKey("f1", self._fold, "Tasks", "help").data_bind(compact=Footer.compact)
                continue
            yield widget

    def on_resize(self, event: Resize) -> None:
        if (self.app.size.width < WIDE) != self._narrow:
            self.call_after_refresh(self.recompose)
