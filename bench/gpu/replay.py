"""Replay recorded answers through qcode's decode loop on a model whose random weights accept nothing.

A random-weight model's own argmax would reject every draft, so the loop's token choice is replaced by the answer
recorded on the CPU: at every verified position the target still computes its logits row and its argmax (the cost
is real), and then emits the recorded token, so a drafted token is accepted exactly when it equals the recorded
answer, as under greedy decoding with the real model. Everything else is qcode's own: Engine.stream, the n-gram
drafter, the draft-length controller, the KV and recurrent-state rollback. Token ids are renumbered into plain
tokens of the target's vocabulary (the n-gram structure is all the drafter sees).

Policies: `none` (no drafting), `trace` (exactly the CPU run's steps: its draft lengths, its accepted counts),
`fixed-K` (the n-gram drafter, always verifying min(K, proposal) tokens), `padded-K` (exactly K, padded: one verify
shape), `adaptive` (qcode's DraftController from its prior, as a fresh process), `calibrated` (the controller seeded
with this card's measured cost curve), `calibrated-floor` (the same, plain reference = fastest recent plain step),
`shipped` (the engine's own plan, untouched: its cost model seeded by the calibration at load, switches priced,
n-gram acceptance restarted per request), and for MTP `mtp-D@P` (the model's MTP head drafting D tokens, each
accepted with probability P given the one before), `auto-D@P` (n-gram when its proposal is long, else MTP), and
`mtp-shipped@P` / `auto-shipped@P` (the engine's plans for `--draft mtp` / `auto`, lengths chosen by their
controllers on the engine's seeded cost model, the head's tokens right with probability P).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine import GenerationRequest, sampling
from engine.draft.adaptive import CostModel, DraftController
from engine.draft.base import Drafter
from engine.draft.ngram import NgramDrafter
from engine.draft.plan import DraftPlan, DraftSource
from engine.draft.select import AUTO_NGRAM_MIN_TOKENS, NGRAM_PRIORS

BASE_ID = 1000  # renumbered tokens start here: ordinary text tokens of the Qwen vocabulary


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    prompt: list[int]
    reference: list[int]
    answer: list[int]
    steps: list[list[int]]  # [position, proposed, drafted, accepted] of the recorded run


def load_cases(traces: Mapping[str, Any], cap: int | None = None, source: str = "recorded") -> list[Case]:
    """The tasks, renumbered, answers cut to `cap` tokens.

    source "recorded": the default model's answers and the steps of its drafted run; "ideal": the answers of
    bench/gpu/ideal_answers.py (no recorded steps).
    """
    cases = []
    for task in traces["tasks"]:
        ids: dict[int, int] = {}

        def renumber(tokens: Sequence[int], ids: dict[int, int] = ids) -> list[int]:
            return [ids.setdefault(t, BASE_ID + len(ids)) for t in tokens]

        ideal = source == "ideal"
        prompt, reference = renumber(task["prompt"]), renumber(task["reference"])
        answer = renumber(task["ideal" if ideal else "answer"])
        if cap is not None:
            answer = answer[:cap]
        name = f"{task['name']} (ideal)" if ideal else task["name"]
        cases.append(Case(name, task["kind"], prompt, reference, answer, [] if ideal else task["steps"]))
    return cases


def mtp_head(engine: Any) -> Any:
    """The engine's own MTP drafter (the head every plan with MTP shares)."""
    return engine.draft_plan("mtp").sources[-1].drafter


class TruthPicker:
    """The engine's token chooser for replays (Engine(choose_token=TruthPicker())): while an answer is loaded it
    pays for the argmax, then emits the recorded token; with none loaded it is the engine's own rule."""

    def __init__(self) -> None:
        self.answer: Sequence[int] | None = None
        self.pos = 0

    def load(self, answer: Sequence[int] | None) -> None:
        self.answer, self.pos = answer, 0

    def __call__(self, row: Any, index: int, drafted: int | None, samp: sampling.Sampling) -> tuple[bool, int]:
        if self.answer is None:
            return sampling.choose_token(row, index, drafted, samp)
        sampling.greedy(row)
        # past the end only when a last draft was fully accepted: the loop discards that bonus token
        token = self.answer[self.pos] if self.pos < len(self.answer) else BASE_ID
        self.pos += 1
        return drafted is not None and drafted == token, token


def _wrong(answer: Sequence[int], at: int) -> int:
    """A token that is not the answer's at `at`."""
    return answer[at] + 1 if at < len(answer) else BASE_ID


class FloorCostModel(CostModel):
    """An experiment kept for the runs that measured it ("calibrated-floor"): the plain reference c(1) is the
    fastest of the last `window` one-token calls. The engine's answer to the same problem (a one-token call after a
    draft loses the CUDA graph) is CostModel(price_switches=True)."""

    def __init__(self, window: int = 32) -> None:
        super().__init__(far_from_data=False)  # as the runs that measured it
        self.window = window
        self._plain: list[float] = []  # recent one-token timings (a seeded value counts as one)

    def record(self, n_tokens: int, seconds: float) -> None:
        super().record(n_tokens, seconds)
        if n_tokens == 1 and seconds > 0:
            self._plain.append(seconds)
            del self._plain[: -self.window]

    def seed(self, seconds: Mapping[int, float]) -> None:
        super().seed(seconds)
        if 1 in seconds:
            self._plain = [float(seconds[1])]

    def base_seconds(self) -> float | None:
        return min(self._plain) if self._plain else super().base_seconds()


class FixedLength(DraftController):
    """Verifies min(k, proposal) tokens whatever they cost."""

    def __init__(self, draft_max: int, k: int) -> None:
        super().__init__(draft_max)
        self.k = k

    def best_length(
        self, available: int | None = None, sustained: bool = False, streak: int | None = None
    ) -> int:
        return min(self.k, self.draft_max if available is None else available)


class TraceDrafter(Drafter):
    """Proposes what the recorded run verified at each position: its length, with its accepted count right."""

    name = "ngram"

    def __init__(self, case: Case) -> None:
        self.answer = case.answer
        self.by_position = {position: (drafted, accepted) for position, _, drafted, accepted in case.steps}
        self.prompt_len = 0

    def begin(self, prompt: Sequence[int], reference: Sequence[int]) -> None:
        self.prompt_len = len(prompt)

    def propose(self, history: Sequence[int], limit: int) -> list[int]:
        at = len(history) - self.prompt_len
        drafted, accepted = self.by_position.get(at, (0, 0))
        k = min(drafted, limit)
        if k <= 0:
            return []
        right = list(self.answer[at : at + min(accepted, k)])
        return (right + [_wrong(self.answer, at + len(right))] * k)[:k]

    def observe(self, proposed: int, accepted: int) -> None:
        pass


class SampledMtp(Drafter):
    """The model's MTP drafter at full cost; which of its tokens are right follows a cited acceptance rate.

    Chains up to `depth` head calls (the head drafts the length asked for), then marks the first j tokens right,
    j drawn from a geometric law with per-token acceptance p.
    """

    name = "mtp"

    def __init__(self, inner: Any, answer: Sequence[int], depth: int, p: float, seed: int = 0) -> None:
        self.inner, self.answer, self.depth, self.p = inner, answer, depth, p
        self.max_draft = min(depth, inner.max_draft or depth)  # as the engine's plan asks the head itself
        self.rng = random.Random(seed)
        self.prompt_len = 0
        self.proposals = 0

    def begin(self, prompt: Sequence[int], reference: Sequence[int]) -> None:
        self.prompt_len = len(prompt)
        self.inner.begin(prompt, reference)

    def propose(self, history: Sequence[int], limit: int) -> list[int]:
        drafted = self.inner.propose(history, min(limit, self.depth))
        self.proposals += 1
        at = len(history) - self.prompt_len
        right = 0
        while right < len(drafted) and self.rng.random() < self.p:
            right += 1
        good = list(self.answer[at : at + right])
        return (good + [_wrong(self.answer, at + len(good))] * len(drafted))[: len(drafted)]

    def observe(self, proposed: int, accepted: int) -> None:
        self.inner.observe(proposed, accepted)


class AutoDrafter(Drafter):
    """n-gram when its proposal is at least `min_ngram` tokens (a copy in progress), MTP otherwise."""

    name = "mtp"

    def __init__(self, ngram: NgramDrafter, mtp: SampledMtp, min_ngram: int) -> None:
        self.ngram, self.mtp, self.min_ngram = ngram, mtp, min_ngram
        self.used: Any = None
        self.ngram_steps = 0
        self.mtp_steps = 0

    def begin(self, prompt: Sequence[int], reference: Sequence[int]) -> None:
        self.ngram.begin(prompt, reference)
        self.mtp.begin(prompt, reference)

    def propose(self, history: Sequence[int], limit: int) -> list[int]:
        proposal = self.ngram.propose(history, limit)
        if len(proposal) >= self.min_ngram:
            self.used = self.ngram
            self.ngram_steps += 1
            return proposal
        self.used = self.mtp
        self.mtp_steps += 1
        return self.mtp.propose(history, limit)

    def observe(self, proposed: int, accepted: int) -> None:
        if self.used is self.ngram:
            self.ngram.observe(proposed, accepted)
        elif self.used is not None:
            self.mtp.observe(proposed, accepted)
        # the MTP head is told only about its own drafts


class PaddedNgram(NgramDrafter):
    """The n-gram drafter, its proposal padded to exactly `k` tokens (filler that is never right).

    Every verify call then has the same shape, which lets llama.cpp's CUDA backend replay a captured CUDA graph
    instead of launching each kernel (it re-captures whenever the graph's shapes change, as varying draft lengths do).
    """

    def __init__(self, n_min: int, n_max: int, k: int) -> None:
        super().__init__(n_min, n_max)
        self.k = k

    def propose(self, history: Sequence[int], limit: int) -> list[int]:
        proposal = super().propose(history, limit)
        return (proposal + [BASE_ID - 1] * self.k)[: min(self.k, limit)]


@dataclass(frozen=True)
class Policy:
    name: str
    drafter_name: str  # the engine's drafter slot: none, ngram, mtp
    make: Callable[[Any, Case], tuple[Any, DraftController]] | None = None  # (engine, case) -> drafter, controller
    plan: Callable[[Any, Case], DraftPlan] | None = None  # (engine, case) -> a whole plan, replacing plan_name's
    plan_name: str = ""  # the engine's plan a `plan` replaces (`auto` on an MTP model runs "ngram+mtp")


def ngram_policies(draft_max: int, calibration: Mapping[int, float] | None, fixed: Sequence[int] = (8, 16),
                   ngram: tuple[int, int] = (2, 5), padded: Sequence[int] = (8,),
                   plain_step: float | None = None) -> list[Policy]:
    def live(controller: Callable[[], DraftController]) -> Callable[[Any, Case], tuple[Any, DraftController]]:
        return lambda engine, case: (NgramDrafter(*ngram), controller())

    # adaptive, calibrated and calibrated-floor: the controller as these runs measured it (lookup at one per-token
    # rate, costs past the longest call timed at the prior slope), so simulate.py's validation of them holds
    def calibrated() -> DraftController:
        cost = CostModel(far_from_data=False)
        cost.seed(calibration or {})
        return DraftController(draft_max, cost, by_run=False)

    policies = [
        Policy("none", "none"),
        Policy("trace", "ngram", lambda engine, case: (TraceDrafter(case), FixedLength(draft_max, draft_max))),
    ]
    policies += [Policy(f"fixed-{k}", "ngram", live(lambda k=k: FixedLength(draft_max, k))) for k in fixed]
    policies += [Policy(f"padded-{k}", "ngram", lambda engine, case, k=k: (PaddedNgram(*ngram, k),
                                                                          FixedLength(draft_max, k))) for k in padded]
    policies.append(Policy("adaptive", "ngram",
                           live(lambda: DraftController(draft_max, CostModel(far_from_data=False), by_run=False))))
    policies.append(Policy("shipped", "ngram"))  # the engine's own plan, as a user's request runs it

    def floor() -> DraftController:
        # the calibration with sustained plain decoding's step as c(1), and the plain reference kept at the
        # fastest recent one-token call
        cost = FloorCostModel(window=32)
        cost.seed({**(calibration or {}), **({1: plain_step} if plain_step else {})})
        return DraftController(draft_max, cost, by_run=False)

    if calibration:
        policies.append(Policy("calibrated", "ngram", live(calibrated)))
        policies.append(Policy("calibrated-floor", "ngram", live(floor)))
    return policies


def mtp_policies(draft_max: int, depths: Sequence[int], rates: Sequence[float], auto_min: int = 4,
                 ngram: tuple[int, int] = (2, 5), seed: int = 0,
                 auto_depths: Sequence[int] | None = None, shipped_rates: Sequence[float] = ()) -> list[Policy]:
    policies = [Policy("none", "none")]
    for p in rates:
        for depth in depths:
            def mtp(engine: Any, case: Case, depth: int = depth, p: float = p) -> tuple[Any, DraftController]:
                return SampledMtp(mtp_head(engine), case.answer, depth, p, seed), FixedLength(draft_max, depth)

            def auto(engine: Any, case: Case, depth: int = depth, p: float = p) -> tuple[Any, DraftController]:
                sampled = SampledMtp(mtp_head(engine), case.answer, depth, p, seed)
                return AutoDrafter(NgramDrafter(*ngram), sampled, auto_min), FixedLength(draft_max, draft_max)

            policies.append(Policy(f"mtp-{depth}@{p:g}", "mtp", mtp))
            if auto_depths is None or depth in auto_depths:
                policies.append(Policy(f"auto-{depth}@{p:g}", "mtp", auto))
    for p in shipped_rates:
        policies.append(Policy(f"mtp-shipped@{p:g}", "mtp", plan=shipped_mtp_plan(p, False, ngram, seed),
                               plan_name="mtp"))
        policies.append(Policy(f"auto-shipped@{p:g}", "auto", plan=shipped_mtp_plan(p, True, ngram, seed),
                               plan_name="ngram+mtp"))
    return policies


def shipped_mtp_plan(p: float, with_ngram: bool, ngram: tuple[int, int], seed: int) -> Callable[[Any, Case], DraftPlan]:
    """The engine's plan for `--draft mtp` (or `auto`: long n-gram matches first), built as Engine._source builds
    it: controllers on the engine's one seeded cost model, kept across requests; only the head's hits are sampled."""
    controllers: dict[str, DraftController] = {}

    def make(engine: Any, case: Case) -> DraftPlan:
        def controller(name: str) -> DraftController:
            if name not in controllers:
                controllers[name] = DraftController(engine.draft_max, engine.costs, positional=name == "mtp")
            return controllers[name]

        head = DraftSource(SampledMtp(mtp_head(engine), case.answer, engine.draft_max, p, seed), controller("mtp"),
                           costly=True)
        if not with_ngram:
            return DraftPlan("mtp", [head])
        lookup = DraftSource(NgramDrafter(*ngram), controller("ngram"), min_tokens=AUTO_NGRAM_MIN_TOKENS,
                             priors=NGRAM_PRIORS)
        return DraftPlan("ngram+mtp", [lookup, head])

    return make


def run_case(engine: Any, case: Case, policy: Policy) -> dict[str, Any]:
    """One answer under one policy through Engine.stream (an engine made with choose_token=TruthPicker()); decode
    time and drafting counts."""
    picker = engine.choose_token
    if not isinstance(picker, TruthPicker):
        raise TypeError("replays need an engine made with Engine(settings, choose_token=TruthPicker())")
    drafter = None
    replaced: DraftPlan | None = None
    plan_name = policy.plan_name or policy.drafter_name
    if policy.make is not None:
        drafter, controller = policy.make(engine, case)
        replaced = engine.replace_plan(plan_name, DraftPlan(policy.drafter_name, [DraftSource(drafter, controller)]))
    elif policy.plan is not None:
        plan = policy.plan(engine, case)
        drafter = plan.sources[-1].drafter
        replaced = engine.replace_plan(plan_name, plan)
    picker.load(case.answer)
    try:
        request = GenerationRequest(list(case.prompt), max_tokens=len(case.answer), drafter=policy.drafter_name,
                                    stop=(), reference=list(case.reference))
        done = engine.complete(request)
    finally:
        picker.load(None)
        if policy.make is not None or policy.plan is not None:
            engine.replace_plan(plan_name, replaced)
    stats = done.stats
    row = {
        "task": case.name, "kind": case.kind, "policy": policy.name, "tokens": stats.completion_tokens,
        "decode_s": round(stats.decode_s, 4), "tok_s": round(stats.decode_tokens_per_s, 2),
        "proposed": stats.draft_proposed, "accepted": stats.draft_accepted, "draft_steps": stats.draft_steps,
        "same_answer": list(done.tokens) == list(case.answer),
    }
    if isinstance(drafter, AutoDrafter):
        row["auto_steps"] = {"ngram": drafter.ngram_steps, "mtp": drafter.mtp_steps}
    elif isinstance(drafter, SampledMtp):
        row["mtp_proposals"] = drafter.proposals
    return row


def run_all(engine: Any, cases: Sequence[Case], policies: Sequence[Policy], repeats: int = 1,
            log: Callable[[str], None] = print, time_left: Callable[[], float] | None = None,
            on_case: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """Every case under every policy, policies interleaved per case; the fastest repeat is kept.

    Stops before a case once `time_left()` drops under 25 s; `on_case` sees the rows after every case.
    """
    rows: list[dict[str, Any]] = []
    for case in cases:
        if time_left is not None and time_left() < 25:
            log(f"replay: out of time before {case.name}")
            break
        # the prompt into the cache once, so every policy times decoding only
        engine.complete(GenerationRequest(list(case.prompt), max_tokens=1, drafter="none", stop=()))
        best: dict[str, dict[str, Any]] = {}
        for _ in range(max(1, repeats)):
            for policy in policies:
                if policy.name == "trace" and not case.steps:
                    continue  # nothing recorded to replay
                row = run_case(engine, case, policy)
                if policy.name not in best or row["decode_s"] < best[policy.name]["decode_s"]:
                    best[policy.name] = row
        base = best.get("none")
        for name, row in best.items():
            if base and row["decode_s"] > 0:
                row = replace_speedup(row, base["decode_s"])
            rows.append(row)
            log(f"replay: {case.name} [{name}] {row['tok_s']} tok/s, x{row.get('speedup', 1.0)}, "
                f"{row['accepted']}/{row['proposed']} accepted, same answer {row['same_answer']}")
        if on_case is not None:
            on_case(rows)
    return rows


def replace_speedup(row: dict[str, Any], base_seconds: float) -> dict[str, Any]:
    out = dict(row)
    out["speedup"] = round(base_seconds / row["decode_s"], 3)
    return out


def summarize(rows: Sequence[Mapping[str, Any]], digits: int | None = 3) -> dict[str, dict[str, dict[str, float]]]:
    """Per kind and policy: total speedup (sum of plain time / sum of drafted time), median and min over tasks,
    and the number of tasks; rounded to `digits` (None: as computed)."""
    import statistics

    def rounded(value: float) -> float:
        return value if digits is None else round(value, digits)

    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        plain = {r["task"]: r["decode_s"] for r in mine if r["policy"] == "none"}
        for policy in dict.fromkeys(r["policy"] for r in mine):
            chosen = [r for r in mine if r["policy"] == policy and r["task"] in plain and r["decode_s"] > 0]
            if not chosen:
                continue
            ups = [plain[r["task"]] / r["decode_s"] for r in chosen]
            total = sum(plain[r["task"]] for r in chosen) / sum(r["decode_s"] for r in chosen)
            out.setdefault(kind, {})[policy] = {"total": rounded(total), "median": rounded(statistics.median(ups)),
                                                "min": rounded(min(ups)), "tasks": len(chosen)}
    return out

