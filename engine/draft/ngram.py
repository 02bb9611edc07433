"""Prompt lookup: when the last n tokens occurred before, propose what followed them then.

Edits copy most of their input, so the answer's next tokens are very often a run of the prompt. The text being
edited (the reference) is searched first, from where the last copy left off, so repeated lines such as
`return None` continue at the right place; then the answer's own past.

Each proposal also says how long the copy it continues already is (`streak`): the answer's last tokens that agree
with the text right before where the proposal was taken. A copy that has run for 40 tokens usually runs on to the
next edit; one that just matched 2 tokens is as often a coincidence. The controller prices drafts by it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from .base import Drafter

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

    def __init__(self, n_min: int = 2, n_max: int = 5) -> None:
        self.n_min, self.n_max = n_min, n_max
        self._index: dict[tuple[int, ...], int] = {}  # n-gram -> index after its latest occurrence
        self._indexed_to = 0  # n-grams ending before this history index are in _index
        self._reference: list[int] = []
        self._ref_positions: dict[tuple[int, ...], list[int]] = {}  # n-gram -> ends, ascending
        self._ref_cursor = 0  # where the last reference copy ended
        self._ref_used: int | None = None  # reference index the pending proposal starts at
        self.last_match = 0  # the n of the last proposal's match (0: none)
        self.streak = 0  # tokens before the last proposal that agree with where it was taken from

    def begin(self, prompt: Sequence[int], reference: Sequence[int]) -> None:
        self._index.clear()
        self._indexed_to = 0
        self._reference = list(reference)
        self._ref_positions = {}
        self._ref_cursor = 0
        ref = self._reference
        for end in range(1, len(ref) + 1):
            for n in range(self.n_min, min(self.n_max, end) + 1):
                self._ref_positions.setdefault(tuple(ref[end - n : end]), []).append(end)

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

    def propose(self, history: Sequence[int], limit: int) -> list[int]:
        self.last_match = self.streak = 0
        self._ref_used = None
        if limit <= 0 or len(history) < self.n_min:
            return []
        self._index_history(history)
        for n in range(min(self.n_max, len(history)), self.n_min - 1, -1):
            key = tuple(history[-n:])
            draft = self._from_reference(key, limit)
            if draft:
                assert self._ref_used is not None
                self.streak = agreement(history, self._reference, self._ref_used)
            else:
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
