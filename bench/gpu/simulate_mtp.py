"""The MTP head at a controlled acceptance on a simulated H200 clock: the qcode side of mtp_duel.py, without a GPU.

    python -m bench.gpu.simulate_mtp [--rates 1,0.8,0.6,0.4] [--tokens 256] [--requests 5] [--head full|ranked]
                                     [--capture-ms 12] [--json]

The walk of bench/gpu/synth27b.py --controlled: the answer walks a cycle of distinct tokens, and the head guesses the
token after a walk token right exactly where that token is "good" (a share `rate` of each cycle, placed at random).
Every request runs through the engine's own drafting logic: a DraftPlan with the MTP source's DraftController
(positional, one CostModel with price_switches seeded from the card's calibration, kept across requests as the
engine keeps them), fed every decode call's and every proposal's *simulated* seconds. Decode calls are priced by
simulate.py's GraphClock (a new shape runs directly, the second call of it captures the CUDA graph, replays from the
third); proposals by the head's measured cost per call.

Costs are the H200's of bench/gpu/RESULTS.md (runs 11-13): replayed verify calls from the controller's learned curve,
calls among changing shapes from the calibration, proposals of the full and the ranked head. The capture constant
is simulate.py's fit on the H100 (not measured on the H200). Validation: run 13's `auto` (same walk, 256 tokens,
rates 1.0 / 0.8 / 0.6 / 0.4) ran 185.1 / 111.5 / 90.4 / 86.3 tok/s with 1 / 7-9 / 7-10 / 2-4 shape changes a
request; the table printed beside the simulated ones says how close this clock comes. Policies are whatever the
engine's code is: run it before and after a change.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.draft.adaptive import CostModel, DraftController, repeated_key
from engine.draft.base import Drafter
from engine.draft.plan import DraftPlan, DraftSource

from .replay import Case
from .simulate import CostTable, interpolate, simulate_case
from .synth27b import Controlled, Cycle

# ms of one decode call of n tokens on the H200, 27B-shaped model, q8_0 KV, depth 1024, head loaded (RESULTS.md run 13:
# the steady plain step 12.2-12.4, the learned repeated curve 1.12 / 1.30 / 1.55 / 1.65 / 1.87 / 2.07 of it; among
# changing shapes 1.55, 1.95, 2.69 steps for 2, 4, 8 tokens, a plain step right after a draft about 19)
STEADY_MS = {1: 12.4, 2: 13.9, 3: 16.1, 4: 19.2, 5: 20.5, 6: 23.2, 7: 25.7}
CHANGING_MS = {1: 19.0, 2: 19.2, 4: 24.2, 8: 33.4}
# ms of a head proposal of k tokens (one call of catch-up and guess, then one per chained token; RESULTS.md run 11)
HEAD_MS = {"full": {1: 1.65, 2: 2.50, 3: 3.99}, "ranked": {1: 1.04, 2: 1.30, 3: 2.11}}
MAX_DRAFT = 16  # the engine's draft_max on a recurrent model
STEP_MS = 0.2  # what a drafting step spends after its call (the head taking the rows, the rollback): run 13
MEASURED = {1.0: (185.1, "1"), 0.8: (111.5, "7-9"), 0.6: (90.4, "7-10"), 0.4: (86.3, "2-4")}  # run 13's auto


@dataclass
class Walk:
    """The answer and where the head guesses right: good[i] says whether the guess for tokens[i + 1] is right."""

    tokens: list[int]
    good: list[bool]

    @classmethod
    def of(cls, cycle: Cycle, n: int) -> Walk:
        """The duel's walk on the controlled model's cycle (the same good tokens as on the device)."""
        return cls(cycle.walk(0, n + 1), [cycle.good[i % len(cycle.good)] for i in range(n + 1)])


class WalkHead(Drafter):
    """The head on the walk: chains its guesses from the last emitted token; a wrong guess is a token off the walk.
    `spent` (simulated seconds of all its proposals) is the clock the plan times proposals by."""

    name = "mtp"
    max_draft = 6

    def __init__(self, walk: Walk, start: int, cost_ms: Mapping[int, float]) -> None:
        self.walk, self.start, self.cost_ms = walk, start, cost_ms
        self.spent = 0.0

    def clock(self) -> float:
        return self.spent

    def begin(self, prompt: Sequence[int], reference: Sequence[int]) -> None:
        pass

    def propose(self, history: Sequence[int], limit: int) -> list[int]:
        if limit <= 0:
            return []
        self.spent += interpolate(self.cost_ms, limit) / 1000
        at = len(history) - 1 - self.start  # walk index of the last token
        out = []
        right = True
        for k in range(limit):
            i = at + k
            right = right and i < len(self.walk.good) and self.walk.good[i]
            out.append(self.walk.tokens[i + 1] if right and i + 1 < len(self.walk.tokens) else -5 - k)
        return out

    def observe(self, proposed: int, accepted: int) -> None:
        pass


@dataclass
class Request:
    tok_s: float
    steps: int
    proposed: int
    accepted: int
    changes: int


def table(capture_ms: float) -> CostTable:
    return CostTable({n: ms / 1000 for n, ms in CHANGING_MS.items()}, {n: ms / 1000 for n, ms in STEADY_MS.items()},
                     capture=capture_ms / 1000)


def run_request(plan: DraftPlan, walk: Walk, costs: CostTable, head: WalkHead, prompt: list[int]) -> Request:
    """Engine._run's decode loop on the walk (simulate.simulate_case), plus the head's proposals and what each
    drafting step spends after its call."""
    spent = head.spent
    case = Case("walk", "explain", prompt, [], walk.tokens[1:], [])
    result = simulate_case(case, plan, costs, MAX_DRAFT, step_s=STEP_MS / 1000)
    elapsed = result.decode_s + (head.spent - spent)
    changes = sum(1 for a, b in itertools.pairwise(result.lengths) if a != b)
    return Request((result.tokens - 1) / elapsed, result.calls, result.proposed, result.accepted, changes)


def simulate(cycle: Cycle, tokens: int, requests: int, head: str, capture_ms: float) -> list[Request]:
    costs = table(capture_ms)
    walk = Walk.of(cycle, tokens)
    prompt = [7] * 1023 + [walk.tokens[0]]
    model = CostModel(price_switches=True)
    seed: dict[int, float] = {n: costs.changing_s(n) for n in range(1, 8)}
    seed.update({repeated_key(n): costs.steady_s(n) for n in range(1, 8)})
    model.seed(seed)
    controller = DraftController(MAX_DRAFT, model, positional=True)
    drafter = WalkHead(walk, len(prompt) - 1, HEAD_MS[head])
    plan = DraftPlan("mtp", [DraftSource(drafter, controller, costly=True)], clock=drafter.clock)
    return [run_request(plan, walk, costs, drafter, prompt) for _ in range(requests)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.simulate_mtp", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1,0.8,0.6,0.4", help="some of the controlled model's rates")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--requests", type=int, default=5, help="the first is the duel's warm-up, left out")
    parser.add_argument("--head", choices=sorted(HEAD_MS), default="full")
    parser.add_argument("--capture-ms", type=float, default=12.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    plain = 1000 / STEADY_MS[1]  # tok/s of steady plain steps with the head loaded
    out: list[dict[str, Any]] = []
    wanted = {float(r) for r in args.rates.split(",")}
    # the device model's cycles (each rate's walk is seeded by its place among all four): a subset of them
    for cycle in (c for c in Controlled().cycles() if c.rate in wanted):
        rate = cycle.rate
        runs = simulate(cycle, args.tokens, max(args.requests, 2), args.head, args.capture_ms)[1:]
        tok_s = statistics.median(r.tok_s for r in runs)
        out.append({"rate": rate, "tok_s": round(tok_s, 1), "vs_plain": round(tok_s / plain, 3),
                    "changes": [r.changes for r in runs], "steps": [r.steps for r in runs],
                    "proposed": [r.proposed for r in runs], "accepted": [r.accepted for r in runs],
                    "measured_run13": MEASURED.get(rate)})
    if args.json:
        print(json.dumps({"head": args.head, "capture_ms": args.capture_ms, "plain_tok_s": round(plain, 1),
                          "rates": out}))
        return 0
    print(f"head {args.head}, capture {args.capture_ms} ms, plain {plain:.1f} tok/s")
    print("| rate | simulated tok/s | vs plain | shape changes | steps | proposed / accepted | run 13 auto (changes) |")
    print("|---|---|---|---|---|---|---|")
    for row in out:
        measured = row["measured_run13"]
        print(f"| {row['rate']} | {row['tok_s']} | {row['vs_plain']}x | {row['changes']} | {row['steps']} | "
              f"{row['proposed']} / {row['accepted']} | {measured[0] if measured else '-'} "
              f"({measured[1] if measured else '-'}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
