"""Turn token bytes into text that is safe to show: whole UTF-8 characters, stop strings never shown."""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class TextStream:
    def __init__(self, stops: Sequence[str] = ()) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = [s for s in stops if s]
        self._longest = max((len(s) for s in self._stops), default=0)
        self.text = ""  # everything decoded so far (a stop string, once found, is cut off)
        self._shown = 0  # text[:_shown] has been handed out
        self.stopped = False

    def add(self, data: bytes) -> str:
        """Feed a token's bytes; return the text that can be shown now."""
        if self.stopped:
            return ""
        self.text += self._decoder.decode(data)
        if not self._stops:
            return self._take(len(self.text))
        search_from = max(0, self._shown - self._longest)
        hits = [i for i in (self.text.find(s, search_from) for s in self._stops) if i >= 0]
        if hits:
            self.text = self.text[: min(hits)]
            self.stopped = True
            return self._take(len(self.text))
        return self._take(len(self.text) - self._held_back())

    def finish(self) -> str:
        """The rest of the text at the end of generation (a partial stop string is just text)."""
        if not self.stopped:
            self.text += self._decoder.decode(b"", final=True)
        return self._take(len(self.text))

    def _held_back(self) -> int:
        # the longest tail of the text that could still grow into a stop string
        tail = self.text[-self._longest :]
        for size in range(min(len(tail), self._longest), 0, -1):
            piece = tail[-size:]
            if any(s.startswith(piece) for s in self._stops):
                return size
        return 0

    def _take(self, end: int) -> str:
        if end <= self._shown:
            return ""
        piece = self.text[self._shown : end]
        self._shown = end
        return piece
