"""Choose the draft length that maximises expected tokens per unit of measured decode cost.

Acceptance is modelled as geometric: each drafted token is accepted with probability `a` given the ones before it
were, so a draft of k yields (1 - a^(k+1)) / (1 - a) tokens (the target's own next token included). The cost of
verifying k drafts is the measured time of a decode call of k+1 tokens, relative to one token, learned online from
real decode timings (a CPU and a GPU have very different curves). Drafting pauses when no k beats plain decoding.
"""

from __future__ import annotations

# Verify cost of n tokens relative to one before anything is measured: a guess between a CPU (~0.45 per extra token)
# and a GPU (~0.1); real timings replace it within a few steps.
PRIOR_SLOPE = 0.3
_EMA = 0.2


class CostModel:
    """Relative cost c(n) of one decode call over n tokens (c(1) = 1), learned from timings."""

    def __init__(self, n_max: int, prior_slope: float = PRIOR_SLOPE) -> None:
        self.n_max = n_max
        self.prior_slope = prior_slope
        self._seconds: dict[int, float] = {}

    def record(self, n_tokens: int, seconds: float) -> None:
        if n_tokens < 1 or seconds <= 0:
            return
        old = self._seconds.get(n_tokens)
        self._seconds[n_tokens] = seconds if old is None else old + _EMA * (seconds - old)

    def relative(self, n_tokens: int) -> float:
        base = self._seconds.get(1)
        if base is None or n_tokens == 1:
            return 1.0 + self.prior_slope * (n_tokens - 1)
        known = self._seconds.get(n_tokens)
        if known is not None:
            return max(known / base, 1.0)
        lower = max((n for n in self._seconds if n < n_tokens), default=1)
        upper = min((n for n in self._seconds if n > n_tokens), default=None)
        low = self._seconds[lower] / base
        if upper is None:
            return max(low + self.prior_slope * (n_tokens - lower), 1.0)
        high = self._seconds[upper] / base
        share = (n_tokens - lower) / (upper - lower)
        return max(low + share * (high - low), 1.0)


class DraftController:
    """Tracks acceptance and picks how many tokens to draft next (0 = decode plainly)."""

    def __init__(self, draft_max: int, cost: CostModel | None = None, prior: float = 0.5) -> None:
        self.draft_max = draft_max
        self.cost = cost or CostModel(draft_max + 1)
        # pseudo-counts of accepted tokens and of rejections (a draft that stopped short)
        self._accepted = prior * 4
        self._rejected = (1 - prior) * 4

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

    def expected_tokens(self, k: int) -> float:
        a = min(self.acceptance, 0.999)
        return (1 - a ** (k + 1)) / (1 - a)

    def best_length(self, available: int | None = None) -> int:
        """The k in 0..draft_max (and at most `available`) with the most tokens per unit of cost."""
        limit = self.draft_max if available is None else min(self.draft_max, available)
        best_k, best_rate = 0, 0.0
        for k in range(1, limit + 1):
            rate = self.expected_tokens(k) / self.cost.relative(k + 1)
            if rate > best_rate:
                best_k, best_rate = k, rate
        # plain decoding yields 1 token per unit; a margin keeps noise from buying drafts that do not pay
        return best_k if best_rate > 1.02 else 0
