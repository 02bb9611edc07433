"""Which drafter proposes at each step, and how much of its proposal is verified.

A plan holds its sources in priority order. `auto` on a model with an MTP head is n-gram lookup first, taken when it
matches at least a few tokens (an edit copying its input), and the head otherwise. Every source has its own
DraftController, since acceptance depends on the source, while all share one CostModel: the verify cost is the
target's. A costly source (a model call per drafted token: the MTP head, a draft model) is not asked to propose while
its controller has paused drafting, only every PROBE_EVERY steps, so the controller still sees acceptance recover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .adaptive import DraftController
from .base import Drafter

# While a costly source is paused, it drafts (unverified, shadow-checked) once every this many steps.
PROBE_EVERY = 8
# Where n-gram acceptance starts for each request (DraftSource.priors). Lookup acceptance is a property of the task,
# not of the model: an edit (a request with a reference) copies most of its input, prose copies almost nothing, and
# what one request taught would mislead the next (after five edits a prose answer verified 7 failing drafts before
# pausing). Shadow checks lift a low start as soon as the answer does copy. Chosen with bench/gpu/simulate.py on the
# H100's measured costs: prose 0.90x -> 1.00x, edits 1.99-2.86x -> 2.14-2.94x (ideal answers), recorded unchanged.
EDIT_PRIOR = 0.8
PROSE_PRIOR = 0.3


@dataclass
class DraftSource:
    drafter: Drafter
    controller: DraftController
    costly: bool = False  # proposing costs model calls
    min_tokens: int = 1  # a shorter proposal falls through to the next source (kept if none does better)
    # acceptance restarted at every request: (with a reference, without); None keeps what earlier requests taught
    priors: tuple[float, float] | None = None
    _paused_steps: int = field(default=0, repr=False)

    @property
    def name(self) -> str:
        return self.drafter.name


@dataclass
class Proposal:
    source: DraftSource
    tokens: list[int]  # what the source proposed
    length: int  # how many to verify: 0 leaves them to a shadow check against what the model emits

    @property
    def draft(self) -> list[int]:
        return self.tokens[: self.length]


@dataclass
class Shadow:
    """A proposal that was not verified (its source paused), checked against what the target really emits."""

    tokens: list[int]
    controller: DraftController
    matched: int = 0

    def follow(self, token: int) -> bool:
        """The target emitted `token`; False once the shadow has ended (its acceptance is then recorded)."""
        if self.tokens[self.matched] == token:
            self.matched += 1
            if self.matched < len(self.tokens):
                return True
        self.controller.record(len(self.tokens), self.matched)
        return False


class DraftPlan:
    def __init__(self, name: str, sources: Sequence[DraftSource]) -> None:
        if not sources:
            raise ValueError("a draft plan needs at least one source")
        self.name = name
        self.sources = list(sources)

    def begin(self, prompt: Sequence[int], reference: Sequence[int]) -> None:
        for source in self.sources:
            source.drafter.begin(prompt, reference)
            source._paused_steps = 0  # a new request drafts at its first step
            if source.priors is not None:
                source.controller.restart(source.priors[0] if reference else source.priors[1])

    def propose(self, history: Sequence[int], budget: int) -> Proposal | None:
        """The draft for the step after `history`: from the first source with a long enough proposal."""
        if budget <= 0:
            return None
        short: Proposal | None = None
        for source in self.sources:
            if source.costly and source.controller.best_length(budget) == 0:
                source._paused_steps += 1
                if source._paused_steps % PROBE_EVERY != 1:
                    continue
            else:
                source._paused_steps = 0
            tokens = source.drafter.propose(history, budget)
            if not tokens:
                continue
            proposal = Proposal(source, tokens, source.controller.best_length(len(tokens)))
            if len(tokens) >= source.min_tokens:
                return proposal
            short = short or proposal
        return short

    def record_cost(self, n_tokens: int, seconds: float) -> None:
        """A decode call's time, for every cost model the plan's controllers use (usually the engine's one)."""
        for cost in {id(s.controller.cost): s.controller.cost for s in self.sources}.values():
            cost.record(n_tokens, seconds)

    def verified(self, proposal: Proposal, accepted: int) -> None:
        """Feedback for a verified draft: `accepted` of its tokens matched the target."""
        proposal.source.controller.record(proposal.length, accepted)
        proposal.source.drafter.observe(proposal.length, accepted)
