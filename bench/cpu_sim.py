"""Drafting on this CPU, measured once and replayed: answers, the verify-cost curve, and policies on a simulated clock.

    python -m bench.cpu_sim record --model PATH --out FILE [--max-tokens 320]   # greedy answers of bench/tasks.py
    python -m bench.cpu_sim curve --model PATH --out FILE [--sizes 1,2,...]      # seconds of a verify call of n
    python -m bench.cpu_sim simulate --traces FILE --curve FILE [--policies ...] [--cap 160] [--json]

`oracle` is no policy but a bound: the best draft lengths for the lookup's proposals, knowing the answer.
`shipped-N` is the engine's lookup on a CPU (verify calls in whole blocks of CPU_VERIFY_BLOCK), `unblocked-N` the same
with any length, as on a GPU.

A shared 2-core machine gives noisy timings, but a greedy answer is the same whatever the load, and a verify call's
cost depends on its size alone. So the answers are recorded once (plain greedy decoding), the cost curve is measured
once (sizes interleaved, medians), and policies are compared by replaying the answers through qcode's real drafting
code (bench.gpu.simulate.simulate_case: DraftPlan, drafters, controllers, shadow checks, record_cost) on a clock that
charges every decode call its measured cost. `ngram-mod` emulates llama-server's `--spec-type ngram-mod` (a table of
24-token n-grams; a draft only when 48 tokens chain, at most 64) to compare policies with the server's.
bench/peer.py, which runs both for real, stays the judge.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.draft.adaptive import CPU_VERIFY_BLOCK, CostModel, DraftController
from engine.draft.ngram import NgramDrafter
from engine.draft.plan import DraftPlan, DraftSource
from engine.draft.select import NGRAM_PRIORS

from .gpu.replay import Case, FixedLength
from .gpu.simulate import CostTable, simulate_case


def log(message: str) -> None:
    print(f"cpu_sim: {message}", file=sys.stderr, flush=True)


# --- recording ----------------------------------------------------------------------------------------------------
def record(model: str | None, max_tokens: int, threads: int) -> dict[str, Any]:
    """Plain greedy answers to every bench task, with the prompt and reference tokens the engine drafts from."""
    from engine import Engine, load_settings
    from engine.tasks import build_request
    from tui.bench.tasks import default_tasks

    engine = Engine(load_settings(model=model, threads=threads, draft="none"))
    tasks = []
    for task in default_tasks():
        request, _ = build_request(engine, task.task)
        started = time.perf_counter()
        done = engine.complete(dataclasses.replace(request, max_tokens=max_tokens, drafter="none"))
        tasks.append({
            "name": task.name, "kind": task.kind, "prompt": engine.prompt_tokens(request),
            "reference": engine.tokenize(request.reference, add_bos=False) if request.reference else [],
            "answer": list(done.tokens), "finish": done.stats.finish_reason,
        })
        log(f"{task.name}: {len(done.tokens)} tokens ({done.stats.finish_reason}) in "
            f"{time.perf_counter() - started:.0f} s")
    engine.close()
    return {"model": engine.info.name, "path": str(engine.info.path), "max_tokens": max_tokens, "tasks": tasks}


def load_traces(data: dict[str, Any], cap: int | None) -> list[Case]:
    return [Case(t["name"], t["kind"], t["prompt"], t["reference"], t["answer"][:cap] if cap else t["answer"], [])
            for t in data["tasks"]]


# --- the cost curve -------------------------------------------------------------------------------------------------
def measure_curve(model: str | None, sizes: Sequence[int], repeats: int, threads: int) -> dict[str, Any]:
    """Median seconds of one verify call of n tokens (logits of every row and their argmax included) after a
    512-token prompt, sizes round-robin; each call is rolled back to its first token, as a rejected draft is."""
    import textwrap

    from engine import sampling
    from engine.runtime import Runtime, RuntimeConfig
    from engine.settings import load_settings

    settings = load_settings(model=model, threads=threads, draft="none")
    from engine.model import resolve_model_path

    runtime = Runtime(resolve_model_path(settings, None), RuntimeConfig.from_settings(settings))
    filler = runtime.tokenize(Path(textwrap.__file__).read_text(encoding="utf-8")[:8000])
    runtime.decode(filler[:512], 0, 0)
    position = 512
    samples: dict[int, list[float]] = {n: [] for n in sizes}
    cpu: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(repeats):
        for n in sizes:
            batch = [filler[(position + i) % len(filler)] for i in range(n)]
            wall, process = time.perf_counter(), time.process_time()
            runtime.decode(batch, position, n)
            rows = runtime.logits(n)
            for i in range(n):
                sampling.greedy(rows[i])
            samples[n].append(time.perf_counter() - wall)
            cpu[n].append(time.process_time() - process)
            runtime.remove_from(position + 1)
            position += 1
    runtime.close()
    return {"model": str(settings.model), "threads": threads, "repeats": repeats,
            "seconds": {str(n): statistics.median(v) for n, v in samples.items()},
            "cpu_seconds": {str(n): statistics.median(v) for n, v in cpu.items()}}


def cost_table(curve: dict[str, Any]) -> CostTable:
    seconds = {int(n): float(s) for n, s in curve["seconds"].items()}
    # a CPU has no graphs to capture: every call costs its size's price
    return CostTable(seconds, seconds, graph_after=1 << 30, lead_in=())


# --- llama-server's ngram-mod, emulated -----------------------------------------------------------------------------
class NgramModDrafter(NgramDrafter):
    """common/ngram-mod.cpp and speculative.cpp's ngram_mod: n_match-token keys -> next token (the latest one),
    the prompt added at begin, the answer in chunks of 32; a draft chains lookups, at least n_min, at most n_max."""

    name = "ngram-mod"

    def __init__(self, n_match: int = 24, n_min: int = 48, n_max: int = 64) -> None:
        super().__init__()
        self.n_match, self.d_min, self.d_max = n_match, n_min, n_max
        self.table: dict[tuple[int, ...], int] = {}
        self.added = 0

    def _add(self, tokens: Sequence[int], upto: int) -> None:
        n = self.n_match
        for i in range(self.added, upto):
            self.table[tuple(tokens[i : i + n])] = tokens[i + n]
        self.added = max(self.added, upto)

    def begin(self, prompt: Sequence[int], reference: Sequence[int]) -> None:
        self.table.clear()  # the server keeps it across requests; bench/peer.py restarts it per request
        self.added = 0
        if len(prompt) > self.n_match:
            self._add(prompt, len(prompt) - self.n_match)

    def propose(self, history: Sequence[int], limit: int) -> list[int]:
        n = self.n_match
        if len(history) < n:
            return []
        if self.added + 32 < len(history):
            self._add(history, len(history) - n)
        key = list(history[-n:])
        draft: list[int] = []
        for _ in range(min(self.d_max, limit)):
            token = self.table.get(tuple(key[-n:]))
            if token is None:
                break
            draft.append(token)
            key.append(token)
        return draft if len(draft) >= min(self.d_min, limit) else []

    def observe(self, proposed: int, accepted: int) -> None:
        return None


# --- policies -----------------------------------------------------------------------------------------------------
def shipped(draft_max: int, seed: dict[int, float] | None, verify_block: int = CPU_VERIFY_BLOCK) -> DraftPlan:
    """The engine's `ngram` plan on a CPU: one CostModel (switches priced), acceptance restarted per request."""
    cost = CostModel(price_switches=True)
    if seed:
        cost.seed(seed)
    controller = DraftController(draft_max, cost, verify_block=verify_block)
    return DraftPlan("ngram", [DraftSource(NgramDrafter(), controller, priors=NGRAM_PRIORS)])


def policy(name: str, curve: dict[int, float]) -> tuple[DraftPlan | None, int]:
    """A plan by name, and the draft_max it runs with."""
    if name == "none":
        return None, 16
    if name == "ngram-mod":
        return DraftPlan("ngram-mod", [DraftSource(NgramModDrafter(), FixedLength(64, 64))]), 64
    prefix, _, number = name.rpartition("-")
    if prefix == "fixed" and number.isdigit():
        k = int(number)
        return DraftPlan("fixed", [DraftSource(NgramDrafter(), FixedLength(k, k))]), k
    if prefix in ("shipped", "seeded") and number.isdigit():
        return shipped(int(number), curve if prefix == "seeded" else None), int(number)
    if prefix == "unblocked" and number.isdigit():  # any draft length, as on a GPU
        return shipped(int(number), None, verify_block=1), int(number)
    raise KeyError(f"unknown policy {name!r}")


def oracle_seconds(case: Case, table: CostTable, draft_max: int = 64) -> float:
    """Decode seconds of the best draft lengths the lookup's proposals allow, knowing which tokens the target will
    accept (a dynamic program over the answer): no length policy does better with this drafter on this curve.
    The proposals are those of a walk that verifies each one (the drafter's state follows the answer)."""
    answer = case.answer
    drafter = NgramDrafter()
    drafter.begin(case.prompt, case.reference)
    offered = [(0, 0)] * (len(answer) + 1)  # at i tokens emitted: the proposal's length, how much of it is right
    for i in range(1, len(answer)):
        proposal = drafter.propose([*case.prompt, *answer[:i]], min(draft_max, len(answer) - i))
        right = 0
        while right < len(proposal) and proposal[right] == answer[i + right]:
            right += 1
        if proposal:
            drafter.observe(len(proposal), right)
        offered[i] = (len(proposal), right)
    best = [0.0] * (len(answer) + 1)
    for i in range(len(answer) - 1, 0, -1):
        length, right = offered[i]
        options = [table.changing_s(1) + best[i + 1]]
        for k in range(1, length + 1):
            kept = min(k, right)
            wasted = table.rollback_s(k + 1) if kept < k else 0.0
            options.append(table.changing_s(k + 1) + wasted + best[min(i + kept + 1, len(answer))])
        best[i] = min(options)
    return best[1] if len(answer) > 1 else 0.0


def simulate(cases: Sequence[Case], names: Sequence[str], table: CostTable) -> list[dict[str, Any]]:
    rows = []
    for name in ["none", *[n for n in names if n != "none"]]:
        for case in cases:
            if name == "oracle":
                rows.append({"task": case.name, "kind": case.kind, "policy": name, "tokens": len(case.answer),
                             "decode_s": round(oracle_seconds(case, table), 6)})
                continue
            plan, draft_max = policy(name, dict(table.changing))
            result = simulate_case(case, plan, table, draft_max, name)
            rows.append({**result.row(), "lengths": result.lengths})
    plain = {r["task"]: r["decode_s"] for r in rows if r["policy"] == "none"}
    for row in rows:
        row["speedup"] = round(plain[row["task"]] / row["decode_s"], 3) if row["decode_s"] else None
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    by = {(r["task"], r["policy"]): r for r in rows}
    lines = [f"{'task':36} " + " ".join(f"{p:>12}" for p in policies)]
    for task in tasks:
        lines.append(f"{task[:36]:36} " + " ".join(f"{by[(task, p)]['speedup']:>12.2f}" for p in policies))
    for kind in dict.fromkeys(r["kind"] for r in rows):
        medians = [statistics.median(by[(t, p)]["speedup"] for t in tasks if by[(t, p)]["kind"] == kind)
                   for p in policies]
        lines.append(f"{'median ' + kind:36} " + " ".join(f"{m:>12.2f}" for m in medians))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rec, cur = sub.add_parser("record"), sub.add_parser("curve")
    for measured in (rec, cur):  # both run the model
        measured.add_argument("--model", default=None)
        measured.add_argument("--out", required=True)
        measured.add_argument("--threads", type=int, default=2)
    rec.add_argument("--max-tokens", type=int, default=320)
    cur.add_argument("--sizes", default="1,2,3,4,5,6,8,10,12,16,20,24,32,40,48,56,64,65")
    cur.add_argument("--repeats", type=int, default=5)
    sim = sub.add_parser("simulate")
    sim.add_argument("--traces", required=True)
    sim.add_argument("--curve", required=True)
    sim.add_argument("--policies", default="shipped-16,shipped-64,unblocked-64,fixed-16,fixed-64,ngram-mod,oracle")
    sim.add_argument("--cap", type=int, default=160)
    sim.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "record":
        Path(args.out).write_text(json.dumps(record(args.model, args.max_tokens, args.threads)) + "\n")
        return 0
    if args.command == "curve":
        sizes = sorted({int(s) for s in args.sizes.split(",")})
        Path(args.out).write_text(json.dumps(measure_curve(args.model, sizes, args.repeats, args.threads),
                                             indent=1) + "\n")
        return 0
    cases = load_traces(json.loads(Path(args.traces).read_text()), args.cap)
    table = cost_table(json.loads(Path(args.curve).read_text()))
    rows = simulate(cases, [p.strip() for p in args.policies.split(",") if p.strip()], table)
    print(json.dumps(rows, indent=1) if args.json else format_rows(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
