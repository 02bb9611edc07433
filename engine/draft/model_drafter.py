"""A small draft model with the target's vocabulary proposes tokens by greedy decoding on its own context."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..cache import StateCache
from ..errors import ModelError
from ..runtime import Runtime, RuntimeConfig
from .base import Drafter, DraftHost

# Stop drafting once the draft model itself is unsure: its guesses past that point are rarely accepted.
MIN_CONFIDENCE = 0.4


class ModelDrafter(Drafter):
    name = "model"

    def __init__(self, path: Path, host: DraftHost) -> None:
        self.runtime = Runtime(path, RuntimeConfig.from_settings(host.settings))
        if self.runtime.n_vocab != host.runtime.n_vocab:
            vocab = self.runtime.n_vocab
            self.runtime.close()
            raise ModelError(
                f"draft model {path.name} has a vocabulary of {vocab} tokens; "
                f"the target has {host.runtime.n_vocab}: they must match"
            )
        self.cache = StateCache(self.runtime)

    def propose(self, history: Sequence[int], limit: int) -> list[int]:
        if limit <= 0 or len(history) + limit >= self.runtime.n_ctx:
            return []
        done = self.cache.prepare(history)
        step = self.runtime.batch_capacity
        for start in range(done, len(history), step):
            chunk = history[start : start + step]
            self.runtime.decode(chunk, start, 1 if start + step >= len(history) else 0)
            self.cache.extend(chunk)
        draft: list[int] = []
        while True:
            row = self.runtime.logits(1)[0]
            token = int(row.argmax())
            top = float(row[token])
            confidence = 1.0 / float(np.exp(row - top).sum())
            if confidence < MIN_CONFIDENCE and draft:
                break
            draft.append(token)
            if len(draft) >= limit:
                break
            self.runtime.decode([token], len(self.cache.tokens), 1)
            self.cache.extend([token])
        return draft

    def close(self) -> None:
        self.runtime.close()
