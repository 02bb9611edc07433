"""The drafter protocol: propose tokens the target model is likely to emit next."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Drafter(Protocol):
    name: str

    def begin(self, prompt: Sequence[int], reference: Sequence[int]) -> None:
        """A new request: `prompt` is what the target saw, `reference` text the answer may copy."""

    def propose(self, history: Sequence[int], limit: int) -> list[int]:
        """Up to `limit` tokens to follow `history` (prompt + answer so far); [] when unsure."""

    def observe(self, proposed: int, accepted: int) -> None:
        """Feedback after verification."""


class DecodeObserver(Protocol):
    """Optional for a drafter (the engine looks for the method): told of every target decode call while its
    outputs can still be read, e.g. the hidden states an MTP head drafts from."""

    def after_decode(self, held: Sequence[int], tokens: Sequence[int], kept: int) -> None:
        """The target decoded `tokens` right after the `held` tokens it holds; only the first `kept` stay."""
