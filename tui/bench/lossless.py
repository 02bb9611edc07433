"""Check that drafting is lossless, against the measured batch-versus-step noise of the running build.

llama.cpp may compute a token's logits slightly differently when it is decoded in a batch (as a draft is verified)
than alone (as in a plain run): on the default Gemma model the matmul kernels change with the batch size. So a greedy
drafted run may part from a plain run only where the plain run's top two logits are closer than that noise; a
divergence at a wider gap is a bug. Used by the tests and by `qcode bench`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.generate import Engine


@dataclass(frozen=True)
class Divergence:
    position: int  # index into the answer's tokens
    plain_token: int
    drafted_token: int
    plain_gap: float  # plain run's logit gap between its choice and the drafted run's choice


def measure_gap_noise(engine: Engine, prompt: Sequence[int], tokens: Sequence[int]) -> float:
    """How much a batch of `tokens` after `prompt` can move the difference between two logits, versus decoding
    them one at a time: max over positions of (max - min) of (batch - step) logits."""
    runtime, cache = engine.runtime, engine.cache
    cache.reset()
    engine.evaluate(prompt)
    base = len(cache.tokens)
    runtime.decode(list(tokens), base, len(tokens))
    batch = runtime.logits(len(tokens)).copy()
    # start again from the prompt (recurrent state cannot roll back a whole decode call)
    cache.reset()
    engine.evaluate(prompt)
    worst = 0.0
    for i, token in enumerate(tokens):
        runtime.decode([token], base + i, 1)
        cache.extend([token])
        delta = batch[i] - runtime.logits(1)[0]
        worst = max(worst, float(delta.max() - delta.min()))
    cache.reset()
    return worst


def first_divergence(
    engine: Engine, prompt: Sequence[int], plain: Sequence[int], drafted: Sequence[int]
) -> Divergence | None:
    """Where two greedy answers to `prompt` first differ, and the plain run's logit gap there (replayed the way the
    plain run computed it: the prompt in batches, then one token at a time)."""
    position = next((i for i, (a, b) in enumerate(zip(plain, drafted, strict=False)) if a != b), None)
    if position is None:
        return None
    runtime, cache = engine.runtime, engine.cache
    cache.reset()
    engine.evaluate(prompt, want_logits=True)
    row = runtime.logits(1)[0]
    for token in plain[:position]:
        runtime.decode([token], len(cache.tokens), 1)
        cache.extend([token])
        row = runtime.logits(1)[0]
    gap = float(row[plain[position]] - row[drafted[position]])
    cache.reset()
    return Divergence(position, plain[position], drafted[position], gap)


def top2_gap(row: np.ndarray) -> float:
    top = np.partition(row, -2)[-2:]
    return float(top[1] - top[0])
