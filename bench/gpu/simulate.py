"""Replay the recorded acceptance through qcode's real drafting logic on a simulated clock: GPU answers on a CPU.

    python -m bench.gpu.simulate [--results FILE] [--answers recorded,ideal] [--cap N] [--policies a,b,...]
                                 [--json OUT] [--graph-after 2] [--capture-ms 12] [--host-ms 0] [--seed curve]

No model runs. Every case of `traces.json` (replay.py's `load_cases`) goes through the drafting part of Engine._run:
a real DraftPlan of NgramDrafter sources and DraftControllers proposes, a drafted token is accepted when it equals
the answer at its position, the target adds its own next token, a proposal left unverified is shadow-checked against
the tokens that follow and fed back as the engine does, and after every decode call `plan.record_cost(n, seconds)`
gets the *simulated* seconds, so a controller's CostModel learns what it would learn live.

The clock: a run's measured seconds of one decode call of n tokens (logits rows and argmax included) in two regimes
(`kv.<type>.cost_curve`): shapes changing every call, and the same shape repeated. The second is llama.cpp replaying
a captured CUDA graph. Its rule (ggml-cuda.cu, ggml_backend_cuda_graph_compute): a call whose graph changed runs
directly (the changing cost), the next identical one captures the graph (changing cost + `capture`, a fitted
constant), and replays start with the third (`graph_after` = 2). The engine evaluates a prompt's last token alone, so
the first plain step captures. A rejected draft adds its rollback. The baseline is `none` on the same clock: plain
steps, all replayed but the first. Sizes not measured are interpolated.

Policies are data: POLICIES maps a name to a Policy (a plan factory taking a Setup and a Case; `per_run` keeps one
plan across a run's answers, as the engine keeps its controllers and cost model across requests), PARAMETRIC a prefix
to a factory (`fixed-8`, `padded-8`); `register(Policy(name, factory))` adds one. `validate()` compares simulated
with measured speedups (the results file's `replay` / `replay_ideal` rows of replay.py on the GPU), per task and kind.
Validation and its error: bench/gpu/SIMULATION.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.draft.adaptive import STEADY, CostModel, DraftController
from engine.draft.ngram import NgramDrafter
from engine.draft.plan import DraftPlan, DraftSource, Proposal, Shadow
from engine.draft.select import NGRAM_PRIORS

from .replay import Case, FixedLength, FloorCostModel, PaddedNgram, TraceDrafter, load_cases, summarize

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "results" / "2026-11-27-h100-run2.json"
TRACES = HERE / "traces.json"
CURVE_SIZES = {*range(1, 18), 24, 32}  # what gpu_bench times; it adds draft_max + 1 when that is not among them
# The graph-capturing call (the second of a shape) costs a direct call plus this. Not measured by any run: fitted to
# the fixed, padded and trace replays of runs 2-4 (114 answers whose call sequences the simulator reproduces
# exactly): the mean per-answer speedup error is 3.4-7% anywhere in 10-14 ms, against 6-13% with 0. Physically: a
# capture records every kernel launch (about the direct call's time) and then runs the graph (about a steady call).
# bench/gpu/SIMULATION.md has the validation.
CAPTURE_MS = 12.0
PAST_END = -1  # the target's "next token" past the recorded answer: the loop stops before emitting it


# --- the clock --------------------------------------------------------------------------------------------------
def interpolate(points: Mapping[int, float], n: int) -> float:
    """points[n], else linear between the nearest measured sizes, else extrapolated from the last two."""
    if n in points:
        return points[n]
    sizes = sorted(points)
    if not sizes:
        raise ValueError("no measured sizes")
    if len(sizes) == 1:
        return points[sizes[0]]
    lower = [s for s in sizes if s < n]
    upper = [s for s in sizes if s > n]
    if lower and upper:
        a, b = lower[-1], upper[0]
    elif upper:  # below the smallest size
        a, b = sizes[0], sizes[1]
    else:  # beyond the largest
        a, b = sizes[-2], sizes[-1]
    return points[a] + (points[b] - points[a]) * (n - a) / (b - a)


@dataclass(frozen=True)
class CostTable:
    """Seconds of one decode call of n tokens, by regime.

    `changing`: the call's shape differs from the last call's (no CUDA graph); `steady`: it repeats (graph replayed);
    both include the logits rows and their argmax, i.e. what the engine times and hands to `record_cost`.
    `rollback`: removing a rejected draft (clock only). `graph_after`: identical calls before one that replays (1:
    the second call of a shape replays; 2: llama.cpp's warm-up, the second captures and the third replays);
    `capture`: extra seconds of the capturing call, plus `capture_runs` times the steady call (the captured graph
    runs after it is recorded); `host`: per-step host time outside the timed call. `lead_in`: see GraphClock.
    """

    changing: Mapping[int, float]
    steady: Mapping[int, float]
    rollback: Mapping[int, float] = field(default_factory=dict)
    graph_after: int = 2
    capture: float = 0.0
    capture_runs: float = 0.0
    host: float = 0.0
    lead_in: tuple[int, ...] = (1,)

    def changing_s(self, n: int) -> float:
        return interpolate(self.changing, n)

    def steady_s(self, n: int) -> float:
        top = max(self.steady)
        if n > top:  # past the measured steady sizes: the graph saves what it saved at the largest one
            return self.changing_s(n) - (self.changing_s(top) - self.steady[top])
        return interpolate(self.steady, n)

    def rollback_s(self, n: int) -> float:
        return interpolate(self.rollback, n) if self.rollback else 0.0

    @classmethod
    def from_results(cls, results: Mapping[str, Any], kv: str = "q8_0", depth: int = 1024,
                     **options: Any) -> CostTable:
        """The run's cost curves at `depth`: the changing-shape one and the steady one (ms split into parts)."""
        curves = results["kv"][kv]["cost_curve"]
        changing = next(c for c in curves.values() if not c.get("steady") and c["depth"] == depth)
        steady = next(c for c in curves.values() if c.get("steady") and c["depth"] == depth)

        def call_s(curve: Mapping[str, Any]) -> dict[int, float]:
            return {int(n): (ms["decode"] + ms["pick"]) / 1000 for n, ms in curve["ms"].items()}

        rollback = {int(n): ms["rollback"] / 1000 for n, ms in changing["ms"].items()}
        return cls(call_s(changing), call_s(steady), rollback, **options)


class GraphClock:
    """Prices a sequence of decode calls: the regime of each follows from the shapes before it.

    `lead_in`: the sizes of the calls before the first decode step. The engine evaluates a prompt's last token by
    itself (after the rest of the prompt, or after a cached prompt's checkpoint is restored), so by default one
    one-token call precedes decoding: on llama.cpp's rule the first plain step captures the graph, as it did in the
    GPU replay. `(1, 1)` starts replaying at once (every plain step steady).
    """

    def __init__(self, table: CostTable, lead_in: Sequence[int] = (1,)) -> None:
        self.table = table
        self.last = 0
        self.run = 0
        self.regimes: Counter[str] = Counter()
        for n in lead_in:
            self._advance(n)

    def _advance(self, n: int) -> None:
        if n == self.last:
            self.run += 1
        else:
            self.last, self.run = n, 1

    def call(self, n: int) -> float:
        """Seconds of the next call of n tokens (as the engine would time it)."""
        self._advance(n)
        table = self.table
        if self.run > table.graph_after:
            self.regimes["steady"] += 1
            return table.steady_s(n)
        if self.run == table.graph_after and table.graph_after >= 2:
            self.regimes["capture"] += 1
            return table.changing_s(n) + table.capture + table.capture_runs * table.steady_s(n)
        self.regimes["changing"] += 1
        return table.changing_s(n)


# --- one case ---------------------------------------------------------------------------------------------------
@dataclass
class CaseResult:
    task: str
    kind: str
    policy: str
    tokens: int
    decode_s: float
    calls: int = 0
    draft_steps: int = 0
    proposed: int = 0
    accepted: int = 0
    regimes: dict[str, int] = field(default_factory=dict)
    lengths: list[int] = field(default_factory=list)  # verified draft length of every call (0: plain)

    def row(self) -> dict[str, Any]:
        return {"task": self.task, "kind": self.kind, "policy": self.policy, "tokens": self.tokens,
                "decode_s": round(self.decode_s, 6), "calls": self.calls, "draft_steps": self.draft_steps,
                "proposed": self.proposed, "accepted": self.accepted, "regimes": self.regimes}


def simulate_case(case: Case, plan: DraftPlan | None, table: CostTable, draft_max: int,
                  policy: str = "", step_s: float = 0.0) -> CaseResult:
    """Engine._run's decode loop on `case.answer` with `plan` drafting (None: plain), timed by `table`; a drafting
    step also spends `step_s` after its call (the head taking the target's rows), which a costly source learns."""
    answer, prompt = case.answer, case.prompt
    max_new = len(answer)
    result = CaseResult(case.name, case.kind, policy, max_new, 0.0)
    if max_new == 0:
        return result
    clock = GraphClock(table, table.lead_in)
    history = list(prompt)
    if plan is not None:
        plan.begin(prompt, case.reference)
    shadow: Shadow | None = None
    emitted = 0
    new_tokens = [answer[0]]  # the first token comes with the prompt's logits, before decoding starts
    while True:
        done = False
        for token in new_tokens:
            emitted += 1
            history.append(token)
            if shadow is not None and not shadow.follow(token):
                shadow = None
            if emitted >= max_new:
                done = True
                break
        if done:
            break
        draft: list[int] = []
        proposal: Proposal | None = None
        if plan is not None:
            proposal = plan.propose(history, min(draft_max, max_new - emitted))
            if proposal is not None:
                draft = proposal.draft
                if not draft and shadow is None:
                    shadow = proposal.shadow()
        n = 1 + len(draft)
        new_tokens = []
        accepted = 0
        for i in range(n):
            at = emitted + i
            token = answer[at] if at < max_new else PAST_END
            new_tokens.append(token)
            if i >= len(draft) or draft[i] != token:
                break
            accepted += 1
        seconds = clock.call(n)
        if plan is not None:
            plan.record_cost(n, seconds)
        after = step_s if draft else 0.0
        if plan is not None:
            plan.record_step(seconds + after)
        result.decode_s += seconds + table.host + after
        result.calls += 1
        result.lengths.append(len(draft))
        if draft:
            assert plan is not None and proposal is not None
            plan.verified(proposal, accepted)
            result.draft_steps += 1
            result.proposed += len(draft)
            result.accepted += accepted
            if accepted < len(draft):
                result.decode_s += table.rollback_s(n)
    result.regimes = dict(clock.regimes)
    return result


# --- policies ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Setup:
    """What a policy's plan is built from."""

    draft_max: int = 16
    ngram: tuple[int, int] = (2, 5)
    seed: Mapping[int, float] | None = None  # a calibration: seconds per verify call of n tokens (STEADY: plain)
    plain_step: float | None = None  # sustained plain decoding's step (steady c(1)), for calibrated-floor
    # the lookup learns the answer's repeated replacements (engine/draft/edits.py); False: as runs 2-4 drafted, which
    # validate() compares with
    learn_edits: bool = True

    def lookup(self) -> NgramDrafter:
        return NgramDrafter(*self.ngram, learn_edits=self.learn_edits)


PlanFactory = Callable[[Setup, Case], DraftPlan]


@dataclass(frozen=True)
class Policy:
    name: str
    make: PlanFactory | None = None  # None: no drafting
    per_run: bool = False  # one plan for all the cases of a run, as the engine keeps controllers across requests
    needs_steps: bool = False  # only for cases with a recorded drafted run (trace)


def ngram_plan(drafter: Any, controller: DraftController, priors: tuple[float, float] | None = None) -> DraftPlan:
    """The plan for `draft = "ngram"` (and `auto` without an MTP head or draft model): one source. The engine's
    restarts acceptance per request (`priors`); the GPU replays' policies did not."""
    return DraftPlan("ngram", [DraftSource(drafter, controller, priors=priors)])


def seeded_costs(setup: Setup, **options: Any) -> CostModel:
    """A CostModel as Engine._seed_costs leaves it: seeded from the calibration, when there is one."""
    cost = CostModel(**options)
    if setup.seed:
        cost.seed(setup.seed)
    return cost


# adaptive, calibrated and calibrated-floor are replay.py's live policies as the GPU ran them (validated against
# those runs): lookup priced at one per-token rate (by_run=False), costs past the longest call timed at the prior slope


def _adaptive(setup: Setup, case: Case) -> DraftPlan:
    controller = DraftController(setup.draft_max, CostModel(far_from_data=False), by_run=False)
    return ngram_plan(setup.lookup(), controller)


def _calibrated(setup: Setup, case: Case) -> DraftPlan:
    controller = DraftController(setup.draft_max, seeded_costs(setup, far_from_data=False), by_run=False)
    return ngram_plan(setup.lookup(), controller)


def _calibrated_floor(setup: Setup, case: Case) -> DraftPlan:
    cost = FloorCostModel(window=32)
    seed = {n: s for n, s in (setup.seed or {}).items() if n != STEADY}
    cost.seed({**seed, **({1: setup.plain_step} if setup.plain_step else {})})
    return ngram_plan(setup.lookup(), DraftController(setup.draft_max, cost, by_run=False))


def _trace(setup: Setup, case: Case) -> DraftPlan:
    return ngram_plan(TraceDrafter(case), FixedLength(setup.draft_max, setup.draft_max))


def _shipped(setup: Setup, case: Case) -> DraftPlan:
    # Engine.__init__: one CostModel(price_switches=True) seeded from the card's calibration, shared
    # by every controller; Engine._source: one DraftController per source, kept across requests, its acceptance
    # restarted by DraftPlan.begin from EDIT_PRIOR or PROSE_PRIOR
    return ngram_plan(setup.lookup(),
                      DraftController(setup.draft_max, seeded_costs(setup, price_switches=True)), NGRAM_PRIORS)


def _shipped_unpriced(setup: Setup, case: Case) -> DraftPlan:
    # shipped with CostModel(price_switches=False): c(1) averages steady and after-draft plain steps
    return ngram_plan(setup.lookup(), DraftController(setup.draft_max, seeded_costs(setup)), NGRAM_PRIORS)


def _unseeded(setup: Setup, case: Case) -> DraftPlan:
    # the engine with draft_calibration = "off" (or no calibration cached): the cost model learns online only
    return ngram_plan(setup.lookup(), DraftController(setup.draft_max, CostModel(price_switches=True)),
                      NGRAM_PRIORS)


def fixed(k: int) -> Policy:
    """Always verify min(k, proposal) n-gram tokens (replay.py's fixed-K)."""
    return Policy(f"fixed-{k}", lambda setup, case: ngram_plan(setup.lookup(),
                                                               FixedLength(setup.draft_max, k)))


def padded(k: int) -> Policy:
    """The n-gram proposal padded to exactly k tokens: one verify shape (replay.py's padded-K)."""
    return Policy(f"padded-{k}", lambda setup, case: ngram_plan(PaddedNgram(*setup.ngram, k),
                                                                FixedLength(setup.draft_max, k)))


POLICIES: dict[str, Policy] = {}
PARAMETRIC: dict[str, Callable[[int], Policy]] = {"fixed": fixed, "padded": padded}


def register(policy: Policy) -> Policy:
    POLICIES[policy.name] = policy
    return policy


for _policy in (
    Policy("none"),
    Policy("trace", _trace, needs_steps=True),  # the CPU run's own draft lengths and accepted counts
    Policy("adaptive", _adaptive),  # replay.py: a fresh controller with the prior cost model per case
    Policy("calibrated", _calibrated),  # replay.py: a fresh controller seeded with the calibration per case
    Policy("calibrated-floor", _calibrated_floor),  # replay.py: plain reference = fastest recent plain step
    Policy("shipped", _shipped, per_run=True),  # the Engine as it ships: seeded, kept across requests
    Policy("adaptive-unseeded", _unseeded, per_run=True),  # the Engine without a calibration
    Policy("shipped-unpriced", _shipped_unpriced, per_run=True),  # shipped without switch pricing
):
    register(_policy)


def policy_named(name: str) -> Policy:
    if name in POLICIES:
        return POLICIES[name]
    prefix, _, k = name.rpartition("-")
    if prefix in PARAMETRIC and k.isdigit():
        return PARAMETRIC[prefix](int(k))
    raise KeyError(f"unknown policy {name!r}: one of {', '.join(POLICIES)} or {'/'.join(PARAMETRIC)}-K")


# --- runs -------------------------------------------------------------------------------------------------------
def simulate(cases: Sequence[Case], policies: Sequence[Policy], table: CostTable, setup: Setup,
             log: Callable[[str], None] | None = None) -> list[CaseResult]:
    """Every policy over the cases in order (a per-run policy keeps one plan through them all); `none` included."""
    if not any(p.make is None for p in policies):
        policies = [POLICIES["none"], *policies]
    results = []
    for policy in policies:
        started = time.perf_counter()
        shared: DraftPlan | None = None
        for case in cases:
            if policy.needs_steps and not case.steps:
                continue
            plan: DraftPlan | None = None
            if policy.make is not None:
                if policy.per_run:
                    if shared is None:
                        shared = policy.make(setup, case)
                    plan = shared
                else:
                    plan = policy.make(setup, case)
            results.append(simulate_case(case, plan, table, setup.draft_max, policy.name))
        if log:
            log(f"simulate: {policy.name} over {len(cases)} cases in {time.perf_counter() - started:.2f} s")
    return results


def speedups(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], float]:
    """(task, policy) -> plain decode time / this policy's, from rows with task, policy and decode_s."""
    rows = list(rows)
    plain = {r["task"]: r["decode_s"] for r in rows if r["policy"] == "none"}
    return {(r["task"], r["policy"]): plain[r["task"]] / r["decode_s"] for r in rows
            if r["task"] in plain and r["decode_s"] > 0}



# --- validation against the GPU replay --------------------------------------------------------------------------
@dataclass(frozen=True)
class Validation:
    source: str  # recorded / ideal
    kind: str
    policy: str
    simulated: float  # total speedup over the kind's tasks
    measured: float
    simulated_median: float
    measured_median: float
    task_error: float  # mean |simulated / measured - 1| of the per-task speedups
    worst_task: str
    worst_error: float  # simulated / measured - 1 of the worst task
    counts_match: str  # tasks whose draft steps, proposed and accepted equal the GPU run's, of all

    @property
    def error(self) -> float:
        return self.simulated / self.measured - 1


def validate(source: str, simulated: Sequence[Mapping[str, Any]], measured: Sequence[Mapping[str, Any]],
             ) -> list[Validation]:
    """Simulated against measured speedups for every (kind, policy) both have, over the tasks both have."""
    tasks = {r["task"] for r in measured}
    simulated = [r for r in simulated if r["task"] in tasks]
    sim_by = {(r["task"], r["policy"]): r for r in simulated}
    sim_up, meas_up = speedups(simulated), speedups(measured)
    sim_sum, meas_sum = summarize(simulated, digits=None), summarize(measured, digits=None)
    out = []
    for kind, by_policy in meas_sum.items():
        for policy, meas in by_policy.items():
            sim = sim_sum.get(kind, {}).get(policy)
            if policy == "none" or sim is None:
                continue
            rows = [r for r in measured if r["kind"] == kind and r["policy"] == policy
                    and (r["task"], policy) in sim_up and (r["task"], policy) in meas_up]
            errors = {r["task"]: sim_up[(r["task"], policy)] / meas_up[(r["task"], policy)] - 1 for r in rows}
            worst = max(errors, key=lambda t: abs(errors[t]))
            same = sum(all(sim_by[(r["task"], policy)][k] == r[k] for k in ("draft_steps", "proposed", "accepted"))
                       for r in rows)
            out.append(Validation(source, kind, policy, sim["total"], meas["total"], sim["median"], meas["median"],
                                  statistics.mean(abs(e) for e in errors.values()), worst, errors[worst],
                                  f"{same}/{len(rows)}"))
    return out


def order_agreement(validations: Sequence[Validation]) -> tuple[int, int]:
    """Pairs of policies (same answers and kind) that the simulation ranks as the GPU did, of all pairs."""
    agree = total = 0
    groups: dict[tuple[str, str], list[Validation]] = {}
    for v in validations:
        groups.setdefault((v.source, v.kind), []).append(v)
    for group in groups.values():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                total += 1
                agree += (a.simulated - b.simulated) * (a.measured - b.measured) > 0
    return agree, total


# --- what a results file says about its run ---------------------------------------------------------------------
def measured_rows(results: Mapping[str, Any], source: str, kv: str = "q8_0") -> list[dict[str, Any]]:
    return list(results["kv"][kv].get("replay" if source == "recorded" else "replay_ideal", []))


def run_draft_max(results: Mapping[str, Any], kv: str = "q8_0", depth: int = 1024) -> int:
    """gpu_bench times draft_max + 1 in its changing-shape curve, adding it when it is not a usual size."""
    curves = results["kv"][kv]["cost_curve"]
    changing = next(c for c in curves.values() if not c.get("steady") and c["depth"] == depth)
    extra = {int(n) for n in changing["ms"]} - CURVE_SIZES
    return max(extra) - 1 if extra else 16


def run_cap(results: Mapping[str, Any], kv: str = "q8_0") -> int | None:
    """The answer tokens the GPU replay used per task: its longest answer."""
    rows = measured_rows(results, "recorded", kv) + measured_rows(results, "ideal", kv)
    return max((r["tokens"] for r in rows), default=None)


def calibration_seed(results: Mapping[str, Any], how: str, kv: str = "q8_0", depth: int = 1024,
                     draft_max: int = 16) -> dict[int, float] | None:
    """Seconds per verify call to seed cost models with, as Engine.calibrate_costs would have cached them.

    "curve": the changing-shape curve's totals for n <= draft_max + 1, exactly what gpu_bench seeded `calibrated`
    with (Engine.calibrate_costs also alternates sizes); "calibration": the run's calibration (relative c(n),
    n <= 17) times the curve's c(1); "none": no seed. Both add STEADY, the steady plain step (the steady curve's
    c(1)), which the engine's calibration now times too; a CostModel without price_switches ignores it.
    """
    if how == "none":
        return None
    curves = results["kv"][kv]["cost_curve"]
    changing = next(c for c in curves.values() if not c.get("steady") and c["depth"] == depth)
    seconds = {int(n): float(t) for n, t in changing["seconds"].items() if int(n) <= draft_max + 1}
    if how == "calibration":
        relative = results["kv"][kv]["calibration"]["relative"]
        seconds = {int(n): float(r) * seconds[1] for n, r in relative.items() if int(n) <= draft_max + 1}
    elif how != "curve":
        raise ValueError(f"unknown seed {how!r}: curve, calibration or none")
    steady = plain_step(results, kv, depth)
    return {**seconds, STEADY: steady} if steady else seconds


def plain_step(results: Mapping[str, Any], kv: str = "q8_0", depth: int = 1024) -> float | None:
    curves = results["kv"][kv]["cost_curve"]
    steady = next((c for c in curves.values() if c.get("steady") and c["depth"] == depth), None)
    return float(steady["seconds"]["1"]) if steady else None


# --- the command ------------------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def table_text(validations: Sequence[Validation], summaries: Mapping[str, Mapping[str, Mapping[str, Any]]],
               ) -> str:
    lines = []
    by_key = {(v.source, v.kind, v.policy): v for v in validations}
    for source, by_kind in summaries.items():
        for kind, by_policy in by_kind.items():
            count = by_policy.get("none", next(iter(by_policy.values())))["tasks"]
            lines.append(f"\n{source} answers, {kind} ({count} tasks)")
            lines.append(f"  {'policy':<18} {'sim total':>9} {'sim med':>8} | {'GPU total':>9} {'GPU med':>8} "
                         f"{'error':>7} | {'task err':>8} {'worst task':>28} {'counts':>6}")
            for policy, s in by_policy.items():
                if policy == "none":
                    continue
                v = by_key.get((source, kind, policy))
                head = f"  {policy:<18} {s['total']:>9.3f} {s['median']:>8.3f} |"
                if v is None:
                    lines.append(head + f" {'':>9} {'':>8} {'':>7} |")
                    continue
                lines.append(head + f" {v.measured:>9.3f} {v.measured_median:>8.3f} {_pct(v.error):>7} | "
                             f"{v.task_error * 100:>7.1f}% {v.worst_task[:20]:>20} {_pct(v.worst_error):>7} "
                             f"{v.counts_match:>6}")
    if validations:
        errors = [abs(v.error) for v in validations]
        agree, pairs = order_agreement(validations)
        lines.append(f"\nvalidation over {len(validations)} (answers, kind, policy) totals: mean |error| "
                     f"{statistics.mean(errors) * 100:.1f}%, max {max(errors) * 100:.1f}%; per task: mean "
                     f"{statistics.mean(v.task_error for v in validations) * 100:.1f}%; policy pairs ranked as "
                     f"on the GPU: {agree}/{pairs}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="a gpu_bench results file")
    parser.add_argument("--traces", type=Path, default=TRACES)
    parser.add_argument("--answers", default="recorded,ideal", help="recorded, ideal or both")
    parser.add_argument("--cap", type=int, default=None, help="answer tokens per task (default: the run's)")
    parser.add_argument("--policies", default="measured,shipped,shipped-unpriced,adaptive-unseeded",
                        help="comma-separated; 'measured' = every n-gram policy the results file replayed")
    parser.add_argument("--all-tasks", action="store_true",
                        help="simulate every task, not only those the GPU run replayed (validation: those only)")
    parser.add_argument("--kv", default="q8_0")
    parser.add_argument("--draft-max", type=int, default=None, help="default: the run's")
    parser.add_argument("--seed", default="curve", choices=("curve", "calibration", "none"),
                        help="what seeds the calibrated and shipped cost models")
    parser.add_argument("--graph-after", type=int, default=2,
                        help="identical calls before a CUDA graph replays (llama.cpp: 2)")
    parser.add_argument("--capture-ms", type=float, default=CAPTURE_MS,
                        help="extra ms of the graph-capturing call (default: fitted, see CAPTURE_MS)")
    parser.add_argument("--capture-runs", type=float, default=0.0,
                        help="the capturing call also costs this fraction of a steady call (instead of --capture-ms)")
    parser.add_argument("--warm", action="store_true",
                        help="start every answer with the graph replaying (no capture on the first plain step)")
    parser.add_argument("--host-ms", type=float, default=0.0, help="host ms per decode step")
    parser.add_argument("--ngram-min", type=int, default=2, help="the engine's default, as replayed")
    parser.add_argument("--ngram-max", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="write rows, summaries and the validation here")
    parser.add_argument("--recorded-lookup", action="store_true",
                        help="the lookup as the recorded runs drafted (no learned replacements): to validate")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    results = json.loads(args.results.read_text(encoding="utf-8"))
    traces = json.loads(args.traces.read_text(encoding="utf-8"))
    draft_max = args.draft_max or run_draft_max(results, args.kv)
    cap = args.cap or run_cap(results, args.kv)
    table = CostTable.from_results(results, args.kv, graph_after=args.graph_after, capture=args.capture_ms / 1000,
                                   capture_runs=args.capture_runs, host=args.host_ms / 1000,
                                   lead_in=(1, 1) if args.warm else (1,))
    setup = Setup(draft_max, (args.ngram_min, args.ngram_max),
                  calibration_seed(results, args.seed, args.kv, draft_max=draft_max), plain_step(results, args.kv),
                  learn_edits=not args.recorded_lookup)
    log(f"simulate: {args.results.name}, draft_max {draft_max}, cap {cap}, graph after {args.graph_after}, "
        f"seed {args.seed}")
    names: list[str] = []
    for name in (x.strip() for x in args.policies.split(",") if x.strip()):
        if name == "measured":
            for source in ("recorded", "ideal"):
                names += [r["policy"] for r in measured_rows(results, source, args.kv)]
        else:
            names.append(name)
    policies = [policy_named(n) for n in dict.fromkeys(names)]

    out: dict[str, Any] = {"results": args.results.name, "draft_max": draft_max, "cap": cap,
                           "graph_after": args.graph_after, "capture_ms": args.capture_ms,
                           "capture_runs": args.capture_runs, "host_ms": args.host_ms,
                           "seed": args.seed, "rows": {}, "summary": {}, "validation": []}
    validations: list[Validation] = []
    summaries: dict[str, Any] = {}
    for source in (x.strip() for x in args.answers.split(",") if x.strip()):
        cases = load_cases(traces, cap=cap, source=source)
        measured = measured_rows(results, source, args.kv)
        tasks = {r["task"] for r in measured}
        if tasks and not args.all_tasks:  # like for like: what the GPU run replayed (run 2: one ideal explain)
            cases = [c for c in cases if c.name in tasks]
        rows = [r.row() for r in simulate(cases, policies, table, setup, log)]
        summaries[source] = summarize(rows, digits=None)
        out["rows"][source] = rows
        out["summary"][source] = summaries[source]
        validations += validate(source, rows, measured)
    out["validation"] = [v.__dict__ | {"error": v.error} for v in validations]
    print(f"{args.results.name}: simulated (sim) against measured (GPU) speedups; error = sim / GPU - 1; "
          f"counts = tasks whose draft steps, proposed and accepted tokens equal the GPU run's")
    print(table_text(validations, summaries))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    log(f"simulate: done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
