"""Completion at a cursor: a repository-level fill-in-the-middle prompt, sized so that typing stays fast.

What the model sees (engine.fim has the layout): the repository's name, neighbouring files (engine.neighbours picks
them), the current file's path, a window of the file before the cursor and a short window after it.

Why the windows are what they are. The engine reuses the longest cached prompt prefix, so after a one-character edit
it evaluates the tokens from the edit on: a token or two of the edited line, then everything after the cursor (the
suffix and two markers). Those tokens are the whole latency, so the suffix gets what the latency budget leaves
(LATENCY_BUDGET_S at the measured prompt cost), and everything that stays put while the user types comes before the
cursor: neighbouring files first, then the file from a window start that moves in steps of whole line blocks. The
text before the cursor and the neighbours are evaluated once, by a warm-up when a file opens (evaluate_ahead), within
WARM_BUDGET_S at the measured cost and within the context. The prompt cost is measured once per model and settings
(two probe prompts) and cached on disk.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import code as codetools
from . import neighbours as nb
from .draft.adaptive import calibration_key, load_calibration, save_calibration
from .errors import InputError
from .events import DoneEvent, Event, GenerationRequest, ProgressEvent, Stats, TextEvent
from .fim import FimParts, SourceFile
from .languages import detect_language

if TYPE_CHECKING:
    from .backend import Backend

# issue 14: the first ghost character within 0.3 s of a one-character edit; the engine's part leaves the front end
# 50 ms to draw it
LATENCY_BUDGET_S = 0.25
# what a warm-up (a file opened, a request of another kind in between) may take to evaluate the context before the
# cursor; a completion asked for during it reuses what it evaluated so far
WARM_BUDGET_S = 10.0
PREFIX_SHARE = 0.6  # of the warm budget, for the current file (the rest shows neighbouring files)
EDIT_TOKENS = 4  # re-evaluated besides the suffix after a one-character edit: the edited token(s) and two markers
MIN_SUFFIX_TOKENS = 8
MIN_PREFIX_TOKENS = 256  # however slow the machine: a completion with less to go on is rarely right
ANSWER_ROOM = 256  # context kept free for the answer (a completion stops at a line or block boundary)
# the prefix window starts on a multiple of a number of lines, so typing keeps its start: about a quarter of the
# window at 10 tokens a line, so a move re-evaluates the window rarely and loses at most a quarter of it
GRAIN_TOKENS_PER_LINE = 40
WARM_STEP_S = 0.5  # a warm-up runs as requests of about this long, so a cancel takes effect soon
# what evaluate_ahead evaluates: the window around the cursor (a file opened) or the prompt at it (typing paused)
AheadKind = Literal["warm-up", "prefetch"]
PROBE_SIZES = (8, 64)  # prompt tokens of the two probes that measure the prompt cost
# How fast completions evaluate their prompts now, against the fastest measurement, as a moving average of each
# completion's ratio: the suffix window follows it. A laptop on battery or a busy VM runs 2-3x slower than its
# fastest probe (this 2-core VM measured 6.4 ms a token one day and 15 another), and a suffix sized for the fast day
# made every keystroke's completion wait twice the budget.
SLOWNESS_EMA = 0.3
COST_FORMAT = "completion prompt cost 1"
_LINE_CACHE = 8192


@dataclass(frozen=True)
class PromptCost:
    """Seconds from a request to its first token: fixed + per_token x tokens evaluated."""

    fixed_s: float
    per_token_s: float

    def seconds(self, tokens: int) -> float:
        return self.fixed_s + self.per_token_s * tokens

    def tokens_within(self, seconds: float) -> int:
        return max(0, int((seconds - self.fixed_s) / self.per_token_s)) if self.per_token_s > 0 else 1 << 20

    def scaled(self, factor: float) -> PromptCost:
        return PromptCost(self.fixed_s * factor, self.per_token_s * factor)

    @classmethod
    def fit(cls, seconds: dict[int, float]) -> PromptCost:
        (n1, t1), (n2, t2) = sorted(seconds.items())[0], sorted(seconds.items())[-1]
        per_token = max((t2 - t1) / (n2 - n1), 1e-6) if n2 > n1 else t1 / max(n1, 1)
        return cls(max(t1 - per_token * n1, 0.0), per_token)


@dataclass(frozen=True)
class CompletionBudget:
    """Token windows of a completion prompt."""

    prefix_tokens: int  # the current file before the cursor (and, in a warm-up, past it)
    suffix_tokens: int  # after the cursor: evaluated again after every edit
    context_tokens: int  # neighbouring files

    @staticmethod
    def suffix_within(cost: PromptCost) -> int:
        """The suffix window whose evaluation after a one-character edit fits LATENCY_BUDGET_S at `cost`."""
        return max(cost.tokens_within(LATENCY_BUDGET_S) - EDIT_TOKENS, MIN_SUFFIX_TOKENS)

    @classmethod
    def from_cost(cls, cost: PromptCost, n_ctx: int, reserved: int) -> CompletionBudget:
        """Windows for a context of n_ctx tokens (less `reserved`) at the measured prompt cost."""
        room = max(n_ctx - reserved, 2 * MIN_PREFIX_TOKENS)
        suffix = min(cls.suffix_within(cost), room // 8)
        before = min(max(cost.tokens_within(WARM_BUDGET_S), MIN_PREFIX_TOKENS), room - suffix)
        prefix = max(int(before * PREFIX_SHARE), min(before, MIN_PREFIX_TOKENS))
        return cls(prefix, suffix, before - prefix)


@dataclass
class _State:
    """What completion keeps per backend: its measured cost, token counts of lines, chosen neighbours."""

    budget: CompletionBudget | None = None
    cost: PromptCost | None = None
    slowness: float = 1.0  # completions' prompt times lately, over what `cost` predicts (SLOWNESS_EMA)
    line_tokens: dict[str, int] = field(default_factory=dict)
    neighbours: dict[tuple[str, str], tuple[object, tuple[SourceFile, ...]]] = field(default_factory=dict)


_STATES: weakref.WeakKeyDictionary[Any, _State] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def _state(engine: Backend) -> _State:
    with _STATES_LOCK:
        state = _STATES.get(engine)
        if state is None:
            state = _STATES[engine] = _State()
        return state


# --- the prompt cost -------------------------------------------------------------------------------
def _cost_key(engine: Backend) -> str:
    s, info = engine.settings, engine.info
    try:
        stat = info.path.stat()
        file_id: object = (stat.st_size, stat.st_mtime_ns)
    except OSError:
        file_id = "?"
    where = s.server_url or f"threads {s.threads or os.cpu_count()}, gpu layers {s.gpu_layers}"
    return calibration_key(
        COST_FORMAT, where, info.path, file_id, engine.kv_type, s.flash_attn, s.batch_size, engine.n_ctx
    )


def _probe_prompt(engine: Backend, tokens: int, tag: int) -> str:
    """About `tokens` tokens of code, different from the first token on: the engine reuses nothing of another."""
    text = f"{tag} "
    while engine.count_tokens(text) < tokens:
        text += "x = x + 1\n"
    return text


def measure_prompt_cost(engine: Backend, repeats: int = 3) -> PromptCost:
    """Time the first token of prompts of PROBE_SIZES tokens (fastest of `repeats`) and fit fixed + per token."""
    engine.complete(GenerationRequest(_probe_prompt(engine, 4, 1), max_tokens=1, drafter="none", temperature=0.0))
    best: dict[int, float] = {}
    for repeat in range(repeats):
        for size in PROBE_SIZES:
            prompt = _probe_prompt(engine, size, 10 + repeat * 1000 + size)
            done = engine.complete(GenerationRequest(prompt, max_tokens=1, drafter="none", temperature=0.0))
            evaluated = max(done.stats.prompt_tokens_evaluated, 1)
            seconds = done.stats.ttft_ms / 1000
            best[evaluated] = min(best.get(evaluated, seconds), seconds)
    return PromptCost.fit(best)


def prompt_cost(engine: Backend, *, measure: bool = False) -> PromptCost:
    """The backend's prompt cost: cached on disk per model and settings, else (or with `measure`) measured now.

    The cache keeps the fastest time ever measured for each probe: other work on the machine only ever slows a
    probe down, and windows sized at a busy moment would stay small for good.
    """
    state = _state(engine)
    if state.cost is None or measure:
        key = _cost_key(engine)
        saved = load_calibration(key) or {}
        if measure or len(saved) < 2:
            fresh = measure_prompt_cost(engine)
            measured = {size: fresh.seconds(size) for size in PROBE_SIZES}
            saved = {size: min(seconds, saved.get(size, seconds)) for size, seconds in measured.items()}
            with contextlib.suppress(OSError):  # an unwritable cache costs a measurement per start
                save_calibration(key, saved)
        state.cost = PromptCost.fit(saved)
    return state.cost


def completion_budget(engine: Backend) -> CompletionBudget:
    """The windows this backend's completions use: the text before the cursor and the neighbours fixed once
    measured, so the prompt layout stays put; the suffix, which comes last in the prompt and is evaluated again
    after every edit anyway, as long as the prompt cost lately allows (at most the measured window)."""
    state = _state(engine)
    if state.budget is None:
        reserved = min(engine.settings.max_tokens, ANSWER_ROOM) + engine.settings.draft_max + 8
        state.budget = CompletionBudget.from_cost(prompt_cost(engine), engine.n_ctx, reserved)
    budget = state.budget
    if state.cost is None or state.slowness <= 1.0:
        return budget
    lately = CompletionBudget.suffix_within(state.cost.scaled(state.slowness))
    return replace(budget, suffix_tokens=min(budget.suffix_tokens, lately))


def observe_prompt_time(engine: Backend, evaluated: int, seconds: float) -> None:
    """A completion evaluated `evaluated` prompt tokens before its first token, in `seconds`: the suffix window
    follows how fast this machine evaluates now (requests of fewer than EDIT_TOKENS tokens say little of that)."""
    state = _state(engine)
    if state.cost is None or evaluated < EDIT_TOKENS or seconds <= 0:
        return
    ratio = min(max(seconds / state.cost.seconds(evaluated), 0.5), 10.0)
    state.slowness += SLOWNESS_EMA * (ratio - state.slowness)


# --- windows ---------------------------------------------------------------------------------------
def _line_costs(engine: Backend, lines: list[str]) -> list[int]:
    """Token counts of lines (each with its newline), remembered: the window is found anew at each key press."""
    cache = _state(engine).line_tokens
    costs: list[int] = []
    for line in lines:
        cost = cache.get(line)
        if cost is None:
            if len(cache) > _LINE_CACHE:
                cache.clear()
            cost = cache[line] = engine.count_tokens(line + "\n")
        costs.append(cost)
    return costs


def line_grain(budget: int) -> int:
    """Lines between the possible starts of a prefix window of `budget` tokens."""
    return max(4, budget // GRAIN_TOKENS_PER_LINE)


def window_start(costs: list[int], budget: int, grain: int | None = None) -> int:
    """The first line of a window ending at the last line: the earliest multiple of `grain` within budget.

    Typing on the last line moves the start only when the window outgrows its budget, and then by a whole grain.
    """
    total, first = 0, len(costs)
    for index in range(len(costs) - 1, -1, -1):
        total += costs[index]
        if total > budget:
            break
        first = index
    grain = grain or line_grain(budget)
    start = -(-first // grain) * grain
    return min(start, max(len(costs) - 1, 0))


def prefix_window(engine: Backend, prefix: str, budget: int) -> tuple[str, int]:
    """The text before the cursor from the window start, and the start's line index."""
    lines = prefix.split("\n")
    start = window_start(_line_costs(engine, lines), budget)
    return "\n".join(lines[start:]), start


def extended_window(engine: Backend, lines: list[str], start: int, budget: int) -> str:
    """Whole lines from `start` within `budget` tokens: a warm-up's prefix, which runs past the cursor."""
    used, end = 0, start
    for cost in _line_costs(engine, lines[start:]):
        if used + cost > budget and end > start:
            break
        used += cost
        end += 1
    return "\n".join(lines[start:end]) + ("\n" if end < len(lines) else "")


def suffix_window(engine: Backend, suffix: str, budget: int) -> str:
    """The rest of the cursor's line, then whole lines while they fit `budget` tokens."""
    lines = suffix.split("\n")
    kept, used = [lines[0]], engine.count_tokens(lines[0] + ("\n" if len(lines) > 1 else ""))
    for line, cost in zip(lines[1:], _line_costs(engine, lines[1:]), strict=True):
        if used + cost > budget:
            break
        kept.append(line)
        used += cost
    return "\n".join(kept) + ("\n" if len(kept) < len(lines) else "")


# --- repository context ----------------------------------------------------------------------------
def _neighbours(
    engine: Backend, text: str, language: str | None, path: Path, root: Path, budget: int
) -> tuple[SourceFile, ...]:
    """The chosen neighbours, chosen again only when the set of candidates (imports, files, their dates) changes.

    So typing in the current file keeps the repository part of the prompt, and its cached evaluation, as it was.
    """
    if budget <= 0:
        return ()
    candidates = nb.rank_candidates(text, language, path, root)
    stamps: list[object] = [budget]
    for candidate in sorted(candidates, key=lambda c: c.path):  # the set, not its order: a mention may reorder
        try:
            stat = candidate.path.stat()
            stamps.append((str(candidate.path), stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append(str(candidate.path))
    key = (str(root), str(path))
    memo = _state(engine).neighbours
    seen = memo.get(key)
    if seen is not None and seen[0] == stamps:
        return seen[1]
    chosen = nb.choose_neighbours(candidates, root, budget, engine.count_tokens)
    memo[key] = (stamps, chosen)
    return chosen


@dataclass(frozen=True)
class CompletionPrompt:
    """A completion's prompt parts, and the text around the cursor that its answer is trimmed against."""

    parts: FimParts
    before: str  # all of the text before the cursor
    after: str  # all of the text after it


def completion_parts(
    engine: Backend, text: str, offset: int, path: Path | None = None, language: str | None = None,
    budget: CompletionBudget | None = None, *, warm: bool = False,
) -> CompletionPrompt:
    """The parts of a completion prompt at `offset` (warm: of the warm-up prompt for that window)."""
    if not 0 <= offset <= len(text):
        raise InputError(f"cursor offset {offset} is outside the text (0-{len(text)})")
    budget = budget or completion_budget(engine)
    before, after = text[:offset], text[offset:]
    window, start = prefix_window(engine, before, budget.prefix_tokens)
    suffix: str | None = suffix_window(engine, after, budget.suffix_tokens)
    if warm:
        window, suffix = extended_window(engine, text.split("\n"), start, budget.prefix_tokens), None
    name, repo, files = "", "", tuple[SourceFile, ...]()
    if path is not None:
        path = path.expanduser().resolve()
        root = nb.find_root(path)
        name, repo = nb.relative_name(path, root), root.name
        language = language or detect_language(path, text)
        files = _neighbours(engine, text, language, path, root, budget.context_tokens)
    parts = FimParts(prefix=window, suffix=suffix, path=name, repo=repo, files=files)
    return CompletionPrompt(parts, before, after)


# --- requests --------------------------------------------------------------------------------------
def complete_at(
    engine: Backend,
    text: str,
    offset: int,
    language: str | None = None,
    max_tokens: int | None = None,
    cancel: threading.Event | None = None,
    path: Path | None = None,
    budget: CompletionBudget | None = None,
) -> Iterator[Event]:
    """Stream the text to insert at `offset`, stopping at the end of the statement or block.

    `path` (the file being edited) brings in the repository context; `budget` fixes the windows (benchmarks and
    tests), else they follow the backend's measured prompt cost.
    """
    language = language or detect_language(path, text)
    built = completion_parts(engine, text, offset, path, language, budget)
    before, after = built.before, built.after
    request = GenerationRequest(
        prompt=engine.fim_prompt(built.parts),
        max_tokens=max_tokens or min(engine.settings.max_tokens, ANSWER_ROOM),
        # the n-gram drafter's reference: the text after the cursor, beyond the short suffix window (the text
        # before it is in the prompt already); indexed before the first token, so kept short
        reference=after[:2000],
    )
    # the engine stops at the next step once `stop` is set: by the caller's cancel, or at a boundary
    stop = threading.Event()
    shown, generated, boundary = "", "", False
    done: DoneEvent | None = None
    for event in engine.stream(request, stop):
        if cancel is not None and cancel.is_set():
            stop.set()
        if isinstance(event, TextEvent) and not boundary:
            generated += event.text
            keep, boundary = codetools.trim_completion(generated, before, after, language)
            if keep.startswith(shown) and len(keep) > len(shown):
                yield TextEvent(keep[len(shown) :])
                shown = keep
            if boundary:
                stop.set()
        elif isinstance(event, ProgressEvent) and not boundary:
            yield event
        elif isinstance(event, DoneEvent):
            done = event
    assert done is not None
    if not (cancel is not None and cancel.is_set()) and done.stats.ttft_ms > 0:  # a prompt evaluated to its end
        observe_prompt_time(engine, done.stats.prompt_tokens_evaluated, done.stats.ttft_ms / 1000)
    final, _ = codetools.trim_completion(generated, before, after, language, final=True)
    if final.startswith(shown) and len(final) > len(shown):
        yield TextEvent(final[len(shown) :])
    shown = final
    if boundary:
        done.stats.finish_reason = "stop"
    yield DoneEvent(shown, done.stats)


def evaluate_ahead(
    engine: Backend,
    text: str,
    offset: int,
    kind: AheadKind,
    path: Path | None = None,
    language: str | None = None,
    cancel: threading.Event | None = None,
    budget: CompletionBudget | None = None,
) -> Stats:
    """Evaluate, as background work, what a completion near `offset` will reuse.

    A "warm-up" (when a file opens, after a request of another kind, or when the cursor has moved far) evaluates the
    repository context and the current file from the window's start on, past the cursor to the end of the window,
    so a completion anywhere before that point evaluates only the tokens from its cursor on; it is kept as a
    snapshot, so after a request of another kind it comes back as a copy instead of being evaluated again. The
    first warm-up on a backend also measures its prompt cost (about a second, once per model and settings).
    A "prefetch" (typing paused) evaluates the completion prompt at `offset` itself, so a completion asked there
    next evaluates only its last token.
    Both evaluate in batches of about WARM_STEP_S, so `cancel` stops them soon; what was evaluated stays cached.
    """
    warm_up = kind == "warm-up"
    built = completion_parts(engine, text, offset, path, language, budget, warm=warm_up)
    return _evaluate(engine, engine.fim_prompt(built.parts), cancel, keep=warm_up)


def _evaluate(engine: Backend, prompt: str | list[int], cancel: threading.Event | None, *, keep: bool) -> Stats:
    """Evaluate a prompt as background work: small batches; `keep` makes it a snapshot (all but its last token)."""
    started = time.perf_counter()
    tokens = prompt if isinstance(prompt, list) else []
    request = GenerationRequest(
        prompt, max_tokens=1, drafter="none", temperature=0.0,
        prefix_tokens=len(tokens) - 1 if keep else 0,
        batch_tokens=max(prompt_cost(engine).tokens_within(WARM_STEP_S), 32) if tokens else 0,
    )
    done = engine.complete(request, cancel)
    stats = done.stats
    stats.ttft_ms = (time.perf_counter() - started) * 1000
    stats.completion_tokens = 0
    return stats
