"""Which drafter proposes at each step, and how much of its proposal is verified.

A plan holds its sources in priority order. `auto` on a model with an MTP head is n-gram lookup first, taken when it
matches at least a few tokens (an edit copying its input), and the head otherwise. Every source has its own
DraftController, since acceptance depends on the source, while all share one CostModel: the verify cost is the
target's. A costly source (a model call per drafted token: the MTP head, a draft model) is asked for no more tokens
than its controller will verify, and its controller prices those calls (every proposal is timed). While it is paused
it only probes now and then (PROBE_LENGTH tokens, shadow-checked), so the controller still sees acceptance recover:
PROBE_EVERY steps after the first probe, then twice as long after each further one, up to PROBE_MAX_GAP (failing
probes at a fixed short gap cost a paused head a share of its steps that shows), and at once the longest gap where its
calls cost more than a perfect draft would save (a head as large as a tiny target's).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .adaptive import DraftController
from .base import Drafter

# While a costly source is paused it probes (drafts unverified, shadow-checked): PROBE_LENGTH tokens, PROBE_EVERY steps
# after its first probe, then twice as long after each further one, up to PROBE_MAX_GAP. A paused lookup's proposal is
# shadow-checked over PROBE_LENGTH tokens too.
PROBE_EVERY = 8
PROBE_MAX_GAP = 64
PROBE_LENGTH = 4
# Where n-gram acceptance starts for each request (DraftSource.priors). Lookup acceptance is a property of the task,
# not of the model: an edit (a request with a reference) copies most of its input, prose copies almost nothing, and
# what one request taught would mislead the next (a prose answer after edits verified failing drafts before
# pausing). Shadow checks lift a low start as soon as the answer does copy. Chosen with bench/gpu/simulate.py on
# measured GPU costs: bench/gpu/SIMULATION.md says how, and what it bought.
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
    _probe_wait: int = field(default=0, repr=False)  # paused steps left before the next probe
    _probe_gap: int = field(default=PROBE_EVERY, repr=False)  # the wait after the next probe
    _timed: bool = field(default=False, repr=False)  # whether this request's proposals are timed yet

    @property
    def name(self) -> str:
        return self.drafter.name


@dataclass
class Proposal:
    source: DraftSource
    tokens: list[int]  # what the source proposed
    length: int  # how many to verify: 0 leaves them to a shadow check against what the model emits
    streak: int | None = None  # a lookup proposal: how long a copy it continues (None: a model's guess)

    @property
    def draft(self) -> list[int]:
        return self.tokens[: self.length]

    def shadow(self) -> Shadow:
        """A check of this (unverified) proposal's first PROBE_LENGTH tokens against the tokens the target emits
        next. No longer: a shadow reports when it ends, and a 64-token copy followed in full kept a lookup paused
        for 64 steps of a copy it would have drafted (coder-0.5b on this CPU's curve, bench/cpu_sim.py: edit median
        1.18x -> 1.82x)."""
        return Shadow(self.tokens[:PROBE_LENGTH], self.source.controller, streak=self.streak)


@dataclass
class Shadow:
    """A proposal that was not verified (its source paused), checked against what the target really emits."""

    tokens: list[int]
    controller: DraftController
    matched: int = 0
    streak: int | None = None

    def follow(self, token: int) -> bool:
        """The target emitted `token`; False once the shadow has ended (its acceptance is then recorded)."""
        if self.tokens[self.matched] == token:
            self.matched += 1
            if self.matched < len(self.tokens):
                return True
        self.controller.record(len(self.tokens), self.matched, self.streak)
        return False


class DraftPlan:
    def __init__(self, name: str, sources: Sequence[DraftSource],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if not sources:
            raise ValueError("a draft plan needs at least one source")
        self.name = name
        self.sources = list(sources)
        # the step under way, for record_step: how many tokens a costly source's draft verifies (0: none drafted),
        # None where another source's draft runs (a lookup step says nothing of the head's steps)
        self._step_drafted: int | None = None
        self._call_seconds = 0.0  # the last decode call's, as record_cost had it
        self.clock = clock  # times proposals (a simulation passes its own)

    def begin(self, prompt: Sequence[int], reference: Sequence[int]) -> None:
        self._step_drafted = None
        self.interrupted()  # the prompt ran since the last request's last step
        for source in self.sources:
            source.drafter.begin(prompt, reference)
            source._probe_wait, source._probe_gap = 0, PROBE_EVERY  # a new request drafts at its first step
            source._timed = False
            if source.priors is not None:
                source.controller.restart(source.priors[0] if reference else source.priors[1])

    def propose(self, history: Sequence[int], budget: int) -> Proposal | None:
        """The draft for the step after `history`: from the first source with a long enough proposal."""
        proposal = self._propose(history, budget)
        if proposal is None or not proposal.draft:
            self._step_drafted = 0
        else:
            self._step_drafted = len(proposal.draft) if proposal.source.costly else None
        return proposal

    def _propose(self, history: Sequence[int], budget: int) -> Proposal | None:
        if budget <= 0:
            return None
        short: Proposal | None = None
        for source in self.sources:
            streak: int | None = None
            if source.costly:
                tokens, length = self._ask_costly(source, history, budget)
            else:
                tokens = source.drafter.propose(history, budget)  # a lookup: free to ask every step
                streak = source.drafter.streak
                length = source.controller.best_length(len(tokens), streak=streak) if tokens else 0
            if not tokens:
                continue
            proposal = Proposal(source, tokens, length, streak)
            if len(tokens) >= source.min_tokens:
                return proposal
            short = short or proposal
        return short

    def _ask_costly(self, source: DraftSource, history: Sequence[int], budget: int) -> tuple[list[int], int]:
        """A model drafter's proposal and how much of it to verify: as many tokens as its controller will verify,
        or a probe while it is paused (verified: 0; no tokens between probes); timed, so the controller can price
        its calls."""
        controller = source.controller
        # asked within what the drafter can fill: a controller choosing among longer lengths, then re-choosing
        # within the drafter's, flips its held length every step (bench/gpu/RESULTS.md, issue 16: `auto` drafted far
        # more than `--draft mtp` for about as many accepted tokens, and ran slower)
        if source.drafter.max_draft is not None:
            budget = min(budget, source.drafter.max_draft)
        limit = controller.best_length(budget, sustained=True)
        if limit > 0:
            source._probe_wait, source._probe_gap = 0, PROBE_EVERY
        elif source._probe_wait > 0:
            source._probe_wait -= 1
            return [], 0
        else:
            if not controller.could_pay(budget, sustained=True):
                # not even perfect acceptance would pay for its calls: the longest gap, to see whether they still
                # cost that much
                source._probe_gap = PROBE_MAX_GAP
            source._probe_wait = source._probe_gap - 1
            source._probe_gap = min(2 * source._probe_gap, PROBE_MAX_GAP)
        started = self.clock()
        tokens = source.drafter.propose(history, limit or min(budget, PROBE_LENGTH))
        # a request's first proposal also runs the head over the whole prompt: not a per-token cost
        if source._timed:
            controller.record_draft(len(tokens), self.clock() - started)
        source._timed = True
        if len(tokens) < limit and history:  # the drafter stopped short (a ranked head's guess outside its rows)
            if controller.pads(len(tokens), limit):  # a GPU: the held shape keeps its graph, the filler is rejected
                return tokens + [tokens[-1] if tokens else history[-1]] * (limit - len(tokens)), limit
            # else the best length within it, for this step only: the held length stays
            return tokens, controller.best_length(len(tokens)) if tokens else 0
        return tokens, limit  # the best of 1..budget is the best of 1..limit; a probe verifies nothing

    def record_cost(self, n_tokens: int, seconds: float) -> None:
        """A decode call's time, for every cost model the plan's controllers use (usually the engine's one)."""
        self._call_seconds = seconds
        for cost in {id(s.controller.cost): s.controller.cost for s in self.sources}.values():
            cost.record(n_tokens, seconds)

    def interrupted(self) -> None:
        """Decode calls the plan does not time ran (a prompt, a recompute): the next timed call starts a new shape
        (counted as repeated, the first call after a prompt taught a GPU's steady plain step 16.6 ms for 12)."""
        for cost in {id(s.controller.cost): s.controller.cost for s in self.sources}.values():
            cost.interrupted()

    def record_step(self, seconds: float) -> None:
        """A whole step's time, its decode call (record_cost) and what followed it (the head taking the target's
        rows, a rollback, the bookkeeping), its proposal left out: the costly sources' controllers learn what a
        drafting step costs beyond its call and its proposal, against a plain step."""
        drafted, self._step_drafted = self._step_drafted, None
        if drafted is None:
            return
        for source in self.sources:
            if source.costly:
                source.controller.record_step(drafted, seconds - self._call_seconds)

    def verified(self, proposal: Proposal, accepted: int) -> None:
        """Feedback for a verified draft: `accepted` of its tokens matched the target."""
        proposal.source.controller.record(proposal.length, accepted, proposal.streak)
        proposal.source.drafter.observe(proposal.length, accepted)
