"""The code editor: a TextArea with line numbers, highlighting, auto-indent and ghost-text completion.

A suggestion never hides code: its first line is drawn after the cursor (TextArea's `suggestion`), and its later
lines are drawn as rows of their own under the cursor's line, pushing the code below them down, as editors show
multi-line suggestions; the rest of the cursor's line follows the suggestion's last row, where accepting puts it.
A suggestion is capped at a block of lines that fits the editor, so Tab (or Right) inserts exactly what is on the
screen, as one undoable edit; Esc, typing, clicking or moving the cursor dismisses it.
"""

from __future__ import annotations

import time

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip
from textual.widgets import TextArea
from textual.widgets.text_area import Document

Location = tuple[int, int]
MAX_GHOST_LINES = 8  # a suggestion's lines at most: the cursor's line and a block under it
GHOST_GUTTER_MARK = "┆"  # in the line-number column of a suggestion's pushed rows
NEWLINE_MARK = "⏎"  # shows that a suggestion ends with a line break


def cap_lines(text: str, max_lines: int) -> str:
    """`text` cut after its first `max_lines` lines (a line break at the very end is no line of its own)."""
    lines = text.split("\n")
    shown = len(lines) - 1 if text.endswith("\n") else len(lines)
    return text if shown <= max_lines else "\n".join(lines[:max_lines])


def ghost_rows(text: str) -> list[str]:
    """The rows a suggestion draws: its lines, a final line break as a mark at the end of the last one."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
        lines[-1] += NEWLINE_MARK
    return lines


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
    ghost_since = 0.0  # time.perf_counter() when the suggestion shown now first showed (the completion bench reads it)
    _ghost_anchor: Location | None = None
    _accepting = False
    _ghost_below: tuple[str, ...] = ()  # the suggestion's rows drawn under the cursor's line
    _ghost_tail = ""  # the cursor line's text after a suggestion with rows below: drawn after the last of them

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

    @property
    def max_ghost_lines(self) -> int:
        """How many lines a suggestion may have here: at most 8, and at most half the editor's height."""
        return max(2, min(MAX_GHOST_LINES, self.size.height // 2))

    def show_ghost(self, text: str, anchor: Location) -> str | None:
        """Show `text` as a suggestion at `anchor`, cut to max_ghost_lines; returns what is shown.

        None when refused: the cursor has moved away or there is a selection.
        """
        if not text or self.cursor_location != anchor or not self.selection.is_empty:
            return None
        text = cap_lines(text, self.max_ghost_lines)
        if not self.ghost_text:
            self.ghost_since = time.perf_counter()
        self.ghost_text = text
        self._ghost_anchor = anchor
        rows = ghost_rows(text)
        rest = self.document[anchor[0]][anchor[1]:]
        # TextArea draws the line's rest right after the suggestion's first row (soft wrap: left as it does)
        self._ghost_tail = "" if len(rows) == 1 or self.soft_wrap else rest.expandtabs(self.indent_width)
        self.suggestion = rows[0]  # TextArea draws it after the cursor
        self._push_rows(tuple(line.expandtabs(self.indent_width) for line in rows[1:]))
        self.post_message(self.GhostChanged(self, shown=True, accepted=False))
        return text

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
        self._ghost_tail = ""
        self._push_rows(())

    # ---- the suggestion's pushed rows ----------------------------------------------------------
    def _push_rows(self, rows: tuple[str, ...]) -> None:
        if rows == self._ghost_below:
            return
        grew = len(rows) > len(self._ghost_below)
        self._ghost_below = rows
        self._refresh_size()  # the rows count in the scrollable height, so the last line can show them too
        self.refresh()
        if grew:
            self.call_after_refresh(self._reveal_ghost)

    def _refresh_size(self) -> None:
        super()._refresh_size()
        if not self.suggestion and not self._ghost_below:  # a suggestion may start with its line break
            return
        width, height = self.virtual_size
        if not self.soft_wrap:
            # TextArea crops every line to the document's widest: a suggestion on a short file's line was cut off
            row = self.cursor_location[0]
            line = self.document[row].expandtabs(self.indent_width) if row < self.document.line_count else ""
            rows = [*self._ghost_below[:-1], *(r + self._ghost_tail for r in self._ghost_below[-1:])]
            widest = max([cell_len(line) + cell_len(self.suggestion), *(cell_len(r) for r in rows)])
            width = max(width, self.gutter_width + widest + 1)  # + 1: the cursor's cell, as TextArea counts it
        self.virtual_size = Size(width, height + len(self._ghost_below))

    def watch_suggestion(self) -> None:
        self._refresh_size()

    def _cursor_row_on_screen(self) -> int:
        return self.cursor_screen_offset.y - self.region.y

    def _reveal_ghost(self) -> None:
        """Scroll so the cursor's line and every row of the suggestion are in view."""
        if not self._ghost_below:
            return
        below = self._cursor_row_on_screen() + len(self._ghost_below) - (self.scrollable_content_region.height - 1)
        if below > 0:
            self.scroll_to(y=self.scroll_y + below, animate=False, immediate=True)

    def render_line(self, y: int) -> Strip:
        rows = self._ghost_below
        if rows:
            cursor = self._cursor_row_on_screen()
            if y == cursor and self._ghost_tail:
                return self._without_tail(super().render_line(y))
            if cursor < y <= cursor + len(rows):
                last = y == cursor + len(rows)
                return self._ghost_strip(rows[y - cursor - 1], self._ghost_tail if last else "")
            if y > cursor + len(rows):
                return super().render_line(y - len(rows))  # the code below, pushed down
        return super().render_line(y)

    def _base_style(self) -> Style:
        theme = self._theme
        return theme.base_style if theme is not None and theme.base_style is not None else self.rich_style

    def _without_tail(self, strip: Strip) -> Strip:
        """The cursor's line as TextArea draws it, cut after the suggestion's first row (its rest moves down)."""
        row, column = self.cursor_location
        before = self.document[row][:column].expandtabs(self.indent_width)
        cut = self.gutter_width + cell_len(before) + cell_len(self.suggestion) - int(self.scroll_offset.x)
        kept = strip.crop(0, max(cut, self.gutter_width))
        return kept.extend_cell_length(self.size.width, self._base_style())

    def _ghost_strip(self, text: str, tail: str = "") -> Strip:
        """A pushed row: the suggestion's `text`, and after its last row the rest of the cursor's line (`tail`)."""
        base = self._base_style()
        theme = self._theme
        gutter_style = theme.gutter_style if theme is not None and theme.gutter_style is not None else base
        ghost_style = base + self.get_component_rich_style("text-area--suggestion")
        gutter = self.gutter_width
        segments = [Segment(f"{GHOST_GUTTER_MARK:>{max(gutter - 2, 0)}}  "[:gutter], gutter_style)] if gutter else []
        code = Strip([Segment(text, ghost_style), Segment(tail, base)]).crop(int(self.scroll_offset.x), None)
        return Strip([*segments, *code]).extend_cell_length(self.size.width, base).crop(0, self.size.width)

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

    def on_blur(self, _event: events.Blur) -> None:
        self.dismiss_ghost()

    def on_resize(self, _event: events.Resize) -> None:
        # the answer pane or the terminal took rows or columns: keep the cursor's line in view, once the new
        # size is laid out (TextArea's own resize handler rewraps first)
        self.call_after_refresh(self.scroll_cursor_visible)

    async def _on_mouse_down(self, event: events.MouseDown) -> None:
        # a click while rows are pushed down would land on the wrong line: it only dismisses the suggestion
        if self.dismiss_ghost():
            event.stop()
            event.prevent_default()
            return
        await super()._on_mouse_down(event)

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
        if event.key == "enter" and not self.read_only:
            event.stop()
            event.prevent_default()
            start, end = self.selection
            self.replace("\n" + self.new_line_indent(), start, end, maintain_selection_offset=False)
            return
        await super()._on_key(event)

    def new_line_indent(self) -> str:
        """The indentation Enter gives the next line: this line's, one level deeper after a block opener."""
        row, column = min(self.selection)
        before = self.document[row][:column]
        indent = before[: len(before) - len(before.lstrip(" \t"))]
        code = before.rstrip()
        opens = code.endswith(":") if self.language == "python" else code.endswith(("{", "(", "["))
        if opens or (self.language == "python" and code.endswith(("(", "[", "{"))):
            indent += "\t" if self.indent_type == "tabs" else " " * self.indent_width
        return indent

    def action_cursor_right(self, select: bool = False) -> None:
        # TextArea's Right inserts `suggestion` (only our first line); accept the whole thing
        if self.ghost_text and not select:
            self.accept_ghost()
            return
        super().action_cursor_right(select)
