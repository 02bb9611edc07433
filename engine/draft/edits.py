"""The text being edited as the answer has edited it so far: its repeated replacements applied.

A rename changes every occurrence of a name the same way. A lookup copying the original text guesses the old name
at each occurrence, loses its draft there and starts its copy again from a short match. So a replacement the answer
has made twice (the same few tokens of the reference, each time written as the same few others) is applied to the
whole reference the lookup copies from, and one the answer then does not follow is dropped for the request.

A stretch the answer rewrote can hold several replacements with unchanged tokens between them: a method answered
without its class's indentation changes every line's indent, and the stretch from one copied line to the next is
`<8 spaces> quotes <newline> <8 spaces>` written as `<4 spaces> quotes <newline> <4 spaces>`. Each aligned replacement
(difflib) counts on its own, so one such stretch confirms the new indent.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from difflib import SequenceMatcher

MAX_SPAN = 4  # tokens on either side of a replacement: a longer change is an edit of its own, not a rename
CONFIRM = 2  # times the answer makes a replacement before it is applied (once is as often a one-off edit)
SPLIT_SPAN = 16  # a rewritten stretch at most this long on both sides is also split into its aligned replacements

Rule = tuple[tuple[int, ...], tuple[int, ...]]


class EditedReference:
    """`tokens`: the reference with the replacements applied; `replaced[i]`: the rule token i comes from, if any."""

    def __init__(self, source: Sequence[int]) -> None:
        self.source = list(source)
        self.tokens = list(source)
        self.replaced: list[tuple[int, ...] | None] = [None] * len(source)
        self._origin = list(range(len(source)))  # the source index of every token (a replacement's: its first)
        self._rules: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._seen: Counter[Rule] = Counter()
        self._dropped: set[Rule] = set()

    def learn(self, old: Sequence[int], new: Sequence[int]) -> bool:
        """The answer wrote `new` where the reference has `old`; True when that changed `tokens`.

        The stretch counts as one replacement, and where unchanged tokens part it (both sides short), each
        replacement between them counts too."""
        changed = self._count(old, new)
        if len(old) <= SPLIT_SPAN and len(new) <= SPLIT_SPAN:
            opcodes = SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
            if len(opcodes) > 1:
                for tag, i1, i2, j1, j2 in opcodes:
                    if tag == "replace":
                        changed = self._count(old[i1:i2], new[j1:j2]) or changed
        return changed

    def _count(self, old: Sequence[int], new: Sequence[int]) -> bool:
        """One more time the answer replaced `old` by `new`; True when that confirmed it (and changed `tokens`)."""
        if not old or not new or len(old) > MAX_SPAN or len(new) > MAX_SPAN:
            return False
        rule = (tuple(old), tuple(new))
        if rule in self._dropped or self._rules.get(rule[0]) == rule[1]:
            return False
        self._seen[rule] += 1
        if self._seen[rule] < CONFIRM:
            return False
        self._rules[rule[0]] = rule[1]
        self._rebuild()
        return True

    def contradicted(self, index: int) -> bool:
        """The answer did not follow token `index` (a draft was rejected there); True when that dropped a rule."""
        key = self.replaced[index] if 0 <= index < len(self.replaced) else None
        if key is None:
            return False
        self._dropped.add((key, self._rules.pop(key)))
        self._rebuild()
        return True

    def moved(self, index: int, before: Sequence[int]) -> int:
        """Where index `index` of the tokens whose origins were `before` lies in the tokens now."""
        source_index = before[index] if index < len(before) else len(self.source)
        return bisect.bisect_left(self._origin, source_index)

    @property
    def origins(self) -> list[int]:
        return self._origin

    def _rebuild(self) -> None:
        keys = sorted(self._rules, key=len, reverse=True)  # the longest replacement where two start alike
        source = self.source
        tokens: list[int] = []
        replaced: list[tuple[int, ...] | None] = []
        origin: list[int] = []
        i = 0
        while i < len(source):
            key = next((k for k in keys if tuple(source[i : i + len(k)]) == k), None)
            if key is None:
                tokens.append(source[i])
                replaced.append(None)
                origin.append(i)
                i += 1
                continue
            value = self._rules[key]
            tokens.extend(value)
            replaced.extend([key] * len(value))
            origin.extend([i] * len(value))
            i += len(key)
        self.tokens, self.replaced, self._origin = tokens, replaced, origin
