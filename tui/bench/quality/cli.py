"""`qcode bench --quality`: run the quality cases on one or more models; a table per model (or --json) on
stdout, progress on stderr. Greedy decoding and a fixed seed, so a run is repeatable on one machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.errors import QcodeError

from .corpus import KINDS, REWRITE_KINDS, SEED, Case, load_cases, load_subjects
from .run import Outcome, run_case
from .sandbox import DEFAULT_TIMEOUT_S

PROG = "qcode bench --quality"
# infill windows by default: the whole of every subject file (the completion's windows before they followed the
# measured prompt cost), so the score is the model's and the same on every machine; --fim-windows measured takes
# the windows this machine's completions use (they shrink with a slow or busy machine's prompt cost)
FULL_WINDOWS = (1536, 512, 0)


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def select_cases(cases: Sequence[Case], quick: bool, kinds: str, names: str) -> list[Case]:
    chosen = [c for c in cases if c.quick] if quick else list(cases)
    if kinds:
        wanted_kinds = {k.strip() for k in kinds.split(",") if k.strip()}
        unknown = wanted_kinds - set(KINDS)
        if unknown:
            raise QcodeError(f"unknown kind {sorted(unknown)[0]!r}; choose from {', '.join(KINDS)}")
        chosen = [c for c in chosen if c.kind in wanted_kinds]
    if names:
        wanted = [w.strip() for w in names.split(",") if w.strip()]
        chosen = [c for c in chosen if any(w in c.id for w in wanted)]
    if not chosen:
        raise QcodeError("no case matches --kinds/--cases")
    return chosen


def summarize(outcomes: Sequence[Outcome]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        mine = [o for o in outcomes if o.kind == kind]
        if mine:
            passed = sum(o.passed for o in mine)
            summary[kind] = {"passed": passed, "cases": len(mine), "rate": round(passed / len(mine), 3)}
    return summary


def rewrite_counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    rewrites = [o for o in outcomes if o.kind in REWRITE_KINDS]
    return {
        "rewrites": len(rewrites),
        "written": sum(o.written for o in rewrites),
        "written_unparsable": sum(o.written and o.written_parses is False for o in rewrites),
        "refused": sum(bool(o.refused) for o in rewrites),
    }


def _label(model: str | None) -> str:
    """A model's name in the table: its registry name, or a GGUF path's file name without .gguf."""
    if not model:
        return "default"
    return Path(model).stem if model.endswith(".gguf") or "/" in model else model


def run_model(
    model: str | None, cases: Sequence[Case], args: argparse.Namespace, say: Callable[[str], None]
) -> dict[str, Any]:
    from engine.loader import open_backend
    from engine.settings import load_settings

    # exact batches: a drafted answer is the plain greedy answer bit for bit, however the drafter's timing-driven
    # choices fall, so a run gives the same answers on any machine load
    settings = load_settings(model=model, threads=args.threads, draft=args.draft, n_ctx=args.ctx,
                             temperature=0.0, seed=SEED, exact_batches=True)
    label = _label(model)
    say(f"loading {label}")
    started = time.perf_counter()
    engine = open_backend(settings)
    load_s = time.perf_counter() - started
    subjects = load_subjects()
    outcomes: list[Outcome] = []
    fim_windows = None
    from engine.completion import CompletionBudget, completion_budget

    windows = None if args.fim_windows == "measured" else CompletionBudget(*FULL_WINDOWS)
    try:
        for index, case in enumerate(cases, 1):
            outcome = run_case(engine, case, subjects[case.subject], args.timeout, windows)
            outcomes.append(outcome)
            verdict = "pass" if outcome.passed else f"FAIL ({outcome.reason[:100]})"
            say(f"[{index}/{len(cases)}] {label} {case.id}: {verdict} ({outcome.seconds:.1f} s; {outcome.speed})")
        if any(case.kind.startswith("infill") for case in cases):
            fim_windows = {"kind": args.fim_windows, **asdict(windows or completion_budget(engine))}
    finally:
        engine.close()
    info = engine.info
    return {
        "model": label, "name": info.name, "quant": info.quant, "file": str(info.path),
        "threads": settings.threads, "draft": settings.draft, "exact_batches": settings.exact_batches,
        "n_ctx": settings.n_ctx,
        "load_s": round(load_s, 1), "fim_windows": fim_windows, "run_s": round(sum(o.seconds for o in outcomes), 1),
        "summary": summarize(outcomes), "rewrite_counts": rewrite_counts(outcomes),
        "cases": [o.to_dict() for o in outcomes],
    }


def format_table(result: dict[str, Any]) -> str:
    counts = result["rewrite_counts"]
    total = sum(row["cases"] for row in result["summary"].values())
    lines = [
        f"{result['model']}: {result['name']} ({result['quant']}), {total} cases in {result['run_s']:.0f} s",
        f"{'kind':14} {'passed':>6} {'cases':>6} {'rate':>6}",
    ]
    for kind, row in result["summary"].items():
        lines.append(f"{kind:14} {row['passed']:6d} {row['cases']:6d} {row['rate']:6.0%}")
    windows = result.get("fim_windows")
    if windows:
        lines.append(f"infill windows ({windows['kind']}, tokens): {windows['prefix_tokens']} before the cursor, "
                     f"{windows['suffix_tokens']} after it, {windows['context_tokens']} of other files")
    lines.append(
        f"rewrites written although they do not parse: {counts['written_unparsable']} "
        f"(written {counts['written']}, refused {counts['refused']}, of {counts['rewrites']})"
    )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("--model", action="append", default=None,
                        help="model name or GGUF path; repeat to compare models (default: the default model)")
    parser.add_argument("--quick", action="store_true", help="a small subset: one or two cases of each kind")
    parser.add_argument("--kinds", default="", help=f"only these kinds (comma-separated): {', '.join(KINDS)}")
    parser.add_argument("--cases", default="", help="only cases whose id contains one of these (comma-separated)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--draft", default=None, help="drafter (default: the setting); answers stay greedy")
    parser.add_argument("--ctx", type=int, default=None, help="context size in tokens (default: the setting)")
    parser.add_argument("--fim-windows", choices=("full", "measured"), default="full",
                        help="infill prompt windows: the whole file (default), or what this machine's measured "
                             "prompt cost gives completions")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds the checks may run")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results = []
    started = time.perf_counter()
    try:
        cases = select_cases(load_cases(), args.quick, args.kinds, args.cases)
        for model in args.model or [None]:
            result = run_model(model, cases, args, _say)
            results.append(result)
            if not args.json:
                print(format_table(result) + "\n", flush=True)
    except QcodeError as exc:
        _say(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    if args.json:
        print(json.dumps({
            "benchmark": "quality", "seed": SEED, "date": datetime.date.today().isoformat(),
            "command": "qcode bench --quality " + " ".join(argv if argv is not None else sys.argv[1:]),
            "python": platform.python_version(), "total_s": round(time.perf_counter() - started, 1),
            "models": results,
        }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
