"""Prompt lookup: when the last n tokens occurred before, propose what followed them then.

Edits copy most of their input, so the answer's next tokens are very often a run of the prompt. The text being
edited (the reference) is searched first, from where the last copy left off, so repeated lines such as
`return None` continue at the right place; then the answer's own past.

Where the answer replaces the same tokens the same way again and again (a rename), the reference is searched as
the answer has edited it (engine/draft/edits.py), so a copy runs on through the next occurrence.

Each proposal also says how long the copy it continues already is (`streak`): the answer's last tokens that agree
with the text right before where the proposal was taken. A copy that has run for 40 tokens usually runs on to the
next edit; one that just matched 2 tokens is as often a coincidence. The controller prices drafts by it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from .base import Drafter
from .edits import EditedReference

# A streak longer than this counts as this long (the controller's longest run bucket is shorter).
STREAK_CAP = 256


def agreement(history: Sequence[int], source: Sequence[int], end: int, cap: int = STREAK_CAP) -> int:
    """How many of the last tokens of `history` equal the tokens of `source` just before index `end`."""
    limit = min(cap, end, len(history))
    n = 0
    while n < limit and history[-1 - n] == source[end - 1 - n]:
        n += 1
    return n


class NgramDrafter(Drafter):
    name = "ngram"

    def __init__(self, n_min: int = 2, n_max: int = 5, learn_edits: bool = True) -> None:
        self.n_min, self.n_max = n_min, n_max
        self.learn_edits = learn_edits  # False: copy the reference as given (as recorded GPU runs drafted)
        self._index: dict[tuple[int, ...], int] = {}  # n-gram -> index after its latest occurrence
        self._indexed_to = 0  # n-grams ending before this history index are in _index
        self._edited = EditedReference(())
        self._reference: list[int] = []  # the reference as the answer has edited it (self._edited.tokens)
        self._anchor: tuple[int, int] | None = None  # (history length, reference index) last seen aligned
        self._ref_positions: dict[tuple[int, ...], list[int]] = {}  # n-gram -> ends, ascending
        self._ref_cursor = 0  # where the last reference copy ended
        self._ref_used: int | None = None  # reference index the pending proposal starts at
        self.last_match = 0  # the n of the last proposal's match (0: none)
        self.streak = 0  # tokens before the last proposal that agree with where it was taken from

    def begin(self, prompt: Sequence[int], reference: Sequence[int]) -> None:
        self._index.clear()
        self._indexed_to = 0
        self._edited = EditedReference(reference)
        self._ref_cursor = 0
        self._anchor = None
        self._index_reference()

    def _index_reference(self) -> None:
        ref = self._reference = self._edited.tokens
        self._ref_positions = {}
        for end in range(1, len(ref) + 1):
            for n in range(self.n_min, min(self.n_max, end) + 1):
                self._ref_positions.setdefault(tuple(ref[end - n : end]), []).append(end)

    def _reference_changed(self, origins_before: list[int]) -> None:
        """The edited reference was rebuilt: its index, and the places kept in it, follow."""
        self._index_reference()
        self._ref_cursor = self._edited.moved(self._ref_cursor, origins_before)
        if self._anchor is not None:
            self._anchor = (self._anchor[0], self._edited.moved(self._anchor[1], origins_before))

    def _learn(self, history: Sequence[int], end: int, streak: int) -> bool:
        """A copy resumed at reference index `end` after `streak` agreeing tokens: what the answer wrote since the
        last aligned place, in place of what the reference has there, is a replacement (engine/draft/edits.py).
        True when the reference changed."""
        if self._anchor is None or not self.learn_edits:
            return False
        h0, r0 = self._anchor
        h1, r1 = len(history) - streak, end - streak
        if h1 < h0 or r1 < r0:
            return False
        same = 0  # the copy ran on for a while past the anchor before it parted
        while h0 + same < h1 and r0 + same < r1 and history[h0 + same] == self._reference[r0 + same]:
            same += 1
        before = self._edited.origins  # a rebuild makes new lists: this one stays as it was
        if not self._edited.learn(self._reference[r0 + same : r1], history[h0 + same : h1]):
            return False
        self._reference_changed(before)
        return True

    def _index_history(self, history: Sequence[int]) -> None:
        # only n-grams ending before the last token: the current suffix must not match itself
        stop = len(history) - 1
        for end in range(max(self._indexed_to, 1), stop + 1):
            for n in range(self.n_min, min(self.n_max, end) + 1):
                self._index[tuple(history[end - n : end])] = end
        self._indexed_to = max(self._indexed_to, stop + 1)

    def _from_reference(self, key: tuple[int, ...], limit: int) -> list[int]:
        ends = self._ref_positions.get(key)
        if not ends:
            return []
        at = bisect.bisect_left(ends, self._ref_cursor)
        end = ends[at] if at < len(ends) else ends[0]
        self._ref_used = end
        return self._reference[end : end + limit]

    def _copy_reference(self, history: Sequence[int], key: tuple[int, ...], limit: int) -> list[int]:
        """What follows `key` in the reference (`streak` set), where a copy resuming there taught no replacement;
        one learned changes the reference, so it is searched again (a few times at most)."""
        for _ in range(4):
            draft = self._from_reference(key, limit)
            if not draft:
                return []
            assert self._ref_used is not None
            self.streak = agreement(history, self._reference, self._ref_used)
            if not self._learn(history, self._ref_used, self.streak):
                self._anchor = (len(history), self._ref_used)
                return draft
        self._ref_used = None
        return []

    def propose(self, history: Sequence[int], limit: int) -> list[int]:
        self.last_match = self.streak = 0
        self._ref_used = None
        if limit <= 0 or len(history) < self.n_min:
            return []
        self._index_history(history)
        for n in range(min(self.n_max, len(history)), self.n_min - 1, -1):
            key = tuple(history[-n:])
            draft = self._copy_reference(history, key, limit)
            if not draft:
                self._ref_used = None
                start = self._index.get(key)
                if start is not None:
                    draft = list(history[start : start + limit])
                    self.streak = agreement(history, history, start)
            if draft:
                self.last_match = n
                return draft
        return []

    def observe(self, proposed: int, accepted: int) -> None:
        if self._ref_used is not None:
            self._ref_cursor = self._ref_used + accepted
            self._ref_used = None
            before = self._edited.origins  # a rebuild makes new lists: this one stays as it was
            if accepted < proposed and self._edited.contradicted(self._ref_cursor):
                self._reference_changed(before)
