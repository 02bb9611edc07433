"""The answer pane: streams Markdown through textual's MarkdownStream.

MarkdownStream appends to the document and re-parses only from the last block onwards, merging
fragments that arrive faster than it can draw, so a long answer costs about its length rather
than its length squared.
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Label, Markdown
from textual.widgets.markdown import MarkdownStream


class AnswerPane(VerticalScroll):
    """A title line over a Markdown document that one request at a time streams into.

    It takes the focus (Ctrl+T) to scroll with the arrows, PgUp/PgDn, Home/End; code blocks wrap (app.tcss).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help", show=False),  # nothing to type into here
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._stream: MarkdownStream | None = None
        self._follows = False  # an answer follows its end once it overflows; help text and errors stay at the top
        self.text = ""

    def compose(self) -> ComposeResult:
        yield Label("", id="answer-title")
        yield Markdown("", id="answer-body")

    @property
    def markdown(self) -> Markdown:
        return self.query_one("#answer-body", Markdown)

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    async def begin(self, title: str) -> None:
        """Clear the pane for a new answer and start a stream into it."""
        await self.finish()
        self.text = ""
        self.query_one("#answer-title", Label).update(title)
        self.anchor(False)
        await self.markdown.update("")
        self.scroll_home(animate=False)
        self._follows = True
        self._stream = Markdown.get_stream(self.markdown)

    def _follow(self) -> None:
        # anchor (follow the end until the user scrolls up) once the answer overflows the pane:
        # anchoring a shorter answer would bottom-align it, leaving a gap above
        if self._follows and not self.is_anchored and self.max_scroll_y > 0:
            self.anchor()

    def watch_virtual_size(self) -> None:
        # Markdown lays its blocks out a frame or more after they are written (and no Resize event tells of a
        # grown content): the overflow shows here, whenever it comes
        self._follow()

    def on_resize(self, _event: events.Resize) -> None:
        self._follow()  # a smaller pane may be overflowed by the same answer

    async def write(self, fragment: str) -> None:
        if self._stream is None:
            return
        self.text += fragment
        await self._stream.write(fragment)
        self._follow()

    async def finish(self, footnote: str = "") -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.stop()
        if footnote:
            self.text += footnote
            await self.markdown.append(footnote)
        self.call_after_refresh(self._follow)

    async def clear(self) -> None:
        """Drop the answer (another file was opened: it was about the old one)."""
        await self.finish()
        self._follows = False
        self.text = ""
        self.query_one("#answer-title", Label).update("")
        await self.markdown.update("")

    async def show(self, title: str, markdown: str) -> None:
        """Replace the pane with a finished document (help text, errors)."""
        await self.finish()
        self._follows = False
        self.anchor(False)
        self.text = markdown
        self.query_one("#answer-title", Label).update(title)
        await self.markdown.update(markdown)
        self.scroll_home(animate=False)
