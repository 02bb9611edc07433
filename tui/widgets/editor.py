"""The code editor: a TextArea with line numbers, highlighting and ghost-text completion.

TextArea's own `suggestion` draws text after the cursor on the cursor's line only, so a
multi-line completion shows its first line there and the rest in a GhostLines overlay just
below. Tab (or Right) accepts the whole completion as one undoable edit; Esc, typing, or moving
the cursor dismisses it.
"""

from __future__ import annotations

from textual import events
from textual.geometry import Offset
from textual.message import Message
from textual.widgets import Static, TextArea
from textual.widgets.text_area import Document

Location = tuple[int, int]


class GhostLines(Static):
    """The second and later lines of a completion, drawn over the code below the cursor."""

    def show_lines(self, lines: list[str], at: Offset, width: int, max_height: int) -> None:
        if not lines or max_height <= 0 or width <= 0:
            self.display = False
            return
        shown = lines[:max_height]
        self.update("\n".join(line[:width] for line in shown))
        self.styles.offset = (at.x, at.y)
        self.styles.width = width
        self.styles.height = len(shown)
        self.display = True

    def hide(self) -> None:
        self.display = False


class CodeEditor(TextArea):
    """The buffer. `version` counts edits so late answers about old text can be recognised."""

    class GhostChanged(Message):
        """Posted when a completion is shown, accepted or dismissed."""

        def __init__(self, editor: CodeEditor, shown: bool, accepted: bool) -> None:
            super().__init__()
            self.editor = editor
            self.shown = shown
            self.accepted = accepted

    # class defaults: TextArea's watchers may run during __init__, before ours would set these
    version = 0
    ghost_text = ""
    _ghost_anchor: Location | None = None
    _accepting = False
    ghost_lines: GhostLines | None = None

    def __init__(self, text: str = "", language: str | None = None, **kwargs: object) -> None:
        super().__init__(
            text,
            language=language,
            theme="monokai",
            soft_wrap=False,
            tab_behavior="indent",
            show_line_numbers=True,
            **kwargs,  # type: ignore[arg-type]
        )
        # F6/F7 (select line / select all in TextArea) are the app's doc and test actions
        for key in ("f6", "f7"):
            self._bindings.key_to_bindings.pop(key, None)

    # ---- offsets -------------------------------------------------------------------------
    @property
    def _text_document(self) -> Document:
        document = self.document
        assert isinstance(document, Document)  # TextArea's documents (syntax-aware too) are
        return document

    def offset_of(self, location: Location) -> int:
        return self._text_document.get_index_from_location(location)

    def location_of(self, offset: int) -> Location:
        return self._text_document.get_location_from_index(offset)

    # ---- ghost text ----------------------------------------------------------------------
    @property
    def has_ghost(self) -> bool:
        return bool(self.ghost_text)

    def show_ghost(self, text: str, anchor: Location) -> bool:
        """Show `text` as a suggestion at `anchor`; refused if the cursor has moved away."""
        if not text or self.cursor_location != anchor or not self.selection.is_empty:
            return False
        self.ghost_text = text
        self._ghost_anchor = anchor
        first, _, _rest = text.partition("\n")
        # TextArea draws `suggestion` inline; an empty first line still needs a visible mark
        self.suggestion = first if first else "⏎"
        self._place_ghost_lines()
        self.post_message(self.GhostChanged(self, shown=True, accepted=False))
        return True

    def dismiss_ghost(self) -> bool:
        if not self.ghost_text:
            return False
        self._clear_ghost()
        self.post_message(self.GhostChanged(self, shown=False, accepted=False))
        return True

    def accept_ghost(self) -> bool:
        """Insert the whole suggestion at the cursor as one undo step."""
        if not self.ghost_text or self.cursor_location != self._ghost_anchor:
            return False
        text = self.ghost_text
        self._clear_ghost()
        self.history.checkpoint()
        self._accepting = True
        try:
            self.insert(text)
        finally:
            self._accepting = False
        self.history.checkpoint()
        self.post_message(self.GhostChanged(self, shown=False, accepted=True))
        return True

    def _clear_ghost(self) -> None:
        self.ghost_text = ""
        self._ghost_anchor = None
        self.suggestion = ""
        if self.ghost_lines is not None:
            self.ghost_lines.hide()

    def _place_ghost_lines(self) -> None:
        if self.ghost_lines is None:
            return
        rest = self.ghost_text.split("\n")[1:]
        region = self.content_region
        top = self.cursor_screen_offset.y + 1
        # cover the gutter too: the ghost lines are not the numbered lines they sit on
        gutter = " " * self.gutter_width
        scroll_x = self.scroll_offset.x
        self.ghost_lines.show_lines(
            [gutter + line.expandtabs(self.indent_width)[scroll_x:] for line in rest],
            Offset(region.x, top),
            width=region.width,
            max_height=region.bottom - top,
        )

    # ---- editing hooks -------------------------------------------------------------------
    def edit(self, edit):  # type: ignore[no-untyped-def]
        # any edit but accepting the suggestion itself makes the suggestion stale
        if self.ghost_text and not self._accepting:
            self.dismiss_ghost()
        result = super().edit(edit)
        self.version += 1
        return result

    def _undo_batch(self, edits):  # type: ignore[no-untyped-def]
        self.dismiss_ghost()
        super()._undo_batch(edits)
        self.version += 1

    def _redo_batch(self, edits):  # type: ignore[no-untyped-def]
        self.dismiss_ghost()
        super()._redo_batch(edits)
        self.version += 1

    def load_text(self, text: str) -> None:
        self.dismiss_ghost()
        super().load_text(text)
        self.version += 1

    def _watch_selection(self, previous_selection, selection) -> None:  # type: ignore[no-untyped-def]
        super()._watch_selection(previous_selection, selection)
        if self.ghost_text and (
            not selection.is_empty or selection.end != self._ghost_anchor
        ):
            self.dismiss_ghost()

    def _watch_scroll_y(self) -> None:
        super()._watch_scroll_y()
        if self.ghost_text:
            self._place_ghost_lines()

    def _watch_scroll_x(self) -> None:
        super()._watch_scroll_x()
        if self.ghost_text:
            self._place_ghost_lines()

    def on_resize(self, _event: events.Resize) -> None:
        if self.ghost_text:
            self._place_ghost_lines()

    def on_blur(self, _event: events.Blur) -> None:
        self.dismiss_ghost()

    async def _on_key(self, event: events.Key) -> None:
        if self.ghost_text and event.key in ("tab", "right"):
            event.stop()
            event.prevent_default()
            self.accept_ghost()
            return
        if self.ghost_text and event.key == "escape":
            event.stop()
            event.prevent_default()
            self.dismiss_ghost()
            return
        await super()._on_key(event)

    def action_cursor_right(self, select: bool = False) -> None:
        # TextArea's Right inserts `suggestion` (only our first line); accept the whole thing
        if self.ghost_text and not select:
            self.accept_ghost()
            return
        super().action_cursor_right(select)
