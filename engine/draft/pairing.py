"""Whether a draft model can pay for itself next to its target on this machine, decided before it costs anything.

A draft model adds one decode call of its own per drafted token to the target's verify call. On a GPU a small draft
model's step is a small fraction of a large target's and a verify of a few tokens costs little more than one step,
so the pair pays on prose. On a 2-core CPU a 0.5B model's step is about two thirds of a 1.5B's and each verified
token adds a good part of a step, so it cannot, however well it drafts. Where it cannot pay, even loading it
(hundreds of MB) and evaluating every prompt in it (seconds on a CPU) are pure loss.

So `auto` takes a draft model only if drafting would pay at a generous acceptance (PAIR_ACCEPTANCE): both models'
step costs (the draft model's one-token call; the target's verify calls of 1..PAIR_SIZES tokens, repeated shapes as a
draft model makes them) are measured once per machine, model pair and settings, and cached; the decision is made from
the cached seconds. Where it is taken, its controller prices every proposal and pauses it when it does not pay.
"""

from __future__ import annotations

import contextlib
import statistics
import textwrap
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from ..model import Progress
from ..runtime import Runtime, RuntimeConfig, device_description
from .adaptive import CostModel, DraftController, calibration_key, load_calibration, save_calibration
from .base import DraftHost


class PairHost(DraftHost, Protocol):
    """What the pairing decision uses of the engine: a drafter's view, its verify costs and its longest draft."""

    @property
    def draft_max(self) -> int: ...

    def calibrate_costs(
        self, progress: Progress | None = None, *, sizes: Iterable[int] | None = None
    ) -> dict[int, float]: ...

# A generous per-token acceptance for a draft model of the target's own family on prose (a same-family 0.5B under a
# 1.5B): a pair that would not pay even at this rate is never loaded.
PAIR_ACCEPTANCE = 0.85
# Target verify sizes measured: a draft model's useful drafts are short (its confidence fades).
PAIR_SIZES = 6
DRAFT_KEY = 1_000_000  # where the draft model's one-token step is kept among the cached seconds
PAIR_FORMAT = "pair-2"  # 2: the fastest of PAIR_ROUNDS rounds (pair-1 entries were single, load-prone rounds)


def file_id(path: Path) -> object:
    try:
        stat = path.stat()
        return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError:
        return (str(path), "?")


def pair_key(engine: PairHost, draft: Path) -> str:
    config = engine.runtime.config
    return calibration_key(
        PAIR_FORMAT, device_description(), file_id(engine.info.path), file_id(draft), config.kv_type_k,
        config.kv_type_v, config.flash_attn, config.gpu_layers, config.threads, config.exact_batches,
    )


def draft_step_seconds(engine: PairHost, draft: Path, calls: int = 8) -> float:
    """Median seconds of the draft model's one-token call (logits and argmax), on a small scratch context."""
    from .. import sampling

    settings = engine.settings
    config = RuntimeConfig(
        n_ctx=512, n_batch=64, kv_type_k=settings.kv_type_k, kv_type_v=settings.kv_type_v,
        flash_attn=settings.flash_attn, gpu_layers=settings.gpu_layers, threads=settings.threads,
        exact_batches=settings.exact_batches,
    )
    runtime = Runtime(draft, config)
    try:
        filler = runtime.tokenize(textwrap.dedent("def f(x):\n    return x + 1\n") * 8, add_bos=False)[:48]
        runtime.decode(filler, 0, 1)
        position, times = len(filler), []
        for i in range(calls + 2):
            started = time.perf_counter()
            runtime.decode([filler[i % len(filler)]], position, 1)
            sampling.greedy(runtime.logits(1)[0])
            times.append(time.perf_counter() - started)
            position += 1
        return statistics.median(times[2:])  # the first calls warm caches
    finally:
        runtime.close()


# Rounds of the pair's measurement (target, then draft model, in turn); each time kept is the fastest seen.
PAIR_ROUNDS = 2


def fastest(rounds: Iterable[Mapping[int, float]]) -> dict[int, float]:
    """Each key's fastest time over measurement rounds: other work on the machine only ever slows a call down, and
    the decision is cached for good (a target step once timed at 135 ms beside a 20 ms draft step, under load, made
    `auto` take a draft model that cannot pay on that machine)."""
    out: dict[int, float] = {}
    for seconds in rounds:
        for key, value in seconds.items():
            out[key] = min(value, out.get(key, value))
    return out


def measure_pair(engine: PairHost, draft: Path, progress: Progress | None = None) -> dict[int, float]:
    """The target's verify costs for 1..PAIR_SIZES tokens and the draft model's step (under DRAFT_KEY), the fastest
    of PAIR_ROUNDS interleaved rounds."""
    rounds = []
    for done in range(PAIR_ROUNDS):
        seconds = engine.calibrate_costs(progress, sizes=range(1, PAIR_SIZES + 1))
        if progress:
            progress(f"timing the draft model {draft.name}", (done + 1) / PAIR_ROUNDS)
        seconds[DRAFT_KEY] = draft_step_seconds(engine, draft)
        rounds.append(seconds)
    return fastest(rounds)


def pays(seconds: Mapping[int, float], draft_max: int, acceptance: float = PAIR_ACCEPTANCE) -> bool:
    """Whether drafting with the pair beats plain decoding at `acceptance`, priced as the engine prices it."""
    draft_step = seconds.get(DRAFT_KEY)
    if not draft_step:
        return False
    cost = CostModel(price_switches=True)
    cost.seed({n: s for n, s in seconds.items() if n != DRAFT_KEY})
    controller = DraftController(min(draft_max, PAIR_SIZES - 1), cost, prior=acceptance)
    controller.record_draft(1, draft_step)
    return controller.best_length(sustained=True) > 0


def draft_model_pays(engine: PairHost, draft: Path, progress: Progress | None = None) -> bool:
    """Whether `auto` should draft with `draft` next to this engine's model: from cached measurements, measured
    once (a few seconds; `progress` hears of it) where there are none."""
    key = pair_key(engine, draft)
    seconds = load_calibration(key)
    if seconds is None or DRAFT_KEY not in seconds:
        seconds = measure_pair(engine, draft, progress)
        with contextlib.suppress(OSError):  # an unwritable cache costs a measurement per start, nothing else
            save_calibration(key, seconds)
    return pays(seconds, engine.draft_max)

