"""Reuse evaluated state across requests, so a repeated prefix is never computed twice.

Attention memory (sliding-window too: qcode keeps a full-size SWA cache) can simply be truncated to the longest common
prefix. Recurrent state cannot be cut back, so for hybrid models (Qwen3.6: Gated DeltaNet + attention) qcode keeps
checkpoints of the recurrent part at known positions and restores the nearest one at or before the common prefix;
the attention part is truncated as usual. Task prefixes (the system prompt of each task) are kept as full snapshots,
so switching between tasks restores a prefix instead of recomputing it.

A checkpoint is a copy of the whole recurrent state (hundreds of megabytes for a 27B hybrid model), so checkpoints
are paced by measured cost: one is taken only when the evaluation it would save took a few times longer than a copy.
Checkpointing after every prompt batch halved a 27B's prompt speed (bench/gpu/RESULTS.md, "The engine").
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from .runtime import Runtime

# Recurrent checkpoints kept along the current sequence, and task prefix snapshots kept in all.
MAX_CHECKPOINTS = 4
MAX_PREFIX_SNAPSHOTS = 8
# A checkpoint is taken once the evaluation it would save took this many times a checkpoint's copy.
CHECKPOINT_PAYBACK = 4.0
# A snapshot is restored in place of the context only when it saves evaluating at least this many more tokens (a
# restore copies the whole snapshot back: a few tokens' evaluation at most).
SNAPSHOT_MIN_GAIN = 16
_COPY_EMA = 0.5


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    # compare in slices first: far faster than token by token in Python for long prompts
    step = 256
    while i + step <= n and a[i : i + step] == b[i : i + step]:
        i += step
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass
class _Checkpoint:
    length: int  # tokens evaluated when it was taken
    data: bytearray


class CheckpointPacer:
    """Decides when a recurrent checkpoint is worth its copy, from measured copy and evaluation times.

    The first checkpoint is always taken: it measures the copy. After that, one is due when the evaluation since the
    last restorable point (a checkpoint, a snapshot, a cleared context) took CHECKPOINT_PAYBACK times a copy, so
    checkpoints never cost more than 1/CHECKPOINT_PAYBACK of prompt time, and always save more than they cost.
    """

    def __init__(self, payback: float = CHECKPOINT_PAYBACK) -> None:
        self.payback = payback
        self.copy_seconds: float | None = None
        self.unsaved_seconds = 0.0  # evaluation since the last restorable point

    def evaluated(self, seconds: float) -> None:
        self.unsaved_seconds += max(seconds, 0.0)

    def due(self) -> bool:
        return self.copy_seconds is None or self.unsaved_seconds >= self.payback * self.copy_seconds

    def copied(self, seconds: float) -> None:
        old = self.copy_seconds
        self.copy_seconds = seconds if old is None else old + _COPY_EMA * (seconds - old)
        self.unsaved_seconds = 0.0

    def restored(self) -> None:
        self.unsaved_seconds = 0.0


class StateCache:
    """Knows which tokens the context holds, and brings it to the longest reusable prefix."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.tokens: list[int] = []  # what sequence 0 holds, position by position
        self.recurrent = runtime.keeps_recurrent_state
        self._checkpoints: list[_Checkpoint] = []
        self._last_batch_start = 0  # recurrent rollback snapshots exist only inside the last decode call
        self._prefixes: OrderedDict[tuple[int, ...], bytearray] = OrderedDict()
        self.pacer = CheckpointPacer()

    def reset(self, *, forget_snapshots: bool = False) -> None:
        """An empty context; `forget_snapshots` also drops the kept prefixes (a truly cold start)."""
        if forget_snapshots:
            self._prefixes.clear()
        self.runtime.clear()
        self.tokens = []
        self._last_batch_start = 0
        self._checkpoints = []
        self.pacer.restored()

    def prepare(self, prompt: Sequence[int]) -> int:
        """Bring the context to the longest usable prefix of `prompt`; return its length.

        At least one prompt token is always left to evaluate, since its logits start the answer.
        """
        limit = len(prompt) - 1
        shared = min(common_prefix(self.tokens, prompt), limit)

        if not self.recurrent:
            # attention memory can be cut back anywhere: a snapshot that shares more of the prompt than the context
            # does is restored and cut to what it shares (a completion's context after a request of another kind)
            key, reusable = self._closest_snapshot(prompt, limit)
            if key is not None and reusable > shared + SNAPSHOT_MIN_GAIN:
                return self._truncate(min(self._restore_snapshot(key), reusable))
            return self._truncate(shared)

        snapshot_key = self._best_snapshot(prompt, limit)
        snapshot_len = len(snapshot_key) if snapshot_key else 0

        if shared == len(self.tokens):  # the context holds a prefix of the prompt: keep going
            if snapshot_key is not None and snapshot_len > shared:
                return self._restore_snapshot(snapshot_key)
            return shared
        checkpoint = max(
            (c for c in self._checkpoints if c.length <= shared), key=lambda c: c.length, default=None
        )
        best_checkpoint = checkpoint.length if checkpoint else 0
        if snapshot_key is not None and snapshot_len >= best_checkpoint and snapshot_len > 0:
            return self._restore_snapshot(snapshot_key)
        if checkpoint is not None and self.runtime.load_state(checkpoint.data, partial=True):
            self.runtime.remove_from(checkpoint.length)
            self.tokens = self.tokens[: checkpoint.length]
            self._last_batch_start = checkpoint.length
            self._checkpoints = [c for c in self._checkpoints if c.length <= checkpoint.length]
            self.pacer.restored()
            return checkpoint.length
        self.reset()
        return 0

    def _truncate(self, length: int) -> int:
        if length < len(self.tokens):
            if not self.runtime.remove_from(length):
                self.reset()
                return 0
            self.tokens = self.tokens[:length]
            self._last_batch_start = length
        return length

    def _closest_snapshot(self, prompt: Sequence[int], limit: int) -> tuple[tuple[int, ...] | None, int]:
        """The snapshot sharing the longest prefix with the prompt, and how many of the prompt's tokens it holds."""
        best: tuple[int, ...] | None = None
        best_shared = 0
        for key in self._prefixes:
            shared = min(common_prefix(key, prompt), limit)
            if shared > best_shared:
                best, best_shared = key, shared
        return best, best_shared

    def _best_snapshot(self, prompt: Sequence[int], limit: int) -> tuple[int, ...] | None:
        best: tuple[int, ...] | None = None
        for key in self._prefixes:
            longer = best is None or len(key) > len(best)
            if len(key) <= limit and longer and tuple(prompt[: len(key)]) == key:
                best = key
        return best

    def _restore_snapshot(self, key: tuple[int, ...]) -> int:
        self.runtime.clear()
        if not self.runtime.load_state(self._prefixes[key], partial=False):
            self.reset()
            return 0
        self._prefixes.move_to_end(key)
        self.tokens = list(key)
        self._last_batch_start = len(key)
        self._checkpoints = []
        self.pacer.restored()
        return len(key)

    # --- bookkeeping called by the decode loop ----------------------------------------------------
    def extend(self, tokens: Sequence[int]) -> None:
        """Record one decode call's tokens."""
        self._last_batch_start = len(self.tokens)
        self.tokens.extend(tokens)

    def rollback(self, length: int) -> bool:
        """Forget everything after `length` tokens (a rejected draft). False if the memory refused."""
        if length >= len(self.tokens):
            return True
        if self.recurrent and length <= self._last_batch_start:
            # llama.cpp would accept it but leave a wrong state: its snapshots cover only the last call's tokens
            return False
        if not self.runtime.remove_from(length):
            return False
        del self.tokens[length:]
        self._last_batch_start = length  # a pending rollback is single-use
        return True

    def has_prefix(self, prefix: Sequence[int]) -> bool:
        return tuple(prefix) in self._prefixes

    def save_prefix(self) -> None:
        """Keep a snapshot of the whole current state as a reusable task prefix."""
        key = tuple(self.tokens)
        if not key or key in self._prefixes:
            return
        self._prefixes[key] = self.runtime.save_state(partial=False)
        while len(self._prefixes) > MAX_PREFIX_SNAPSHOTS:
            self._prefixes.popitem(last=False)

    def checkpoint(self) -> bool:
        """Keep the recurrent state at the current length, for a later request that diverges here.

        Only when the pacer says the copy pays for itself. True if a checkpoint now exists here.
        """
        if not self.recurrent or not self.tokens:
            return False
        if any(c.length == len(self.tokens) for c in self._checkpoints):
            return True
        if not self.pacer.due():
            return False
        started = time.perf_counter()
        data = self.runtime.save_state(partial=True)
        self.pacer.copied(time.perf_counter() - started)
        self._checkpoints.append(_Checkpoint(len(self.tokens), data))
        if len(self._checkpoints) > MAX_CHECKPOINTS:
            # keep the earliest (most widely shared) and the most recent ones
            del self._checkpoints[1]
        return True

    @property
    def checkpoint_lengths(self) -> list[int]:
        return [c.length for c in self._checkpoints]
