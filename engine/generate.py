"""The engine: one embedded llama.cpp model, a decode loop that verifies drafts, and state reuse.

Data flows one way: a GenerationRequest goes in, a stream of events comes out. Logits are read only for the rows a
step needs (the last prompt token, and the tokens of a draft being verified), so memory never grows with
n_ctx x n_vocab.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass

from . import llama_log, sampling
from .backend import OneRequestAtATime
from .cache import StateCache
from .draft.adaptive import (
    CPU_VERIFY_BLOCK,
    CostModel,
    DraftController,
    calibrate,
    calibration_key,
    load_calibration,
    repeated_key,
    save_calibration,
)
from .draft.base import Drafter
from .draft.pairing import draft_model_pays
from .draft.plan import DraftPlan, DraftSource, Proposal, Shadow
from .draft.select import SourceSpec, choose_drafter
from .draft.slots import SLOT_FLOOR, SLOT_STEPS, choose_slots, slots_key
from .errors import ContextError
from .events import ChatTurn, DoneEvent, Event, FinishReason, GenerationRequest, ProgressEvent, Stats, TextEvent
from .fim import FimParts, Marker, layout
from .model import ModelInfo, Progress, draft_model_for, read_model_info, resolve_model, resolve_model_path
from .prompts import render_turn
from .repetition import RepetitionGuard
from .runtime import Runtime, RuntimeConfig, device_description
from .settings import QcodeSettings
from .text_stream import TextStream

# Part of every calibration's cache key: a change in what calibrate_costs measures retires the curves saved before it.
CALIBRATION_FORMAT = "costs-2 (changing and repeated shapes)"
DECODE_PROGRESS_EVERY = 16  # answer tokens between two decode ProgressEvents


@dataclass
class _Job:
    """One request in flight: what the decode loop needs besides the engine."""

    request: GenerationRequest
    prompt: list[int]
    prefix_len: int  # the prompt's reusable prefix (a chat turn's system part), in tokens
    stop: tuple[str, ...]  # the request's stops and its prompt format's
    plan: DraftPlan | None
    draft_max: int
    max_new: int
    limited_by_context: bool
    stats: Stats
    samp: sampling.Sampling
    cancel: threading.Event
    started: float


@dataclass
class _PromptProgress:
    """Counts the prompt tokens one request evaluates, for its ProgressEvents."""

    total: int
    started: float
    done: int = 0

    def event(self, count: int = 0) -> ProgressEvent:
        self.done += count
        return ProgressEvent("prompt", self.done, self.total, time.perf_counter() - self.started)


class Engine(OneRequestAtATime):
    """Loads the model once; serves one request at a time (never from two threads at once).

    `choose_token` decides each emitted token and whether a draft goes on (default: sampling.choose_token, the
    target's own rule); `is_end` says which tokens end an answer (default: the model's end-of-generation tokens).
    Benchmarks replaying recorded answers, or timing random weights that may end at any step, pass their own.
    """

    def __init__(
        self,
        settings: QcodeSettings,
        progress: Progress | None = None,
        *,
        choose_token: sampling.TokenChooser = sampling.choose_token,
        is_end: Callable[[int], bool] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.choose_token = choose_token
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
        self.is_end = is_end or self.runtime.is_eog
        self.cache = StateCache(self.runtime)
        # drafters and controllers by source name; plans by what a request asks for (none, ngram, auto, ...)
        self._drafters: dict[str, Drafter] = {}
        self._controllers: dict[str, DraftController] = {}
        self._plans: dict[str, DraftPlan] = {}
        # the verify cost c(n) is the target's, whichever drafter proposes: one curve for every controller
        # priced switches: on a GPU the plain step after a draft loses its CUDA graph (bench/gpu/SIMULATION.md)
        self.costs = CostModel(price_switches=True)
        # the rollback-slot choice (engine/draft/slots.py): its cache key, and the plain-step seconds by slot count
        # it was made from (none: the slots the settings give)
        self.slots_key: str | None = None
        self.slot_steps: dict[int, float] = {}
        # where no calibration gives the curve (a CPU, which learns it online), what this process learned is kept
        # under this key for the next one: each `qcode` command is a new process
        self.learned_key: str | None = None
        try:
            # the MTP head's context logs through a ctypes callback too: Ctrl+C there must not be dropped
            with llama_log.deferred_interrupts():
                if self.can_draft and settings.draft != "none":
                    self._choose_slots(progress)
                    self._seed_costs(progress)
                if self.can_draft and settings.draft == "auto":
                    self.settings = self._auto_draft_model(progress)
                if self.runtime.config.load_mtp:
                    # from the first decode on, so the MTP head has the target's hidden rows for every cached prefix
                    self.draft_plan("mtp")
            llama_log.raise_if_interrupted()
        except BaseException:
            self.close()
            raise
        if progress:
            progress(f"loaded {path.name}", 1.0)

    def _auto_draft_model(self, progress: Progress | None = None) -> QcodeSettings:
        """`auto` keeps a draft model (the configured one, else the packaged target's pair) only where it could pay
        on this machine (engine.draft.pairing); the settings requests run with."""
        settings = self.settings
        candidate = (
            resolve_model(settings.draft_model, setting="draft_model") if settings.draft_model
            else draft_model_for(self.info.path)
        )
        keep = candidate is not None and draft_model_pays(self, candidate, progress)
        return settings.model_copy(update={"draft_model": str(candidate) if keep and candidate else None})

    # --- small public helpers -----------------------------------------------------------------
    @property
    def n_ctx(self) -> int:
        return self.runtime.n_ctx

    @property
    def can_draft(self) -> bool:
        """Drafts need their rejected tokens rolled back: recurrent memory only can with rollback slots."""
        return not self.runtime.keeps_recurrent_state or self.runtime.rollback_slots > 1

    @property
    def draft_max(self) -> int:
        limit = self.settings.draft_max
        if self.runtime.keeps_recurrent_state:
            limit = min(limit, self.runtime.rollback_slots - 1)
        return max(limit, 0)

    @property
    def kv_type(self) -> str:
        k, v = self.settings.kv_type_k, self.settings.kv_type_v
        return k if k == v else f"{k}/{v}"

    def tokenize(self, text: str, *, add_bos: bool = True) -> list[int]:
        return self.runtime.tokenize(text, add_bos=add_bos and self.runtime.adds_bos)

    def count_tokens(self, text: str) -> int:
        return len(self.runtime.tokenize(text, add_bos=False))

    def fim_prompt(self, parts: FimParts) -> list[int]:
        """A completion prompt in tokens: markers as the model's own special tokens, found by name in its vocabulary.

        Text pieces are tokenized with special tokens off, so code that spells a marker stays text.
        """
        ids = {marker: self.runtime.special_token(marker.value) for marker in Marker}
        have = {marker: token for marker, token in ids.items() if token >= 0}
        tokens = self.tokenize("", add_bos=True)
        for piece in layout(parts, have.keys()):
            if isinstance(piece, Marker):
                tokens.append(have[piece])
            else:
                tokens += self.runtime.tokenize(piece, add_bos=False, special=False)
        return tokens

    def close(self) -> None:
        for drafter in self._drafters.values():
            drafter.close()
        self.runtime.close()

    # --- the decode loop ------------------------------------------------------------------------
    def _stream(self, request: GenerationRequest, cancel: threading.Event) -> Iterator[Event]:
        settings = self.settings
        started = time.perf_counter()
        prompt, prefix_len, format_stops = self._prompt(request)
        if not prompt:
            raise ContextError("the prompt is empty")
        if len(prompt) >= self.n_ctx - 1:
            raise ContextError(
                f"the prompt is {len(prompt)} tokens but the context holds {self.n_ctx}; "
                "raise --ctx or give less input"
            )
        plan = self.draft_plan(request.drafter or settings.draft)
        draft_max = self.draft_max if plan else 0
        room = self.n_ctx - len(prompt) - draft_max - 1
        max_new = request.max_tokens or settings.max_tokens
        limited_by_context = room < max_new
        max_new = max(1, min(max_new, room))
        stats = Stats(
            prompt_tokens=len(prompt), drafter=plan.name if plan else "none", kv_type=self.kv_type,
            model=self.info.name,
        )
        samp = self._sampling(request)
        job = _Job(request, prompt, prefix_len, request.stop + format_stops, plan, draft_max, max_new,
                   limited_by_context, stats, samp, cancel, started)
        try:
            yield from self._run(job)
        finally:
            samp.close()  # also when the consumer stops reading early

    def _run(self, job: _Job) -> Iterator[Event]:
        request, prompt, plan, max_new, stats, samp, cancel = (
            job.request, job.prompt, job.plan, job.max_new, job.stats, job.samp, job.cancel
        )
        runtime, cache = self.runtime, self.cache

        # 1. bring the context to the longest reusable prefix, then evaluate the rest of the prompt
        reused = cache.prepare(prompt)
        progress = _PromptProgress(len(prompt) - reused, job.started)
        yield progress.event()
        prefix_len = job.prefix_len
        stats.prompt_tokens_evaluated = len(prompt) - reused
        evaluated = True  # False once cancelled
        if prefix_len > reused and not cache.has_prefix(prompt[:prefix_len]):
            evaluated = yield from self._evaluate_reporting(
                prompt[reused:prefix_len], cancel, False, progress, request.batch_tokens
            )
            if evaluated:
                cache.save_prefix()
        if evaluated:
            evaluated = yield from self._evaluate_reporting(
                prompt[len(cache.tokens) :], cancel, True, progress, request.batch_tokens
            )
        if not evaluated:
            stats.prompt_tokens_evaluated = len(cache.tokens) - reused
            yield self._cancelled(stats, "")
            return

        # 2. generate: each step decodes the pending token plus a draft, and keeps what the target agrees with
        text = TextStream(job.stop)
        history = list(prompt)
        guard = RepetitionGuard(prompt)
        reference = (
            self.tokenize(request.reference, add_bos=False) if isinstance(request.reference, str)
            else list(request.reference)
        )
        if plan is not None:
            plan.begin(prompt, reference)
        shadow: Shadow | None = None
        rows = runtime.logits(1)
        pending = self.choose_token(rows[0], -1, None, samp)[1]
        stats.ttft_ms = (time.perf_counter() - job.started) * 1000
        decode_started = time.perf_counter()
        emitted = 0
        finish: FinishReason | None = None
        new_tokens = [pending]
        while True:
            for token in new_tokens:
                emitted += 1
                history.append(token)
                if shadow is not None and not shadow.follow(token):
                    shadow = None
                if self.is_end(token):
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
                if guard.looping(history):
                    finish = "repetition"
                    break
                if emitted % DECODE_PROGRESS_EVERY == 0:
                    yield ProgressEvent("decode", emitted, max_new, time.perf_counter() - job.started)
            if finish is None and cancel.is_set():
                finish = "cancelled"
            if finish is not None:
                break
            pending = history[-1]
            draft: list[int] = []
            proposal: Proposal | None = None
            if plan is not None:
                proposal = plan.propose(history, min(job.draft_max, max_new - emitted))
                if proposal is not None:
                    draft = proposal.draft
                    if not draft and shadow is None:
                        shadow = proposal.shadow()
            batch = [pending, *draft]
            position = len(cache.tokens)
            step_started = time.perf_counter()
            runtime.decode(batch, position, len(batch))
            rows = runtime.logits(len(batch))
            new_tokens = []
            accepted = 0
            for i in range(len(batch)):
                drafted = draft[i] if i < len(draft) else None
                ok, token = self.choose_token(rows[i], i, drafted, samp)
                new_tokens.append(token)
                if not ok:
                    break
                accepted += 1
            if plan is not None:
                plan.record_cost(len(batch), time.perf_counter() - step_started)
            self.notify_decode(batch, accepted + 1)
            cache.extend(batch)
            if draft:
                assert plan is not None and proposal is not None
                plan.verified(proposal, accepted)
                stats.draft_proposed += len(draft)
                stats.draft_accepted += accepted
                stats.draft_steps += 1
                if accepted < len(draft) and not cache.rollback(position + 1 + accepted):
                    self._recompute(history + new_tokens[:-1], cancel)
                    plan.interrupted()
            if plan is not None:
                plan.record_step(time.perf_counter() - step_started)
        tail = text.finish()
        if tail:
            yield TextEvent(tail)
        elapsed = time.perf_counter() - decode_started
        stats.completion_tokens = emitted
        stats.decode_s = elapsed
        # the first token came with the prompt; decode speed counts the ones after it
        stats.decode_tokens_per_s = (emitted - 1) / elapsed if emitted > 1 and elapsed > 0 else 0.0
        stats.finish_reason = finish
        if stats.draft_steps:
            self._keep_learned_costs()
        yield DoneEvent(text.text, stats, tuple(history[len(prompt) :]))

    # --- pieces of the loop -----------------------------------------------------------------------
    def prompt_tokens(self, request: GenerationRequest) -> list[int]:
        """The tokens the engine evaluates for `request` (a chat turn rendered with the model's template)."""
        return self._prompt(request)[0]

    def count_turn_tokens(self, turn: ChatTurn) -> int:
        return self.count_tokens(render_turn(self.info, turn).text)

    def _prompt(self, request: GenerationRequest) -> tuple[list[int], int, tuple[str, ...]]:
        """The prompt's tokens, how many of them are its reusable prefix, and the stops its format adds."""
        prompt = request.prompt
        if isinstance(prompt, ChatTurn):
            built = render_turn(self.info, prompt)
            text, prefix_chars, stops = built.text, built.prefix_chars, built.stops
        elif isinstance(prompt, str):
            text, prefix_chars, stops = prompt, request.prefix_chars, ()
        else:
            return list(prompt), max(0, min(request.prefix_tokens, len(prompt) - 1)), ()
        tokens = self.tokenize(text)
        return tokens, self._prefix_boundary(text, prefix_chars, tokens), stops

    def _prefix_boundary(self, text: str, prefix_chars: int, prompt: Sequence[int]) -> int:
        """Tokens of the text's first `prefix_chars` characters, if they tokenize as a prefix of the prompt."""
        if prefix_chars <= 0:
            return 0
        prefix = self.tokenize(text[:prefix_chars])
        if len(prefix) >= len(prompt) or list(prompt[: len(prefix)]) != prefix:
            return 0
        return len(prefix)

    def evaluate(
        self, tokens: Sequence[int], cancel: threading.Event | None = None, *, want_logits: bool = False
    ) -> bool:
        """Evaluate tokens after those the context holds, in batches, as a prompt is (checkpoints paced, drafters
        told); False if cancelled. Logits only for the very last token, and only if `want_logits`.

        Public for tools that replay a prompt the way the decode loop does (tui/bench/lossless.py).
        """
        return sum(self._evaluating(tokens, cancel or threading.Event(), want_logits)) == len(tokens)

    def _evaluate_reporting(
        self, tokens: Sequence[int], cancel: threading.Event, want_logits: bool, progress: _PromptProgress,
        batch_tokens: int = 0,
    ) -> Generator[ProgressEvent, None, bool]:
        """evaluate(), with a ProgressEvent after each batch; returns False if cancelled."""
        done = 0
        for count in self._evaluating(tokens, cancel, want_logits, batch_tokens):
            done += count
            yield progress.event(count)
        return done == len(tokens)

    def _evaluating(
        self, tokens: Sequence[int], cancel: threading.Event, want_logits: bool, batch_tokens: int = 0
    ) -> Iterator[int]:
        """Evaluate tokens in batches (of at most `batch_tokens`, if given), yielding each batch's size; stops early
        when cancelled."""
        if want_logits and self.cache.recurrent and len(tokens) > 1:
            # a checkpoint just before the last prompt token lets the very same prompt come back for free
            done = 0
            for count in self._evaluating(tokens[:-1], cancel, False, batch_tokens):
                done += count
                yield count
            if done < len(tokens) - 1:
                return
            self.cache.checkpoint()
            tokens = tokens[-1:]
        step = self.runtime.batch_capacity
        if batch_tokens > 0:
            step = min(step, batch_tokens)
        for start in range(0, len(tokens), step):
            if cancel.is_set():
                return
            chunk = tokens[start : start + step]
            last = start + step >= len(tokens)
            started = time.perf_counter()
            self.runtime.decode(chunk, len(self.cache.tokens), 1 if (last and want_logits) else 0)
            self.cache.pacer.evaluated(time.perf_counter() - started)
            self.notify_decode(chunk, len(chunk))
            self.cache.extend(chunk)
            if not last:
                self.cache.checkpoint()  # paced: only where the copy costs a fraction of what it saves
            yield len(chunk)

    def notify_decode(self, tokens: Sequence[int], kept: int) -> None:
        """Drafters that follow the target's hidden states (MTP) see every decode call, whichever drafter runs.

        Public for code that decodes through `runtime` itself (bench/gpu) and must keep the head following.
        """
        for drafter in self._drafters.values():
            drafter.after_decode(self.cache.tokens, tokens, kept)

    def _recompute(self, tokens: Sequence[int], cancel: threading.Event) -> None:
        """Rebuild the state from scratch: the fallback when recurrent memory could not roll back."""
        self.cache.reset()
        self.evaluate(tokens, cancel, want_logits=False)

    def _sampling(self, request: GenerationRequest) -> sampling.Sampling:
        s = self.settings
        temperature = s.temperature if request.temperature is None else request.temperature
        seed = s.seed if request.seed is None else request.seed
        if seed < 0:
            seed = random.randrange(2**31)
        samp = sampling.Sampling(
            temperature=temperature,
            top_k=s.top_k if request.top_k is None else request.top_k,
            top_p=s.top_p if request.top_p is None else request.top_p,
            seed=seed,
            rng=random.Random(seed),
        )
        if not samp.greedy:
            samp.chain = sampling.ChainSampler(self.runtime, samp.temperature, samp.top_k, samp.top_p, seed)
        return samp

    # --- drafting plans -------------------------------------------------------------------------------
    def draft_plan(self, mode: str) -> DraftPlan | None:
        """The plan a request for drafter `mode` runs with (None: no drafting); made once, then reused."""
        choice = choose_drafter(mode, self)
        if not choice.sources:
            return None
        plan = self._plans.get(choice.name)
        if plan is None:
            plan = self._plans[choice.name] = DraftPlan(choice.name, [self._source(s) for s in choice.sources])
        return plan

    def replace_plan(self, name: str, plan: DraftPlan | None) -> DraftPlan | None:
        """Run requests whose choice is `name` with `plan` (None: back to the default); returns the one replaced.

        For benchmarks that drive the real loop with their own drafters and controllers.
        """
        old = self._plans.pop(name, None)
        if plan is not None:
            self._plans[name] = plan
        return old

    def _source(self, spec: SourceSpec) -> DraftSource:
        drafter = self._drafters.get(spec.name)
        if drafter is None:
            drafter = self._drafters[spec.name] = spec.factory()
        controller = self._controllers.get(spec.name)
        if controller is None:
            # a model drafter's acceptance is learned per draft position (its later guesses are worse)
            controller = self._controllers[spec.name] = DraftController(
                self.draft_max, self.costs, positional=spec.costly,
                verify_block=1 if self.runtime.offloads else CPU_VERIFY_BLOCK,
            )
        return DraftSource(drafter, controller, costly=spec.costly, min_tokens=spec.min_tokens, priors=spec.priors)

    # --- the cost curve of this card -----------------------------------------------------------------
    def calibration_key(self) -> str:
        """Everything a verify-cost curve depends on: the devices, the model file, and the context's settings."""
        config = self.runtime.config
        try:
            stat = self.info.path.stat()
            file_id: object = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            file_id = "?"
        return calibration_key(
            CALIBRATION_FORMAT,
            device_description(), self.info.path.resolve(), file_id, config.kv_type_k, config.kv_type_v,
            config.flash_attn, config.gpu_layers, config.threads, config.n_batch, config.exact_batches,
            self.runtime.n_ctx, self.runtime.rollback_slots, self.draft_max,
        )

    def _calibrates(self) -> bool:
        """Whether costs are timed on this machine where no cached curve has them (draft_calibration)."""
        mode = self.settings.draft_calibration
        return mode == "on" or (mode == "auto" and self.runtime.offloads)

    def _choose_slots(self, progress: Progress | None) -> None:
        """Keep fewer rollback slots where a plain step measures them dear (engine/draft/slots.py).

        Lookup plans on recurrent models only (`--draft mtp` keeps SLOT_FLOOR already), and only where costs are
        calibrated and no `rollback_slots` setting decides. Runs before any drafter holds the context.
        """
        settings, runtime = self.settings, self.runtime
        if (settings.rollback_slots or settings.draft not in ("auto", "ngram") or not runtime.keeps_recurrent_state
                or runtime.rollback_slots <= SLOT_FLOOR or settings.draft_calibration == "off"):
            return
        key = self.slots_key = slots_key(self.calibration_key())
        seconds = load_calibration(key)
        if seconds is None or len(seconds) < 2 or SLOT_FLOOR not in seconds:
            if not self._calibrates():
                return
            most = runtime.rollback_slots
            seconds = {most: self._steady_step(progress)}
            runtime.reopen(SLOT_FLOOR)
            seconds[SLOT_FLOOR] = self._steady_step(progress)
            with contextlib.suppress(OSError):
                save_calibration(key, seconds)
        self.slot_steps = seconds
        runtime.reopen(choose_slots(seconds))

    def _steady_step(self, progress: Progress | None) -> float:
        """Seconds of a plain step in sustained plain decoding (a GPU replaying its graph)."""
        return self.calibrate_costs(progress, repeats=SLOT_STEPS, sizes=[1])[repeated_key(1)]

    def _seed_costs(self, progress: Progress | None) -> None:
        """Start the cost model from this card's measured curve: cached, or timed now where asked."""
        mode = self.settings.draft_calibration
        if mode == "off":
            return
        key = self.calibration_key()
        seconds = load_calibration(key)
        if seconds is None and self._calibrates():
            seconds = self.calibrate_costs(progress)
            with contextlib.suppress(OSError):  # an unwritable cache costs a calibration per start, nothing else
                save_calibration(key, seconds)
        if seconds is None:
            # nothing calibrates here: start from what earlier runs learned. A fresh cost model learns the curve
            # a few sizes per request, and priced a CPU's long verify calls by a guess until then (bench/cpu_sim.py,
            # coder-1.5b edits: 1.53x a fresh process, 1.70x-1.79x carrying its costs)
            self.learned_key = calibration_key("learned online", key)
            seconds = load_calibration(self.learned_key)
        if seconds:
            self.costs.seed(seconds)

    def _keep_learned_costs(self) -> None:
        """Save what the cost model learned, for the next process (where no calibration gives the curve)."""
        if self.learned_key is not None:
            with contextlib.suppress(OSError):  # an unwritable cache: the next process learns afresh
                save_calibration(self.learned_key, self.costs.snapshot())

    def calibrate_costs(
        self, progress: Progress | None = None, repeats: int = 3, sizes: Iterable[int] | None = None
    ) -> dict[int, float]:
        """Seconds of a verify call of n = 1 .. draft_max + 1 tokens, or of `sizes` (logits and argmax of every row
        included).

        Runs on a scratch context (cleared after), rolling each call back to its first token, as a rejected
        draft is. Sizes alternate, as drafting makes them: on a GPU that also prices the lost CUDA graphs. Then, under
        repeated_key(n), an n-token call after n-token calls (a GPU replays its graph), as sustained plain decoding
        (STEADY, n = 1) and a drafter that keeps its length run.
        """
        runtime = self.runtime
        sizes = sorted(set(sizes)) if sizes is not None else list(range(1, self.draft_max + 2))
        filler = (self.tokenize("def f(x):\n    return x + 1\n" * 16) or [0])[:64]
        self.cache.reset()
        runtime.decode(filler, 0, 0)
        position = len(filler)
        settle = 3  # calls of one shape before llama.cpp's CUDA backend replays a captured graph
        total, done = len(sizes) * (repeats + settle + repeats), 0

        def time_call(n: int) -> float:
            nonlocal position, done
            batch = [filler[(position + i) % len(filler)] for i in range(n)]
            started = time.perf_counter()
            runtime.decode(batch, position, n)
            rows = runtime.logits(n)
            for i in range(n):
                sampling.greedy(rows[i])
            elapsed = time.perf_counter() - started
            runtime.remove_from(position + 1)  # keep one token: recurrent state rolls back within the last call
            position += 1
            done += 1
            if progress:
                progress("calibrating draft costs", done / total)
            return elapsed

        try:
            seconds = calibrate(time_call, sizes, repeats)
            for n in sizes:  # one shape in a row: repeated_key(1) is STEADY, sustained plain decoding
                same = [time_call(n) for _ in range(settle + repeats)][settle:]
                seconds[repeated_key(n)] = statistics.median(same)
            return seconds
        finally:
            self.cache.reset()

    def _cancelled(self, stats: Stats, text: str) -> DoneEvent:
        stats.finish_reason = "cancelled"
        return DoneEvent(text, stats)
