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

import hashlib
import json
import os
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

# Verify cost of n tokens relative to one before anything is measured: a guess between a CPU's steep curve and a
# GPU's flat one (bench/gpu/RESULTS.md, "Verify cost"); real timings replace it within a few steps.
PRIOR_SLOPE = 0.3
_EMA = 0.2


# Key of a calibration's steady plain step: a one-token call right after another one. On a GPU it replays the CUDA
# graph llama.cpp captured for that shape; a one-token call after a draft cannot, and costs far more (RESULTS.md).
STEADY = 0


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

    def __init__(self, prior_slope: float = PRIOR_SLOPE, price_switches: bool = False) -> None:
        self.prior_slope = prior_slope
        self._seconds: dict[int, float] = {}
        self.price_switches = price_switches
        self._after_draft: float | None = None  # one-token calls right after a longer call
        # n-token calls right after an n-token call; for n = 1 that is sustained plain decoding, the steady step
        self._repeated: dict[int, float] = {}
        self._previous = 0  # tokens in the last recorded call

    @staticmethod
    def _ema(old: float | None, seconds: float) -> float:
        return seconds if old is None else old + _EMA * (seconds - old)

    def record(self, n_tokens: int, seconds: float) -> None:
        if n_tokens < 1 or seconds <= 0:
            return
        self._seconds[n_tokens] = self._ema(self._seconds.get(n_tokens), seconds)
        if n_tokens == self._previous:
            self._repeated[n_tokens] = self._ema(self._repeated.get(n_tokens), seconds)
        elif n_tokens == 1 and self._previous > 1:
            self._after_draft = self._ema(self._after_draft, seconds)
        self._previous = n_tokens

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
            return max(low + self.prior_slope * (n_tokens - lower), 1.0)
        high = self._seconds[upper] / base
        share = (n_tokens - lower) / (upper - lower)
        return max(low + share * (high - low), 1.0)


# Positional controllers: the weight of the overall acceptance in each position's estimate (a position seen a few
# times is not trusted over all of them), and a slower decay than the overall rate's (how a head's accuracy falls
# along a draft is a property of the head; the overall rate follows the text).
POSITION_PRIOR = 2.0
_POSITION_EMA = 0.1
# A sustained drafter changes its draft length, or resumes after a pause, only for this much more tokens per unit
# of cost: every change costs the next verify call its captured CUDA graph (bench/gpu/RESULTS.md, "Where the time
# goes"), which the repeated-shape prices it is chosen by leave out. It pauses as soon as drafting no longer pays.
SWITCH_MARGIN = 0.05


class DraftController:
    """Tracks acceptance and picks how many tokens to draft next (0 = decode plainly).

    With `positional`, acceptance is also kept per draft position (the chance that token k is right given the k - 1
    before it were): a model drafter guesses its first token far better than its sixth (vLLM's per-position rates
    for Qwen3.6's head: 0.92, 0.84, 0.65, 0.54, 0.45, 0.35), so a draft's worth is the product along the positions,
    not a geometric series of one average rate.
    """

    def __init__(self, draft_max: int, cost: CostModel | None = None, prior: float = 0.5,
                 positional: bool = False) -> None:
        self.draft_max = draft_max
        self.cost = cost or CostModel()
        self.positional = positional
        self._draft_seconds: float | None = None  # what proposing costs per drafted token (model drafters)
        self._held: int | None = None  # the length last chosen for a sustained drafter
        self.restart(prior)

    def restart(self, prior: float) -> None:
        """Forget what was learned: acceptance back to `prior`, as four tokens' worth of evidence."""
        # pseudo-counts of accepted tokens and of rejections (a draft that stopped short)
        self._accepted = prior * 4
        self._rejected = (1 - prior) * 4
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

    def record(self, proposed: int, accepted: int) -> None:
        """A verified (or shadow-checked) draft: `accepted` of `proposed` tokens matched."""
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

    def record_draft(self, n_tokens: int, seconds: float) -> None:
        """A proposal of `n_tokens` took `seconds` to make (a drafter that runs a model pays per token)."""
        if n_tokens > 0 and seconds > 0:
            self._draft_seconds = CostModel._ema(self._draft_seconds, seconds / n_tokens)

    def draft_cost(self) -> float:
        """Proposing one token, relative to a plain step."""
        base = self.cost.base_seconds()
        return self._draft_seconds / base if self._draft_seconds and base else 0.0

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

    def best_length(self, available: int | None = None, sustained: bool = False) -> int:
        """The k in 0..draft_max (and at most `available`) with the most tokens per unit of cost.

        A draft is priced as one among plain steps: its call changes shape and the plain step after it loses its
        graph (the switch penalty), as with lookup, which drafts only where the answer copies. A `sustained`
        drafter (a model drafter, which proposes at every step) keeps its length while acceptance holds, so its
        calls repeat one shape; it is priced at that steady cost, plus what proposing costs it, and keeps its
        length (or its pause) unless another is SWITCH_MARGIN better.
        """
        rates = self._rates(available, sustained, None)
        best = self._pick(rates)
        if not sustained:
            return best
        held = self._held
        # a paused drafter's rate is plain decoding's (1); a length that stopped paying is left at once
        if (
            held is not None and held < len(rates) and 0 < best != held and (held == 0 or rates[held] > 1.02)
            and rates[best] < rates[held] * (1 + SWITCH_MARGIN)
        ):
            best = held
        self._held = best
        return best

    def could_pay(self, available: int | None = None, sustained: bool = False) -> bool:
        """Whether some draft would pay if every token were accepted (proposals that dear are not worth a probe)."""
        return self._pick(self._rates(available, sustained, 1.0)) > 0

    def _rates(self, available: int | None, sustained: bool, acceptance: float | None) -> list[float]:
        """Tokens per unit of cost for k = 0 (plain: 1) .. the limit, at `acceptance` (None: what was learned, per
        position where kept)."""
        limit = self.draft_max if available is None else min(self.draft_max, available)
        penalty = 0.0 if sustained else self.cost.switch_penalty()
        verify = self.cost.relative_repeated if sustained else self.cost.relative
        per_token = self.draft_cost()
        return [1.0] + [self.expected_tokens(k, acceptance) / (verify(k + 1) + penalty + per_token * k)
                        for k in range(1, limit + 1)]

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
    partial = path.with_name(f"{path.name}.{os.getpid()}.part")
    data = {"key": key, "seconds": {str(n): value for n, value in sorted(seconds.items())}}
    partial.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, path)
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
