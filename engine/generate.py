"""The engine: one embedded llama.cpp model, a decode loop that verifies drafts, and state reuse.

Data flows one way: a GenerationRequest goes in, a stream of events comes out. Logits are read only for the rows a
step needs (the last prompt token, and the tokens of a draft being verified), so memory never grows with
n_ctx x n_vocab.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from . import sampling
from .backend import OneRequestAtATime
from .cache import StateCache
from .draft.adaptive import DraftController
from .draft.base import Drafter
from .draft.select import DraftChoice, choose_drafter
from .errors import ContextError
from .events import DoneEvent, Event, FinishReason, GenerationRequest, Stats, TextEvent
from .model import ModelInfo, Progress, read_model_info, resolve_model_path
from .runtime import Logits, Runtime, RuntimeConfig
from .settings import QcodeSettings
from .text_stream import TextStream


@dataclass
class _Sampling:
    temperature: float
    top_k: int
    top_p: float
    seed: int
    chain: sampling.ChainSampler | None = None
    rng: random.Random = field(default_factory=random.Random)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class _Job:
    """One request in flight: what the decode loop needs besides the engine."""

    request: GenerationRequest
    prompt: list[int]
    drafter_name: str
    drafter: Drafter | None
    max_new: int
    limited_by_context: bool
    stats: Stats
    samp: _Sampling
    cancel: threading.Event
    started: float


@dataclass
class _Shadow:
    """A draft that was not verified (drafting paused), checked against what the model really emits."""

    tokens: list[int]
    matched: int = 0


class Engine(OneRequestAtATime):
    """Loads the model once; serves one request at a time (never from two threads at once)."""

    def __init__(self, settings: QcodeSettings, progress: Progress | None = None) -> None:
        super().__init__()
        self.settings = settings
        path = resolve_model_path(settings, progress)
        self.info: ModelInfo = read_model_info(path)
        if progress:
            progress(f"loading {path.name}", 0.0)
        load_progress: Callable[[float], None] | None = (
            (lambda fraction: progress(f"loading {path.name}", fraction)) if progress else None
        )
        self.runtime = Runtime(
            path,
            RuntimeConfig.from_settings(
                settings, load_mtp=self.info.n_nextn_layers > 0 and settings.draft in ("mtp", "auto")
            ),
            load_progress,
        )
        self.cache = StateCache(self.runtime)
        self._drafters: dict[str, Drafter] = {}
        self._controllers: dict[str, DraftController] = {}
        if self.runtime.config.load_mtp:
            # from the first decode on, so the MTP head has the target's hidden rows for every cached prefix
            self._drafter(choose_drafter("mtp", self))
        if progress:
            progress(f"loaded {path.name}", 1.0)

    # --- small public helpers -----------------------------------------------------------------
    @property
    def n_ctx(self) -> int:
        return self.runtime.n_ctx

    @property
    def kv_type(self) -> str:
        k, v = self.settings.kv_type_k, self.settings.kv_type_v
        return k if k == v else f"{k}/{v}"

    def tokenize(self, text: str, *, add_bos: bool = True) -> list[int]:
        return self.runtime.tokenize(text, add_bos=add_bos and self.runtime.adds_bos)

    def count_tokens(self, text: str) -> int:
        return len(self.runtime.tokenize(text, add_bos=False))

    def fim_prompt(self, prefix: str, suffix: str) -> list[int]:
        """FIM tokens around prefix and suffix where the model has them, else the prefix alone."""
        if self.info.has_fim:
            pre, suf, mid = (self.runtime.special_token(n) for n in ("fim_pre", "fim_suf", "fim_mid"))
            if min(pre, suf, mid) >= 0:
                return [
                    *self.tokenize("", add_bos=True), pre, *self.tokenize(prefix, add_bos=False),
                    suf, *self.tokenize(suffix, add_bos=False), mid,
                ]
        return self.tokenize(prefix)

    def close(self) -> None:
        for drafter in self._drafters.values():
            closer = getattr(drafter, "close", None)
            if closer:
                closer()
        self.runtime.close()


    # --- the decode loop ------------------------------------------------------------------------

    def _stream(self, request: GenerationRequest, cancel: threading.Event) -> Iterator[Event]:
        settings = self.settings
        started = time.perf_counter()
        prompt = self._prompt_tokens(request)
        if not prompt:
            raise ContextError("the prompt is empty")
        if len(prompt) >= self.n_ctx - 1:
            raise ContextError(
                f"the prompt is {len(prompt)} tokens but the context holds {self.n_ctx}; "
                "raise --ctx or give less input"
            )
        choice = choose_drafter(request.drafter or settings.draft, self)
        drafter = self._drafter(choice)
        draft_max = settings.draft_max if drafter else 0
        room = self.n_ctx - len(prompt) - draft_max - 1
        max_new = request.max_tokens or settings.max_tokens
        limited_by_context = room < max_new
        max_new = max(1, min(max_new, room))
        stats = Stats(
            prompt_tokens=len(prompt), drafter=choice.name, kv_type=self.kv_type, model=self.info.name
        )
        samp = self._sampling(request)
        job = _Job(request, prompt, choice.name, drafter, max_new, limited_by_context, stats, samp, cancel, started)
        try:
            yield from self._run(job)
        finally:
            if samp.chain:  # also when the consumer stops reading early
                samp.chain.close()

    def _run(self, job: _Job) -> Iterator[Event]:
        request, prompt, drafter, max_new, stats, samp, cancel = (
            job.request, job.prompt, job.drafter, job.max_new, job.stats, job.samp, job.cancel
        )
        runtime, cache = self.runtime, self.cache
        draft_max = self.settings.draft_max if drafter else 0

        # 1. bring the context to the longest reusable prefix, then evaluate the rest of the prompt
        reused = cache.prepare(prompt)
        prefix_len = self._prefix_boundary(request, prompt)
        if prefix_len > reused and not cache.has_prefix(prompt[:prefix_len]):
            if not self._evaluate(prompt[reused:prefix_len], cancel, want_logits=False):
                yield self._cancelled(stats, "")
                return
            cache.save_prefix()
            reused = prefix_len
        stats.prompt_tokens_evaluated = len(prompt) - reused
        if not self._evaluate(prompt[len(cache.tokens) :], cancel, want_logits=True):
            yield self._cancelled(stats, "")
            return
        cache.checkpoint()

        # 2. generate: each step decodes the pending token plus a draft, and keeps what the target agrees with
        text = TextStream(request.stop)
        history = list(prompt)
        reference = self.tokenize(request.reference, add_bos=False) if request.reference else []
        controller = self._controllers.get(job.drafter_name) if drafter else None
        if drafter:
            drafter.begin(prompt, reference)
        shadow: _Shadow | None = None
        rows = runtime.logits(1)
        pending = self._pick(rows[0], -1, None, samp)[1]
        stats.ttft_ms = (time.perf_counter() - job.started) * 1000
        decode_started = time.perf_counter()
        emitted = 0
        finish: FinishReason | None = None
        new_tokens = [pending]
        while True:
            for token in new_tokens:
                emitted += 1
                history.append(token)
                if shadow is not None and controller is not None:
                    shadow = self._check_shadow(shadow, token, controller)
                if runtime.is_eog(token):
                    finish = "eog"
                    break
                piece = text.add(runtime.piece(token))
                if piece:
                    yield TextEvent(piece)
                if text.stopped:
                    finish = "stop"
                    break
                if emitted >= max_new:
                    finish = "context" if job.limited_by_context else "length"
                    break
            if finish is None and cancel.is_set():
                finish = "cancelled"
            if finish is not None:
                break
            pending = history[-1]
            draft: list[int] = []
            if drafter is not None and controller is not None:
                budget = min(draft_max, max_new - emitted)
                proposal = drafter.propose(history, budget) if budget > 0 else []
                k = controller.best_length(len(proposal))
                draft = proposal[:k]
                if not draft and proposal and shadow is None:
                    shadow = _Shadow(proposal)
            batch = [pending, *draft]
            position = len(cache.tokens)
            step_started = time.perf_counter()
            runtime.decode(batch, position, len(batch))
            rows = runtime.logits(len(batch))
            new_tokens = []
            accepted = 0
            for i in range(len(batch)):
                drafted = draft[i] if i < len(draft) else None
                ok, token = self._pick(rows[i], i, drafted, samp)
                new_tokens.append(token)
                if not ok:
                    break
                accepted += 1
            if controller is not None:
                controller.cost.record(len(batch), time.perf_counter() - step_started)
            self._observe(batch, accepted + 1)
            cache.extend(batch)
            if draft:
                assert drafter is not None and controller is not None
                controller.record(len(draft), accepted)
                drafter.observe(len(draft), accepted)
                stats.draft_proposed += len(draft)
                stats.draft_accepted += accepted
                stats.draft_steps += 1
                if accepted < len(draft) and not cache.rollback(position + 1 + accepted):
                    self._recompute(history + new_tokens[:-1], cancel)
        tail = text.finish()
        if tail:
            yield TextEvent(tail)
        elapsed = time.perf_counter() - decode_started
        stats.completion_tokens = emitted
        stats.decode_s = elapsed
        # the first token came with the prompt; decode speed counts the ones after it
        stats.decode_tokens_per_s = (emitted - 1) / elapsed if emitted > 1 and elapsed > 0 else 0.0
        stats.finish_reason = finish
        yield DoneEvent(text.text, stats, tuple(history[len(prompt) :]))

    # --- pieces of the loop -----------------------------------------------------------------------
    def _prompt_tokens(self, request: GenerationRequest) -> list[int]:
        if isinstance(request.prompt, str):
            return self.tokenize(request.prompt)
        return list(request.prompt)

    def _prefix_boundary(self, request: GenerationRequest, prompt: Sequence[int]) -> int:
        """Tokens of the request's reusable prefix, if it tokenizes as a prefix of the prompt."""
        if not isinstance(request.prompt, str) or request.prefix_chars <= 0:
            return 0
        prefix = self.tokenize(request.prompt[: request.prefix_chars])
        if len(prefix) >= len(prompt) or list(prompt[: len(prefix)]) != prefix:
            return 0
        return len(prefix)

    def _evaluate(self, tokens: Sequence[int], cancel: threading.Event, want_logits: bool) -> bool:
        """Evaluate tokens in batches; False if cancelled. Logits only for the very last token."""
        if want_logits and self.cache.recurrent and len(tokens) > 1:
            # a checkpoint just before the last prompt token lets the very same prompt come back for free
            if not self._evaluate(tokens[:-1], cancel, want_logits=False):
                return False
            self.cache.checkpoint()
            tokens = tokens[-1:]
        step = self.runtime.batch_capacity
        for start in range(0, len(tokens), step):
            if cancel.is_set():
                return False
            chunk = tokens[start : start + step]
            last = start + step >= len(tokens)
            self.runtime.decode(chunk, len(self.cache.tokens), 1 if (last and want_logits) else 0)
            self._observe(chunk, len(chunk))
            self.cache.extend(chunk)
            if not last:
                self.cache.checkpoint()
        return True

    def _observe(self, tokens: Sequence[int], kept: int) -> None:
        """Drafters that follow the target's hidden states (MTP) see every decode call, whichever drafter runs."""
        for drafter in self._drafters.values():
            hook = getattr(drafter, "after_decode", None)
            if hook is not None:
                hook(self.cache.tokens, tokens, kept)

    def _recompute(self, tokens: Sequence[int], cancel: threading.Event) -> None:
        """Rebuild the state from scratch: the fallback when recurrent memory could not roll back."""
        self.cache.reset()
        self._evaluate(tokens, cancel, want_logits=False)

    def _sampling(self, request: GenerationRequest) -> _Sampling:
        s = self.settings
        temperature = s.temperature if request.temperature is None else request.temperature
        seed = s.seed if request.seed is None else request.seed
        if seed < 0:
            seed = random.randrange(2**31)
        samp = _Sampling(
            temperature=temperature,
            top_k=s.top_k if request.top_k is None else request.top_k,
            top_p=s.top_p if request.top_p is None else request.top_p,
            seed=seed,
            rng=random.Random(seed),
        )
        if not samp.greedy:
            samp.chain = sampling.ChainSampler(samp.temperature, samp.top_k, samp.top_p, seed)
        return samp

    def _pick(
        self, row: Logits, index: int, drafted: int | None, samp: _Sampling
    ) -> tuple[bool, int]:
        """The target's token at one verified position, and whether it keeps the draft going."""
        if samp.greedy:
            token = sampling.greedy(row)
            return drafted is not None and token == drafted, token
        if drafted is None:
            assert samp.chain is not None
            return False, samp.chain.sample(self.runtime, index)
        return sampling.speculative_accept(
            row, drafted, samp.temperature, samp.top_k, samp.top_p, samp.rng
        )

    def _check_shadow(
        self, shadow: _Shadow, token: int, controller: DraftController
    ) -> _Shadow | None:
        if shadow.tokens[shadow.matched] == token:
            shadow.matched += 1
            if shadow.matched < len(shadow.tokens):
                return shadow
        controller.record(len(shadow.tokens), shadow.matched)
        return None

    def _drafter(self, choice: DraftChoice) -> Drafter | None:
        if choice.factory is None:
            return None
        drafter = self._drafters.get(choice.name)
        if drafter is None:
            drafter = self._drafters[choice.name] = choice.factory()
            self._controllers[choice.name] = DraftController(self.settings.draft_max)
        return drafter

    def _cancelled(self, stats: Stats, text: str) -> DoneEvent:
        stats.finish_reason = "cancelled"
        return DoneEvent(text, stats)
