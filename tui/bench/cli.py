"""`qcode bench`: tasks x drafters -> decode tok/s, acceptance, mean accepted length, speedup, identical output.

Runs are interleaved (every drafter once per round) and the median of the rounds is reported, so a machine whose
speed drifts does not favour one drafter. Progress goes to stderr, the table (or --json) to stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine import Engine, QcodeError, load_settings
from engine.tasks import build_request

from .lossless import first_divergence
from .tasks import BenchTask, default_tasks


@dataclass
class Cell:
    """One task under one drafter, over all rounds."""

    tokens_per_s: list[float] = field(default_factory=list)
    proposed: int = 0
    accepted: int = 0
    steps: int = 0
    completion_tokens: int = 0
    identical: bool | None = None  # same tokens as the plain run (None for the plain run itself)
    divergence: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.tokens_per_s) if self.tokens_per_s else 0.0


def run_bench(
    engine: Engine, tasks: Sequence[BenchTask], drafters: Sequence[str], rounds: int, max_tokens: int
) -> dict[str, dict[str, Cell]]:
    results: dict[str, dict[str, Cell]] = {t.name: {d: Cell() for d in drafters} for t in tasks}
    for task in tasks:
        request, _ = build_request(engine, task.task)
        request = _with(request, max_tokens=min(request.max_tokens or max_tokens, max_tokens))
        plain_tokens: tuple[int, ...] | None = None
        engine.complete(_with(request, max_tokens=1, drafter="none"))  # prompt into the cache: time decode only
        for round_index in range(rounds):
            for drafter in drafters:
                started = time.perf_counter()
                done = engine.complete(_with(request, drafter=drafter))
                cell = results[task.name][drafter]
                cell.tokens_per_s.append(done.stats.decode_tokens_per_s)
                if round_index == 0:
                    cell.proposed, cell.accepted = done.stats.draft_proposed, done.stats.draft_accepted
                    cell.steps, cell.completion_tokens = done.stats.draft_steps, done.stats.completion_tokens
                    if drafter == "none":
                        plain_tokens = done.tokens
                    elif plain_tokens is not None:
                        cell.identical = done.tokens == plain_tokens
                        if not cell.identical:
                            split = first_divergence(engine, engine.prompt_tokens(request), plain_tokens,
                                                     done.tokens)
                            if split is not None:
                                cell.divergence = f"token {split.position}, plain gap {split.plain_gap:.2f}"
                print(
                    f"qcode bench: {task.name} [{drafter}] round {round_index + 1}/{rounds}: "
                    f"{done.stats.decode_tokens_per_s:.1f} tok/s ({time.perf_counter() - started:.1f} s)",
                    file=sys.stderr, flush=True,
                )
    return results


def _with(request: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(request, **changes)


def summarize(tasks: Sequence[BenchTask], results: dict[str, dict[str, Cell]]) -> list[dict[str, Any]]:
    rows = []
    for task in tasks:
        base = results[task.name].get("none")
        for drafter, cell in results[task.name].items():
            rows.append({
                "task": task.name,
                "kind": task.kind,
                "drafter": drafter,
                "decode_tokens_per_s": round(cell.median, 2),
                "runs": [round(x, 2) for x in cell.tokens_per_s],
                "acceptance": round(cell.accepted / cell.proposed, 3) if cell.proposed else None,
                "mean_accepted_length": round(cell.accepted / cell.steps, 2) if cell.steps else None,
                "speedup": round(cell.median / base.median, 3) if base and base.median else None,
                "completion_tokens": cell.completion_tokens,
                "identical_to_plain": cell.identical,
                "divergence": cell.divergence or None,
            })
    return rows


def medians_by_kind(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        if row["drafter"] == "none" or row["speedup"] is None:
            continue
        out.setdefault(row["kind"], {}).setdefault(row["drafter"], 0.0)
    for kind, by_drafter in out.items():
        for drafter in by_drafter:
            values = [r["speedup"] for r in rows if r["kind"] == kind and r["drafter"] == drafter]
            by_drafter[drafter] = round(statistics.median(values), 3)
    return out


def format_table(rows: list[dict[str, Any]]) -> str:
    header = f"{'task':36} {'drafter':7} {'tok/s':>7} {'speedup':>7} {'accept':>6} {'mean len':>8}  identical"
    lines = [header, "-" * len(header)]
    for row in rows:
        accept = f"{row['acceptance']:.2f}" if row["acceptance"] is not None else "-"
        mean = f"{row['mean_accepted_length']:.1f}" if row["mean_accepted_length"] is not None else "-"
        speed = f"{row['speedup']:.2f}x" if row["speedup"] is not None else "-"
        same = {None: "-", True: "yes"}.get(row["identical_to_plain"], f"no ({row['divergence']})")
        lines.append(f"{row['task'][:36]:36} {row['drafter']:7} {row['decode_tokens_per_s']:7.1f} {speed:>7} "
                     f"{accept:>6} {mean:>8}  {same}")
    for kind, by_drafter in medians_by_kind(rows).items():
        for drafter, value in by_drafter.items():
            lines.append(f"median speedup, {kind} tasks, {drafter}: {value:.2f}x")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    rest = list(sys.argv[1:] if argv is None else argv)
    if "--completion" in rest:  # completion latency and infills: their own benchmark
        from . import completion

        rest.remove("--completion")
        return completion.main(rest)
    if "--quality" in rest:  # answers checked by running them: their own benchmark
        from .quality import cli as quality

        rest.remove("--quality")
        return quality.main(rest)
    parser = argparse.ArgumentParser(prog="qcode bench", description=__doc__)
    parser.add_argument("--drafters", default="none,ngram", help="comma-separated: none,ngram,mtp,model")
    parser.add_argument("--rounds", type=int, default=3, help="runs per task and drafter (median reported)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--tasks", default="", help="only tasks whose name contains one of these (comma-separated)")
    parser.add_argument("--model", default=None)
    parser.add_argument("--draft-model", default=None)
    parser.add_argument("--kv-type", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--exact-batches", action="store_true", default=None)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--completion", action="store_true",
                        help="completion latency after a one-character edit (qcode bench --completion --help)")
    parser.add_argument("--quality", action="store_true",
                        help="how often answers are right, checked by running them (qcode bench --quality --help)")
    args = parser.parse_args(rest)
    drafters = [d.strip() for d in args.drafters.split(",") if d.strip()]
    if "none" not in drafters:
        drafters.insert(0, "none")
    try:
        settings = load_settings(
            model=args.model, draft_model=args.draft_model, kv_type_k=args.kv_type, kv_type_v=args.kv_type,
            threads=args.threads, exact_batches=args.exact_batches,
        )
        tasks = default_tasks()
        if args.tasks:
            wanted = [w.strip() for w in args.tasks.split(",")]
            tasks = [t for t in tasks if any(w in t.name for w in wanted)]
        engine = Engine(settings, progress=lambda m, f: print(f"qcode bench: {m}", file=sys.stderr)
                        if f in (None, 0.0, 1.0) else None)
        results = run_bench(engine, tasks, drafters, max(1, args.rounds), args.max_tokens)
    except QcodeError as exc:
        print(f"qcode bench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("qcode bench: interrupted", file=sys.stderr)
        return 130
    rows = summarize(tasks, results)
    if args.json:
        meta = {"model": engine.info.name, "quant": engine.info.quant, "kv_type": engine.kv_type,
                "threads": settings.threads, "exact_batches": settings.exact_batches, "rounds": args.rounds}
        print(json.dumps({"meta": meta, "rows": rows, "median_speedup": medians_by_kind(rows)}, indent=2))
    else:
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
