"""Stopping an answer that loops: the same run of tokens again and again, copied from nowhere.

Small models under greedy decoding fall into loops (a line, a sentence, a block repeated until the token limit).
A loop is the answer's tail made of one unit repeated: at least MIN_REPEATS times and MIN_SPAN tokens in all, so
short legitimate repeats (`0, 0, 0`, two similar lines) pass. A tail that also occurs in the prompt is copying
(a rewrite of code that repeats itself), not looping.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

MIN_SPAN = 64  # tokens: a loop of short units must run this long before it is stopped
MIN_REPEATS = 3  # a long unit must come back this many times in a row
MAX_PERIOD = 200  # tokens: longer units (whole paragraphs) are not looked for


def loop_period(
    tokens: Sequence[int], start: int = 0, *, min_span: int = MIN_SPAN, min_repeats: int = MIN_REPEATS,
    max_period: int = MAX_PERIOD,
) -> int:
    """The unit length of a loop that tokens[start:] ends in, or 0 when it ends in none.

    A loop of unit p: the last max(min_span, min_repeats * p) tokens repeat with period p. Cheap when there is
    none: most periods fail at their first comparison.
    """
    n = len(tokens) - start
    for period in range(1, max_period + 1):
        span = max(min_span, min_repeats * period)
        if span > n:
            break
        end = len(tokens)
        if all(tokens[end - k] == tokens[end - k - period] for k in range(1, span - period + 1)):
            return period
    return 0


def _as_bytes(tokens: Sequence[int]) -> bytes:
    return array("q", tokens).tobytes()


def occurs_in(needle: Sequence[int], haystack_bytes: bytes) -> bool:
    """Whether the token run `needle` occurs in the tokens packed as `haystack_bytes` (see RepetitionGuard)."""
    target = _as_bytes(needle)
    width = array("q").itemsize
    at = haystack_bytes.find(target)
    while at >= 0:
        if at % width == 0:  # bytes.find can match across token boundaries: only whole tokens count
            return True
        at = haystack_bytes.find(target, at + 1)
    return False


class RepetitionGuard:
    """Watches one answer: `looping(history)` after each token says whether to stop it."""

    def __init__(self, prompt: Sequence[int]) -> None:
        self._start = len(prompt)
        self._prompt = _as_bytes(prompt)

    def looping(self, history: Sequence[int]) -> bool:
        """history is the prompt followed by the answer so far."""
        period = loop_period(history, self._start)
        if not period:
            return False
        span = max(MIN_SPAN, MIN_REPEATS * period)
        return not occurs_in(history[len(history) - span :], self._prompt)
