"""What a drafter is, and what it may use of the engine it drafts for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..model import ModelInfo
from ..runtime import Runtime
from ..settings import QcodeSettings


class Drafter:
    """Proposes tokens the target model is likely to emit next. A subclass writes `propose` and whichever other
    method it needs (the rest do nothing); the engine calls them all on every drafter it made."""

    name: str
    # the longest proposal it ever makes (None: as long as asked); a controller is asked for no more, so the length
    # it picks is one the drafter can fill
    max_draft: int | None = None
    # after propose: how many tokens before the proposal agree with where it was copied from (a lookup continuing a
    # copy: the controller drafts a long copy long); 0 for drafters that guess (a model)
    streak: int = 0

    def begin(self, prompt: Sequence[int], reference: Sequence[int]) -> None:
        """A new request: `prompt` is what the target saw, `reference` text the answer may copy."""

    def propose(self, history: Sequence[int], limit: int) -> list[int]:
        """Up to `limit` tokens to follow `history` (prompt + answer so far); [] when unsure."""
        raise NotImplementedError

    def observe(self, proposed: int, accepted: int) -> None:
        """Feedback after verification."""

    def after_decode(self, held: Sequence[int], tokens: Sequence[int], kept: int) -> None:
        """The target decoded `tokens` right after the `held` tokens it holds; only the first `kept` stay.

        Called for every target decode call, whichever drafter runs, while its outputs can still be read: a drafter
        that follows the target's hidden states (an MTP head) takes them here.
        """

    def close(self) -> None:
        """Free what the drafter holds (a context, a model); the engine calls it once, when it closes."""


class DraftHost(Protocol):
    """What `choose_drafter` and the drafters may use of the engine: its runtime, its model's facts, its settings."""

    @property
    def settings(self) -> QcodeSettings: ...

    @property
    def info(self) -> ModelInfo: ...

    @property
    def runtime(self) -> Runtime: ...

    @property
    def can_draft(self) -> bool:
        """Whether drafts can be verified at all (recurrent memory needs rollback slots)."""
        ...
