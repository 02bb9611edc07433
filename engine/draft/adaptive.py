"""Choose the draft length that maximises expected tokens per unit of measured decode cost.

Acceptance is modelled as geometric: each drafted token is accepted with probability `a` given the ones before it
were, so a draft of k yields (1 - a^(k+1)) / (1 - a) tokens (the target's own next token included). The cost of
verifying k drafts is the measured time of a decode call of k+1 tokens, relative to one token, learned online from
real decode timings (a CPU and a GPU have very different curves). Drafting pauses when no k beats plain decoding.

A fresh CostModel only knows a prior, and it learns c(n) only for the n it tries, so a curve with a cheap far end
(a GPU's flattens: long calls cost little more than middling ones) is never discovered online. `calibrate` times
every n once; `save_calibration` / `load_calibration` keep the result per card, model and KV type, so the next
process starts from the card's real curve.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from ..files import replacing

# Verify cost of n tokens relative to one before anything is measured: a guess between a CPU's steep curve and a
# GPU's flat one (bench/gpu/RESULTS.md, "Verify cost"); real timings replace it within a few steps.
PRIOR_SLOPE = 0.3
_EMA = 0.2


# Key of a calibration's steady plain step: a one-token call right after another one. On a GPU it replays the CUDA
# graph llama.cpp captured for that shape; a one-token call after a draft cannot, and costs far more (RESULTS.md).
STEADY = 0
# Calls of one shape that come before llama.cpp's CUDA backend replays its graph: the first of a new shape runs
# kernel by kernel, the second captures the graph (dearer still), replays start with the third. Only those price a
# repeated shape: with the second counted, a plain step between drafts was learned at 15-17 ms where a steady one
# takes 12, every draft looked a quarter cheaper than it is, and the head drafted where it lost (RESULTS.md, run 9).
GRAPH_AFTER = 2


def repeated_key(n_tokens: int) -> int:
    """A calibration's key for an n-token call right after another n-token call (same shape: a GPU replays its
    graph, so it costs less than among changing shapes: bench/gpu/RESULTS.md): STEADY for one token, -n for
    more."""
    return STEADY if n_tokens == 1 else -n_tokens


class CostModel:
    """Relative cost c(n) of one decode call over n tokens (c(1) = 1), learned from timings.

    With `price_switches`, c(1) is the steady plain step (one-token call after one-token call), and a draft is also
    charged what it costs the plain step after it: the switch penalty, (one-token call after a draft - steady) / steady.
    Without it, c(1) averages both kinds of plain step, and drafts look cheaper than they are next to not drafting.
    """

    def __init__(self, prior_slope: float = PRIOR_SLOPE, price_switches: bool = False,
                 far_from_data: bool = True) -> None:
        self.prior_slope = prior_slope
        self.far_from_data = far_from_data  # False: past the longest call timed, the prior slope (as before)
        self._seconds: dict[int, float] = {}
        self.price_switches = price_switches
        self._after_draft: float | None = None  # one-token calls right after a longer call
        # n-token calls right after an n-token call; for n = 1 that is sustained plain decoding, the steady step
        self._repeated: dict[int, float] = {}
        self._previous = 0  # tokens in the last recorded call
        self._in_a_row = 0  # calls of that shape in a row, that one included
        self._first_of_shape = 0.0  # seconds of the first call of the current shape
        # seconds a new shape's first GRAPH_AFTER calls cost beyond as many replays of it (the direct call, the
        # capture): what changing a held draft length costs on a GPU; none on a CPU
        self._change: float | None = None

    @staticmethod
    def _ema(old: float | None, seconds: float) -> float:
        return seconds if old is None else old + _EMA * (seconds - old)

    def record(self, n_tokens: int, seconds: float) -> None:
        if n_tokens < 1 or seconds <= 0:
            return
        self._seconds[n_tokens] = self._ema(self._seconds.get(n_tokens), seconds)
        self._in_a_row = self._in_a_row + 1 if n_tokens == self._previous else 1
        if self._in_a_row > GRAPH_AFTER:
            self._repeated[n_tokens] = self._ema(self._repeated.get(n_tokens), seconds)
        elif n_tokens == 1 and self._previous > 1:
            self._after_draft = self._ema(self._after_draft, seconds)
        if self._in_a_row == 1:
            self._first_of_shape = seconds
        elif self._in_a_row == GRAPH_AFTER and n_tokens in self._repeated:
            excess = self._first_of_shape + seconds - GRAPH_AFTER * self._repeated[n_tokens]
            self._change = self._ema(self._change, max(excess, 0.0))
        self._previous = n_tokens

    def interrupted(self) -> None:
        """Calls it does not see ran since the last one it did (a prompt, a recompute): the next call is the first
        of its shape, however many of that shape came before the interruption."""
        self._previous = self._in_a_row = 0

    def base_seconds(self) -> float | None:
        """Seconds of the plain step every cost is relative to (None before anything is timed).

        Before a one-token call is timed (a drafter that drafts from its first step never makes one), it is
        inferred from the shortest call timed, through the prior slope: a model drafter's own cost is priced
        against it from the start.
        """
        steady = self._repeated.get(1)
        if self.price_switches and steady is not None:
            return steady
        if 1 in self._seconds or not self._seconds:
            return self._seconds.get(1)
        shortest = min(self._seconds)
        return self._seconds[shortest] / (1.0 + self.prior_slope * (shortest - 1))

    def switch_penalty(self) -> float:
        """What a draft costs the plain step after it, relative to a steady plain step (0 unless pricing them)."""
        steady = self._repeated.get(1)
        if not self.price_switches or steady is None or self._after_draft is None:
            return 0.0
        return max(self._after_draft / steady - 1.0, 0.0)

    def change_cost(self, n_tokens: int) -> float:
        """What a call of `n_tokens` costs, in plain steps, when its shape is new (its first GRAPH_AFTER calls beyond
        as many replays): as measured live, else the calibrated first call's excess over a replay."""
        base = self.base_seconds()
        if self._change is not None and base:
            return self._change / base
        return self.first_call_excess(n_tokens)

    def first_call_excess(self, n_tokens: int) -> float:
        """A call of `n_tokens` among changing shapes beyond one whose shape repeats, in plain steps (the curves)."""
        return max(self.curve(n_tokens)[n_tokens] - self.repeated_curve(n_tokens)[n_tokens], 0.0)

    def seed(self, seconds: Mapping[int, float]) -> None:
        """Start from a calibration (seconds per decode call of n tokens); live timings keep refining it."""
        for key, value in seconds.items():
            if value <= 0:
                continue
            if key >= 1:
                self._seconds[int(key)] = float(value)
            else:  # repeated_key(n): STEADY for one token, -n for more
                self._repeated[max(-int(key), 1)] = float(value)
        if seconds.get(STEADY, 0) > 0 and 1 in seconds:
            # the calibration's one-token calls alternate with longer ones, like the plain step after a draft
            self._after_draft = float(seconds[1])

    def snapshot(self) -> dict[int, float]:
        """The learned seconds per decode call of n tokens (repeated shapes under repeated_key), for saving."""
        learned = dict(self._seconds)
        learned.update({repeated_key(n): value for n, value in self._repeated.items()})
        return learned

    def relative_repeated(self, n_tokens: int) -> float:
        """c(n) for a call whose shape repeats the one before (as a drafter that keeps its length makes them)."""
        base = self.base_seconds()
        known = self._repeated.get(n_tokens)
        if not self.price_switches or base is None or known is None or n_tokens == 1:
            return self.relative(n_tokens)
        return max(known / base, 1.0)

    def relative(self, n_tokens: int) -> float:
        base = self.base_seconds()
        if base is None or n_tokens == 1:
            return 1.0 + self.prior_slope * (n_tokens - 1)
        known = self._seconds.get(n_tokens)
        if known is not None:
            return max(known / base, 1.0)
        lower = max((n for n in self._seconds if n < n_tokens), default=1)
        upper = min((n for n in self._seconds if n > n_tokens), default=None)
        low = self._seconds[lower] / base if lower in self._seconds else 1.0  # c(1) = 1, timed or not
        if upper is None:
            return max(low + self._far_slope(base) * (n_tokens - lower), 1.0)
        high = self._seconds[upper] / base
        share = (n_tokens - lower) / (upper - lower)
        return max(low + share * (high - low), 1.0)

    def curve(self, n_max: int) -> list[float]:
        """[relative(n) for n in 0..n_max] (index 0 unused) in one pass: priced at every step, up to 65 sizes."""
        out = [0.0] * (n_max + 1)
        base = self.base_seconds()
        if base is None:
            for n in range(1, n_max + 1):
                out[n] = 1.0 + self.prior_slope * (n - 1)
            return out
        known = sorted(n for n in self._seconds if n > 1)
        far = self._far_slope(base)
        lower, low = 1, 1.0  # c(1) = 1, timed or not
        at = 0
        for n in range(1, n_max + 1):
            if n == 1:
                out[n] = 1.0
                continue
            while at < len(known) and known[at] < n:
                lower, low = known[at], self._seconds[known[at]] / base
                at += 1
            if at < len(known) and known[at] == n:
                out[n] = max(self._seconds[n] / base, 1.0)
            elif at < len(known):
                upper = known[at]
                high = self._seconds[upper] / base
                out[n] = max(low + (n - lower) / (upper - lower) * (high - low), 1.0)
            else:
                out[n] = max(low + far * (n - lower), 1.0)
        return out

    def _far_slope(self, base: float) -> float:
        """What each token past the longest call timed adds: the average over the calls timed, at most the prior
        slope; the prior before a call of 2+ tokens is timed.

        Both a CPU's curve and a GPU's flatten (on 2 CPU cores the 1.5B model verifies 8 tokens for 4.5 steps and 64
        for 24): the average over short calls prices a long call far too dear, and a size never tried is never timed
        (a fresh process drafted 7 tokens at a time through a 120-token copy). At most the prior, a long draft the
        acceptance says would pay is tried, and from then on priced by its time.
        """
        longest = max(self._seconds, default=1)
        if longest < 2 or not self.far_from_data:
            return self.prior_slope
        return min(max((self._seconds[longest] / base - 1.0) / (longest - 1), 0.0), self.prior_slope)

    def repeated_curve(self, n_max: int) -> list[float]:
        """[relative_repeated(n) for n in 0..n_max] (index 0 unused)."""
        out = self.curve(n_max)
        base = self.base_seconds()
        if self.price_switches and base is not None:
            for n, seconds in self._repeated.items():
                if 1 < n <= n_max:
                    out[n] = max(seconds / base, 1.0)
        return out


# A drafted token's run position is its place in the copy it continues (the proposal's streak + its index in the
# draft). Positions are pooled in buckets ending at these; past the last, one bucket.
RUN_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
RUN_PRIOR_WEIGHT = 2.0  # tokens' worth of evidence the per-token acceptance counts for in every bucket
RUN_TIE = 0.01  # lengths this close to the best rate count as tied: the longest is taken
RUN_WINDOW = 16  # a bucket remembers about this many drafts through it (its width in tokens each): older ones fade
# A lookup draft's verify may cost at most this many plain steps beyond one per token its copy has already run. A
# short match is often a coincidence however well the request's copies went: on a CPU, where a verify of 64 costs 24
# steps, a 64-token draft on a 2-token match that fails at once loses them all, while a GPU (64 for under 3 steps)
# is hardly limited. A real copy reaches long drafts in a step or two (bench/cpu_sim.py on coder-1.5b: edit median
# 1.31x -> 1.51x, f-strings 1.03x -> 1.18x; bench/gpu/simulate.py: unchanged).
RUN_RISK = 1.0
# On a CPU, llama.cpp multiplies repacked quantized weights (Q4_0, Q4_K, IQ4_NL) by activations four rows at a time
# and takes the rows left over one by one: a verify call of a multiple of 4 tokens costs 5-15% less than its
# neighbours (coder-0.5b, 2 cores, in plain steps: 15 tokens 8.8, 16 7.5, 17 9.1; 63 26.7, 64 23.3, 65 25.7;
# `python -m bench.cpu_sim curve --sizes 1,...,65`). A lookup draft there is sized so its call fills whole tiles.
CPU_VERIFY_BLOCK = 4


class RunAcceptance:
    """P(a drafted token is accepted | the copy it continues has run r tokens), learned per bucket of r.

    Lookup drafts copy the input until the next edit: the longer a copy has run, the likelier it goes on, and right
    after an edit a 2-token match is often a coincidence. A constant per-token acceptance cannot see either, so it
    drafts too short in a long copy (where a long verify call is cheap per token) and too long after an edit.
    Each bucket counts the positions verified in it (`reached`, a rejected one included) and the rejections; its
    estimate leans on the per-token acceptance until it has evidence of its own (so a bucket no draft reached yet
    is neither ruled out nor taken for granted). One request's: what copies taught one edit misleads a docstring
    being written in the next (bench/gpu/simulate.py: kept across requests, ideal edits 2.22x against 2.38x).
    """

    def __init__(self) -> None:
        size = len(RUN_BUCKETS) + 1
        self._reached = [0.0] * size
        self._rejected = [0.0] * size
        widths = [high - low for low, high in zip((0, *RUN_BUCKETS), RUN_BUCKETS, strict=False)]
        self._window = [float(RUN_WINDOW * w) for w in (*widths, widths[-1])]

    @staticmethod
    def bucket(position: int) -> int:
        return bisect.bisect_left(RUN_BUCKETS, position)

    def record(self, streak: int, proposed: int, accepted: int) -> None:
        """A draft continuing a `streak`-token copy: `accepted` of its `proposed` tokens matched."""
        touched = set()
        for j in range(1, min(accepted + 1, proposed) + 1):
            b = self.bucket(streak + j)
            self._reached[b] += 1
            touched.add(b)
        if accepted < proposed:
            self._rejected[self.bucket(streak + accepted + 1)] += 1
        for b in touched:
            if self._reached[b] > self._window[b]:
                fade = self._window[b] / self._reached[b]
                self._reached[b] *= fade
                self._rejected[b] *= fade

    def expected_tokens(self, streak: int, limit: int, acceptance: float) -> list[float]:
        """Expected tokens a step yields with a draft of k = 0..limit tokens (the target's own one included), each
        bucket's rejection rate shrunk toward 1 - `acceptance`."""
        prior_rejected = (1.0 - acceptance) * RUN_PRIOR_WEIGHT
        out = [1.0]
        survive = 1.0
        for j in range(1, limit + 1):
            b = self.bucket(streak + j)
            hazard = (self._rejected[b] + prior_rejected) / (self._reached[b] + RUN_PRIOR_WEIGHT)
            survive *= max(1.0 - hazard, 0.0)
            out.append(out[-1] + survive)
        return out


# Positional controllers: the weight of the overall acceptance in each position's estimate (a position seen a few
# times is not trusted over all of them), and a slower decay than the overall rate's (how a head's accuracy falls
# along a draft is a property of the head; the overall rate follows the text).
POSITION_PRIOR = 2.0
_POSITION_EMA = 0.1
# A sustained drafter (a model drafter, drafting every step) changes its draft length only for SWITCH_MARGIN more
# tokens per unit of cost: every change costs the next verify call its captured CUDA graph (bench/gpu/RESULTS.md,
# "Where the time goes"), which the repeated-shape prices it is chosen by leave out. (Run 12 priced a change at its
# measured cost spread over 16 steps, about 2.5% on the H200: the head moved among 2-4 tokens at acceptance 0.8 and
# ran 0.89x of run 11's speed, so the fixed margin stays.) Resuming after a pause is a round trip, the first verify
# call of the new shape and then the first plain step when drafting stops: it needs SWITCH_MARGIN or that cost spread
# over RESUME_DWELL steps, whichever is more. A held length is left for a pause only once it loses (below
# HOLD_FLOOR): a head that resumed and paused again after a draft or two paid two lost graphs each time, about a
# plain step, and at acceptance 0.4 those requests ran 0.90x where steady 1-token drafts ran 0.98x-1.04x (run 11).
SWITCH_MARGIN = 0.05
RESUME_DWELL = 16
HOLD_FLOOR = 1.0


class DraftController:
    """Tracks acceptance and picks how many tokens to draft next (0 = decode plainly).

    With `positional`, acceptance is also kept per draft position (the chance that token k is right given the k - 1
    before it were): a model drafter guesses its first token far better than its sixth (vLLM's per-position rates
    for Qwen3.6's head: 0.92, 0.84, 0.65, 0.54, 0.45, 0.35), so a draft's worth is the product along the positions,
    not a geometric series of one average rate. A lookup proposal that says how long a copy it continues (`streak`)
    is valued by RunAcceptance instead.
    """

    def __init__(self, draft_max: int, cost: CostModel | None = None, prior: float = 0.5,
                 positional: bool = False, by_run: bool = True, verify_block: int = 1) -> None:
        self.draft_max = draft_max
        # a lookup draft's verify call (the draft and the token before it) is a multiple of this many tokens, but for
        # drafts shorter than one block (CPU_VERIFY_BLOCK on a CPU; 1: any length)
        self.verify_block = verify_block
        self.cost = cost or CostModel()
        self.positional = positional
        self.by_run = by_run  # False: lookup proposals priced at the per-token rate, as before RunAcceptance
        self._draft_seconds: float | None = None  # what proposing costs per drafted token (model drafters)
        # seconds a step spends beyond its decode call (and its proposal): [plain steps, drafting steps]
        self._overhead: list[float | None] = [None, None]
        self._held: int | None = None  # the length last chosen for a sustained drafter
        self.restart(prior)

    def restart(self, prior: float) -> None:
        """Forget what was learned: acceptance back to `prior`, as four tokens' worth of evidence."""
        # pseudo-counts of accepted tokens and of rejections (a draft that stopped short)
        self._accepted = prior * 4
        self._rejected = (1 - prior) * 4
        self.runs = RunAcceptance()
        # per position k (1-based): drafts whose token k was checked, and those where it was right
        self._reached = [0.0] * (self.draft_max + 1)
        self._passed = [0.0] * (self.draft_max + 1)

    def acceptance_at(self, position: int) -> float:
        """Estimated chance that drafted token `position` (1-based) is right given the ones before it were."""
        overall = self.acceptance
        if not self.positional or position >= len(self._reached):
            return overall
        return (self._passed[position] + POSITION_PRIOR * overall) / (self._reached[position] + POSITION_PRIOR)

    @property
    def acceptance(self) -> float:
        """Estimated probability that one more drafted token is accepted."""
        total = self._accepted + self._rejected
        return self._accepted / total if total else 0.0

    def record(self, proposed: int, accepted: int, streak: int | None = None) -> None:
        """A verified (or shadow-checked) draft: `accepted` of `proposed` tokens matched (continuing a `streak`-token
        copy, for a lookup proposal)."""
        if proposed <= 0:
            return
        rejected = 1.0 if accepted < proposed else 0.0
        decay = 1 - _EMA
        self._accepted = self._accepted * decay + accepted
        self._rejected = self._rejected * decay + rejected
        if self.positional:
            # every position forgets at each draft, so one the drafts stopped reaching falls back to the overall
            # rate (estimates kept from a text accepted in full bought long drafts where short ones paid: RESULTS.md)
            slow = 1 - _POSITION_EMA
            checked = min(proposed, accepted + 1, len(self._reached) - 1)  # up to the first wrong token
            for k in range(1, len(self._reached)):
                self._reached[k] = self._reached[k] * slow + (1.0 if k <= checked else 0.0)
                self._passed[k] = self._passed[k] * slow + (1.0 if k <= min(accepted, checked) else 0.0)
        if streak is not None and self.by_run:
            self.runs.record(streak, proposed, accepted)

    def record_draft(self, n_tokens: int, seconds: float) -> None:
        """A proposal of `n_tokens` took `seconds` to make (a drafter that runs a model pays per token)."""
        if n_tokens > 0 and seconds > 0:
            self._draft_seconds = CostModel._ema(self._draft_seconds, seconds / n_tokens)

    def draft_cost(self) -> float:
        """Proposing one token, relative to a plain step."""
        base = self.cost.base_seconds()
        return self._draft_seconds / base if self._draft_seconds and base else 0.0

    def record_step(self, drafted: int, seconds: float) -> None:
        """A step that verified `drafted` tokens (0: a plain step) spent `seconds` beyond its decode call and its
        proposal: handing the target's rows to the head, rolling rejected tokens back, the bookkeeping."""
        which = 1 if drafted > 0 else 0
        self._overhead[which] = CostModel._ema(self._overhead[which], max(seconds, 0.0))

    def step_overhead(self) -> float:
        """What a drafting step costs beyond its verify call and its proposal, more than a plain step does, relative
        to a plain step (0 until a drafting step is measured; a plain step's counts as none until one is).

        The verify curve and the proposal timings leave it out, and on an H200 it was about a tenth of a step where
        a draft of 1-2 tokens gains only a few percent at low acceptance: priced without it, drafts that lost
        (0.83x-0.98x plain) looked as if they paid (bench/gpu/RESULTS.md, issue 16).
        """
        drafting, plain = self._overhead[1], self._overhead[0] or 0.0
        base = self.cost.base_seconds()
        if drafting is None or not base:
            return 0.0
        return max(drafting - plain, 0.0) / base

    def describe(self, limit: int | None = None) -> dict[str, object]:
        """What it has learned and what it would choose from, as a sustained drafter (for benchmarks and logs)."""
        limit = self.draft_max if limit is None else min(limit, self.draft_max)
        base = self.cost.base_seconds()
        return {
            "held": self._held,
            "acceptance": round(self.acceptance, 3),
            "by_position": [round(self.acceptance_at(k), 3) for k in range(1, limit + 1)],
            "draft_cost": round(self.draft_cost(), 4),
            "step_overhead": round(self.step_overhead(), 4),
            "overhead_ms": [None if x is None else round(x * 1000, 3) for x in self._overhead],
            "base_ms": None if base is None else round(base * 1000, 3),
            "verify_repeated": [round(c, 3) for c in self.cost.repeated_curve(limit + 1)[1:]],
            "rates": [round(r, 3) for r in self._rates(limit, True, None)],
        }

    def expected_tokens(self, k: int, acceptance: float | None = None) -> float:
        """Tokens a step with k drafted yields (the target's own included): geometric in one rate, or with
        `positional` and no rate given, the product of the per-position rates."""
        if acceptance is None and self.positional:
            total, chain = 1.0, 1.0
            for position in range(1, k + 1):
                chain *= self.acceptance_at(position)
                total += chain
            return total
        a = min(self.acceptance if acceptance is None else acceptance, 0.999)
        return (1 - a ** (k + 1)) / (1 - a)

    def best_length(self, available: int | None = None, sustained: bool = False, streak: int | None = None) -> int:
        """The k in 0..draft_max (and at most `available`) with the most tokens per unit of cost.

        A draft is priced as one among plain steps: its call changes shape and the plain step after it loses its
        graph (the switch penalty), as with lookup, which drafts only where the answer copies. A `sustained`
        drafter (a model drafter, which proposes at every step) keeps its length while acceptance holds, so its
        calls repeat one shape; it is priced at that steady cost, plus what proposing costs it, and keeps its
        length (or its pause) unless another is SWITCH_MARGIN better. A lookup proposal continuing a `streak`-token
        copy is valued by run acceptance.
        """
        if streak is not None and self.by_run and not sustained:
            limit = self.draft_max if available is None else min(self.draft_max, available)
            verify = self.cost.curve(limit + 1)  # a lookup's calls change shape: one pass, for the limit and rates
            limit = self._risk_limit(verify, limit, streak)
            rates = self._rates_of(self.runs.expected_tokens(streak, limit, self.acceptance), sustained, verify)
            block = self.verify_block
            if block > 1:  # a call that leaves rows over costs more than the next whole block: not a candidate
                rates = [rate if k + 1 < block or (k + 1) % block == 0 else 0.0 for k, rate in enumerate(rates)]
            best = self._pick(rates)
            # the longest length within RUN_TIE of the best: run estimates are flat near a long copy's end, and a
            # length that jitters by a token costs a GPU its captured graph at every call
            return max((k for k in range(best, len(rates)) if rates[k] >= rates[best] * (1 - RUN_TIE)), default=best)
        rates = self._rates(available, sustained, None)
        best = self._pick(rates)
        if not sustained:
            return best
        held = self._held
        if held is not None and held < len(rates) and best != held:
            if held == 0:  # a paused drafter's rate is plain decoding's (1)
                if rates[best] < 1.0 + self.resume_margin(best):
                    best = held
            elif rates[held] >= HOLD_FLOOR and (
                best == 0 or rates[best] < rates[held] * (1 + self.change_margin(held, best, rates[held]))
            ):
                best = held  # still paying: left only for a length clearly better
        self._held = best
        return best

    @staticmethod
    def _risk_limit(verify: Sequence[float], limit: int, streak: int) -> int:
        """The longest lookup draft (at most `limit`) whose verify (`verify[k + 1]`, in plain steps) costs at most
        RUN_RISK plain steps beyond one per token the copy has already run (one token at least)."""
        allowed = RUN_RISK * max(streak, 1)
        return max((k for k in range(1, limit + 1) if verify[k + 1] - 1.0 <= allowed), default=1)

    def resume_margin(self, length: int) -> float:
        """The gain over plain decoding a paused sustained drafter needs to resume at `length`: SWITCH_MARGIN, or
        what the round trip costs in plain steps (the new shape's first verify, the first plain step after the
        drafting) spread over RESUME_DWELL steps, whichever is more. (Priced at a change's full measured cost, about
        3.6 plain steps there and back on the H200, a head at acceptance 0.4 would stay paused where 1-token drafts
        ran 0.99x-1.07x of plain in runs 12-13.)"""
        return max(SWITCH_MARGIN, (self.cost.first_call_excess(length + 1) + self.cost.switch_penalty()) / RESUME_DWELL)

    def change_margin(self, held: int, length: int, held_rate: float) -> float:
        """The gain over the held length a sustained drafter needs to move to `length`: SWITCH_MARGIN, or a round
        trip's measured cost (the new shape's first calls, and again when it moves back) spread over RESUME_DWELL
        steps of the held length, whichever is more. On the H200 a new shape's first two calls cost about 1.8 plain
        steps beyond replays; priced at 5%, a head at acceptance 0.6 moved between 1 and 2 tokens 8 times a request
        for estimates that differed by a few percent, and lost 8% to it (bench/gpu/simulate_mtp.py)."""
        if held <= 0 or held_rate <= 0:
            return SWITCH_MARGIN
        step = self.expected_tokens(held) / held_rate  # the held length's cost per step, in plain steps
        return max(SWITCH_MARGIN, 2 * self.cost.change_cost(length + 1) / (RESUME_DWELL * step))

    def pads(self, short: int, length: int) -> bool:
        """Whether a sustained drafter's proposal that stopped at `short` tokens is verified at the held `length`
        anyway, filled with tokens that will be rejected: where the extra rows cost less than the shorter call's
        new shape and the held shape's again after it (a GPU), not where shapes cost nothing new (a CPU)."""
        extra = self.cost.relative_repeated(length + 1) - self.cost.relative_repeated(short + 1)
        return extra < 2 * self.cost.change_cost(short + 1)

    def could_pay(self, available: int | None = None, sustained: bool = False) -> bool:
        """Whether some draft would pay if every token were accepted (proposals that dear are not worth a probe)."""
        return self._pick(self._rates(available, sustained, 1.0)) > 0

    def _rates(self, available: int | None, sustained: bool, acceptance: float | None) -> list[float]:
        """Tokens per unit of cost for k = 0 (plain: 1) .. the limit, at `acceptance` (None: what was learned, per
        position where kept)."""
        limit = self.draft_max if available is None else min(self.draft_max, available)
        return self._rates_of([self.expected_tokens(k, acceptance) for k in range(limit + 1)], sustained)

    def _rates_of(
        self, expected: Sequence[float], sustained: bool, verify: Sequence[float] | None = None
    ) -> list[float]:
        """Tokens per unit of cost for k = 0 (plain: 1) .. len(expected) - 1, given `expected[k]` tokens from a
        draft of k; the verify curve (`verify`, at least that long, where the caller has it) is computed in one pass."""
        limit = len(expected) - 1
        penalty = (0.0 if sustained else self.cost.switch_penalty()) + self.step_overhead()
        if verify is None:
            verify = self.cost.repeated_curve(limit + 1) if sustained else self.cost.curve(limit + 1)
        per_token = self.draft_cost()
        return [1.0] + [expected[k] / (verify[k + 1] + penalty + per_token * k) for k in range(1, limit + 1)]

    @staticmethod
    def _pick(rates: Sequence[float]) -> int:
        best = max(range(len(rates)), key=lambda k: (rates[k], -k))
        # plain decoding yields 1 token per unit; a margin keeps noise from buying drafts that do not pay
        return best if rates[best] > 1.02 else 0


# --- calibration per card ---------------------------------------------------------------------------------------
def calibrate(time_call: Callable[[int], float], sizes: Iterable[int], repeats: int = 3) -> dict[int, float]:
    """Median seconds of `time_call(n)` (one decode call of n tokens, rolled back) for every n in `sizes`.

    Sizes are visited round-robin, so a drifting clock or a warming card does not favour one size.
    """
    wanted = sorted(set(sizes))
    samples: dict[int, list[float]] = {n: [] for n in wanted}
    for _ in range(max(1, repeats)):
        for n in wanted:
            samples[n].append(time_call(n))
    return {n: statistics.median(values) for n, values in samples.items()}


def calibration_key(*parts: object) -> str:
    """A key naming what a cost curve depends on: the card, the model file, the KV type, the offload."""
    return "|".join(str(part) for part in parts)


def calibration_path(key: str, directory: Path | None = None) -> Path:
    if directory is None:
        from ..settings import cache_dir

        directory = cache_dir() / "calibration"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
    return directory / f"costs-{digest}.json"


def save_calibration(key: str, seconds: Mapping[int, float], directory: Path | None = None) -> Path:
    path = calibration_path(key, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"key": key, "seconds": {str(n): value for n, value in sorted(seconds.items())}}
    with replacing(path) as partial:
        partial.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return path


def load_calibration(key: str, directory: Path | None = None) -> dict[int, float] | None:
    """The saved curve for `key`, or None (none saved, another key's file, or unreadable)."""
    path = calibration_path(key, directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        return {int(n): float(value) for n, value in data["seconds"].items() if float(value) > 0}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
