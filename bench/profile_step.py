"""Where a drafted request's time goes: qcode's decode loop under Python's profiler, and llama_decode by call size.

    python -m bench.profile_step [--model PATH] [--task NAME] [--drafter ngram] [--max-tokens 160] [--threads 2]

Runs one bench task (tui/bench/tasks.py) plain and drafted, each under cProfile, and prints for both: the wall time
of the decode phase, the time inside llama_decode (by call size: the verify cost curve as the request met it), and
the rest of the loop by function (choosing tokens from the logits, proposing, pricing, rolling back, detokenizing).
Profiling slows Python, not llama.cpp: the Python shares are upper bounds. Progress on stderr, the report on stdout.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import pstats
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from engine import Engine, GenerationRequest, load_settings
from engine.runtime import Runtime
from engine.tasks import build_request
from tui.bench.tasks import default_tasks

# the loop's own work, by the function that does it (file suffix, function name)
PARTS = {
    "choose tokens (argmax of logits rows)": [("sampling.py", "choose_token"), ("sampling.py", "greedy")],
    "read logits (numpy view)": [("runtime.py", "logits")],
    "propose (lookup, plan)": [("plan.py", "propose")],
    "price (controller, cost model)": [("plan.py", "record_cost"), ("plan.py", "verified")],
    "roll back rejected tokens": [("cache.py", "rollback")],
    "detokenize and stream text": [("text_stream.py", "add"), ("runtime.py", "piece")],
    "draft model proposals (its own decode calls included)": [("model_drafter.py", "propose")],
}


class DecodeClock:
    """Times every Runtime.decode call by its size (tokens) while installed."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.by_size: dict[int, list[float]] = defaultdict(list)
        self._decode = runtime.decode

    def __enter__(self) -> DecodeClock:
        def timed(tokens: Sequence[int], start_pos: int, n_logits: int) -> None:
            started = time.perf_counter()
            self._decode(tokens, start_pos, n_logits)
            self.by_size[len(tokens)].append(time.perf_counter() - started)

        self.runtime.decode = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        del self.runtime.decode


def own_time(stats: pstats.Stats, where: list[tuple[str, str]]) -> float:
    """Cumulative seconds of the named functions (outermost calls only)."""
    total = 0.0
    for (path, _line, name), (_cc, _nc, _tt, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if any(path.endswith(suffix) and name == function for suffix, function in where):
            total += cumulative
    return total


def profile(engine: Engine, request: GenerationRequest, drafter: str) -> dict[str, Any]:
    engine.complete(dataclasses.replace(request, max_tokens=1, drafter="none"))  # the prompt in: time decode only
    profiler = cProfile.Profile()
    # a draft model's own runtime: its first calls of a request evaluate the prompt
    plan = engine.draft_plan(drafter)
    draft_runtime = next((s.drafter.runtime for s in (plan.sources if plan else []) if hasattr(s.drafter, "runtime")),
                         None)
    draft_clock = DecodeClock(draft_runtime) if isinstance(draft_runtime, Runtime) else None
    with DecodeClock(engine.runtime) as clock:
        if draft_clock:
            draft_clock.__enter__()
        profiler.enable()
        done = engine.complete(dataclasses.replace(request, drafter=drafter))
        profiler.disable()
        if draft_clock:
            draft_clock.__exit__()
    stats = pstats.Stats(profiler)
    # the first call evaluates the prompt's last token (not decode): leave it out of the decode phase
    sizes = {n: list(v) for n, v in clock.by_size.items()}
    sizes[1] = sizes.get(1, [])[1:]
    inside = sum(sum(v) for v in sizes.values())
    s = done.stats
    parts = {name: round(own_time(stats, where) * 1000, 1) for name, where in PARTS.items()}
    return {
        "drafter": drafter, "tokens": s.completion_tokens, "decode_s": round(s.decode_s, 3),
        "tokens_per_s": round(s.decode_tokens_per_s, 2), "proposed": s.draft_proposed, "accepted": s.draft_accepted,
        "steps": sum(len(v) for v in sizes.values()),
        "inside_llama_decode_s": round(inside, 3),
        "outside_ms_per_step": round((s.decode_s - inside) / max(1, sum(len(v) for v in sizes.values())) * 1000, 3),
        "calls_by_size": {n: {"calls": len(v), "median_ms": round(statistics.median(v) * 1000, 2)}
                          for n, v in sorted(sizes.items()) if v},
        "loop_parts_ms": parts,
        "draft_model_calls_by_size": {
            n: {"calls": len(v), "total_ms": round(sum(v) * 1000, 1)} for n, v in sorted(draft_clock.by_size.items())
        } if draft_clock else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_step", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--task", default="rename shlex.split", help="a bench task's name (or part of it)")
    parser.add_argument("--drafter", default="ngram")
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--draft-model", default=None)
    args = parser.parse_args(argv)
    settings = load_settings(model=args.model, threads=args.threads, draft_model=args.draft_model, draft=args.drafter)
    engine = Engine(settings)
    task = next(t for t in default_tasks() if args.task in t.name)
    request, _ = build_request(engine, task.task)
    request = dataclasses.replace(request, max_tokens=min(request.max_tokens or args.max_tokens, args.max_tokens))
    report = {"model": engine.info.name, "task": task.name, "threads": args.threads,
              "runs": [profile(engine, request, d) for d in ("none", args.drafter)]}
    engine.close()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
