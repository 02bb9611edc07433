"""Choosing tokens from logits: greedy, llama.cpp's sampler chain, and the speculative accept rule."""

from __future__ import annotations

import ctypes
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import llama_cpp
import numpy as np
import numpy.typing as npt

from .runtime import Logits, Runtime


def greedy(row: Logits) -> int:
    return int(row.argmax())


class ChainSampler:
    """llama.cpp's sampler chain (top-k, top-p, temperature, seeded draw) for plain sampling."""

    def __init__(self, runtime: Runtime, temperature: float, top_k: int, top_p: float, seed: int) -> None:
        self._runtime = runtime
        params = llama_cpp.llama_sampler_chain_default_params()
        params.no_perf = True
        self._chain = llama_cpp.llama_sampler_chain_init(params)
        if top_k > 0:
            llama_cpp.llama_sampler_chain_add(self._chain, llama_cpp.llama_sampler_init_top_k(top_k))
        if top_p < 1.0:
            llama_cpp.llama_sampler_chain_add(self._chain, llama_cpp.llama_sampler_init_top_p(top_p, 1))
        llama_cpp.llama_sampler_chain_add(self._chain, llama_cpp.llama_sampler_init_temp(temperature))
        llama_cpp.llama_sampler_chain_add(
            self._chain, llama_cpp.llama_sampler_init_dist(ctypes.c_uint32(seed).value)
        )

    def sample(self, output_index: int) -> int:
        """A token drawn from the logits row `output_index` of the runtime's last decode call."""
        token = int(llama_cpp.llama_sampler_sample(self._chain, self._runtime.ctx, output_index))
        llama_cpp.llama_sampler_accept(self._chain, token)
        return token

    def close(self) -> None:
        if self._chain:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None


@dataclass
class Sampling:
    """One request's sampling: its settings, and the state a seeded draw carries from token to token."""

    temperature: float
    top_k: int
    top_p: float
    seed: int
    chain: ChainSampler | None = None  # plain sampling (not greedy): llama.cpp's chain on the target's context
    rng: random.Random = field(default_factory=random.Random)  # the accept rule's draws

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def close(self) -> None:
        if self.chain:
            self.chain.close()


# (logits row, its index in the decode call, the drafted token there or None, the request's sampling)
# -> (whether the draft goes on, the token emitted)
TokenChooser = Callable[[Logits, int, int | None, Sampling], tuple[bool, int]]


def choose_token(row: Logits, index: int, drafted: int | None, samp: Sampling) -> tuple[bool, int]:
    """The target's token at one verified position, and whether it keeps the draft going: the engine's rule (a
    benchmark may give the engine another TokenChooser, e.g. one replaying recorded answers)."""
    if samp.greedy:
        token = greedy(row)
        return drafted is not None and token == drafted, token
    if drafted is None:
        assert samp.chain is not None
        return False, samp.chain.sample(index)
    return speculative_accept(row, drafted, samp.temperature, samp.top_k, samp.top_p, samp.rng)


def target_distribution(
    row: Logits, temperature: float, top_k: int, top_p: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The distribution the chain above samples from, as (token ids, probabilities).

    Same order as the chain: top-k on the logits, top-p on their softmax, then temperature.
    """
    n = row.shape[0]
    k = top_k if 0 < top_k < n else n
    ids = np.argpartition(row, -k)[-k:] if k < n else np.arange(n)
    values = row[ids].astype(np.float64)
    order = np.argsort(-values, kind="stable")
    ids, values = ids[order], values[order]
    if top_p < 1.0:
        probs = np.exp(values - values[0])
        probs /= probs.sum()
        keep = int(np.searchsorted(np.cumsum(probs), top_p) + 1)
        ids, values = ids[:keep], values[:keep]
    scaled = (values - values[0]) / max(temperature, 1e-6)
    probs = np.exp(scaled)
    probs /= probs.sum()
    return ids, probs


def speculative_accept(
    row: Logits,
    draft_token: int,
    temperature: float,
    top_k: int,
    top_p: float,
    rng: random.Random,
) -> tuple[bool, int]:
    """Standard speculative sampling for a deterministic draft (probability 1 on `draft_token`).

    Accept it with the target's probability p(draft); otherwise draw from p with the draft removed. The emitted
    token is then distributed exactly as p, whatever the draft was.
    """
    ids, probs = target_distribution(row, temperature, top_k, top_p)
    where = np.nonzero(ids == draft_token)[0]
    p_draft = float(probs[where[0]]) if where.size else 0.0
    if p_draft > 0 and rng.random() < p_draft:
        return True, draft_token
    if where.size:
        probs = probs.copy()
        probs[where[0]] = 0.0
        total = probs.sum()
        if total <= 0:
            return True, draft_token
        probs /= total
    choice = int(np.searchsorted(np.cumsum(probs), rng.random(), side="right"))
    return False, int(ids[min(choice, len(ids) - 1)])
