"""The footer: Textual's, with the task keys folded into one entry where the terminal is too narrow for them all."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

TASK_PREFIX = "task("


def _width(keys: list[FooterKey]) -> int:
    """Columns the keys take in the compact footer: "key description", one space apart."""
    return sum(len(key.key_display) + (1 + len(key.description) if key.description else 0) + 1 for key in keys) - 1


class QcodeFooter(Footer):
    def __init__(self, fold_from: str = "f2", fold_to: str = "f7") -> None:
        super().__init__(compact=True, show_command_palette=False)
        self._fold = f"{fold_from}…{fold_to}"
        self._narrow: bool | None = None
        self._wide = 0  # the columns every key needs unfolded

    def compose(self) -> ComposeResult:
        widgets = list(super().compose())
        self._wide = _width([widget for widget in widgets if isinstance(widget, FooterKey)])
        self._narrow = self.app.size.width < self._wide
        folded = False
        for widget in widgets:
            if self._narrow and isinstance(widget, FooterKey) and widget.action.startswith(TASK_PREFIX):
                if not folded:
                    folded = True
                    # a click shows the help, which lists every task key
                    yield FooterKey("f1", self._fold, "Tasks", "help").data_bind(compact=Footer.compact)
                continue
            yield widget

    def on_resize(self, event: Resize) -> None:
        if (self.app.size.width < self._wide) != self._narrow:
            self.call_after_refresh(self.recompose)
