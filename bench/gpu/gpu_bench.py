"""qcode's engine on a Qwen3.6-27B-shaped model: the measurements of issue 6, as one JSON file.

    python -m bench.gpu.gpu_bench --model M.gguf --model-info M.json --out results.json [--kv q8_0,f16]
                                  [--deadline SECONDS] [--quick]

Per KV type: GPU memory, prompt processing (qcode's engine, and a bare llama_decode loop over the same chunks),
decode tok/s of qcode's loop against a bare llama_decode + argmax loop (interleaved, medians) and its share of the
bandwidth bound, and the verify-cost curve c(n) for n = 1..17 tokens in one decode call (logits rows, argmax and the
rollback of KV and recurrent state included). For the first KV type also: the replay of recorded n-gram acceptance
(bench/gpu/replay.py) and, on the MTP-loaded engine, the MTP head's costs and a replay with cited acceptance rates.

Phases run in order of importance and are skipped once the deadline is near; results are written after each phase.
"""

# ruff: noqa: I001  (llama_cpp before numpy: the other order crashed model loads on this CUDA build)
from __future__ import annotations

import llama_cpp

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine import Engine, GenerationRequest, load_settings, sampling
from engine.draft import adaptive
from engine.runtime import Runtime

from . import replay

HERE = Path(__file__).resolve().parent
CURVE_SIZES = [*range(1, 18), 24, 32]


def checkpoint_cost(engine: Any, depth: int) -> dict[str, Any]:
    """One recurrent-state checkpoint at `depth`: Runtime.save_state and load_state, medians of 3."""
    engine.cache.reset()
    engine.complete(GenerationRequest(filler(depth, 17), max_tokens=1, drafter="none", stop=()))
    runtime = engine.runtime
    save_runs, load_runs = [], []
    for _ in range(3):
        started = time.perf_counter()
        saved = runtime.save_state(partial=True)
        save_runs.append(time.perf_counter() - started)
        started = time.perf_counter()
        runtime.load_state(saved, partial=True)
        load_runs.append(time.perf_counter() - started)
    full = runtime.save_state(partial=False)
    engine.cache.reset()
    return {"depth": depth, "partial_bytes": len(saved), "full_bytes": len(full),
            "save_state_s": round(statistics.median(save_runs), 4),
            "load_state_s": round(statistics.median(load_runs), 4)}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def gpu_memory_mib() -> dict[str, int] | None:
    """Used and total memory of GPU 0 as nvidia-smi reports it (None without one)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used,memory.total,name",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=30)
        used, total, *_ = (part.strip() for part in out.stdout.splitlines()[0].split(","))
        return {"used": int(used), "total": int(total)}
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def filler(n: int, seed: int) -> list[int]:
    """n ordinary text tokens (ids below the Qwen specials); random weights make content irrelevant."""
    return [int(t) for t in np.random.default_rng(seed).integers(1000, 150000, size=n)]


class Deadline:
    def __init__(self, seconds: float | None) -> None:
        self.end = time.monotonic() + seconds if seconds else None

    def left(self) -> float:
        return float("inf") if self.end is None else self.end - time.monotonic()

    def allows(self, needed: float, phase: str, results: dict[str, Any]) -> bool:
        if self.left() >= needed:
            return True
        results.setdefault("skipped", []).append(phase)
        log(f"skipping {phase}: {self.left():.0f} s left, it needs about {needed:.0f}")
        return False


# --- measurements -----------------------------------------------------------------------------------------------
def never_ends(token: int) -> bool:
    """The engine's is_end for timed runs: random weights may emit an end-of-generation token at any step."""
    return False


def prompt_speed(engine: Any, n_tokens: int, repeats: int) -> dict[str, Any]:
    """Prompt tok/s through the engine (checkpoints included) and through bare decode calls of the same chunks."""
    qcode, bare = [], []
    runtime = engine.runtime
    checkpoints = 0
    for rep in range(repeats):
        prompt = filler(n_tokens, 100 + rep)
        engine.cache.reset()
        saved_before = runtime.states_saved
        done = engine.complete(GenerationRequest(prompt, max_tokens=1, drafter="none", stop=()))
        checkpoints = runtime.states_saved - saved_before
        qcode.append(n_tokens / (done.stats.ttft_ms / 1000))
        engine.cache.reset()
        step = runtime.batch_capacity
        started = time.perf_counter()
        for at in range(0, n_tokens, step):
            runtime.decode(prompt[at : at + step], at, 1 if at + step >= n_tokens else 0)
        sampling.greedy(runtime.logits(1)[0])
        bare.append(n_tokens / (time.perf_counter() - started))
        engine.cache.reset()
    return {"tokens": n_tokens, "qcode_tok_s": round(statistics.median(qcode), 1),
            "bare_tok_s": round(statistics.median(bare), 1), "qcode_runs": [round(x, 1) for x in qcode],
            "bare_runs": [round(x, 1) for x in bare], "batch": runtime.batch_capacity,
            "checkpoints_per_prompt": checkpoints}


def bare_decode(runtime: Any, prompt: list[int], n_tokens: int) -> float:
    """tok/s of the plainest loop: one llama_decode and one argmax per token."""
    runtime.clear()
    step = runtime.batch_capacity
    for at in range(0, len(prompt), step):
        runtime.decode(prompt[at : at + step], at, 1 if at + step >= len(prompt) else 0)
    token = sampling.greedy(runtime.logits(1)[0])
    position = len(prompt)
    started = time.perf_counter()
    for _ in range(n_tokens - 1):
        runtime.decode([token], position, 1)
        position += 1
        token = sampling.greedy(runtime.logits(1)[0])
    return (n_tokens - 1) / (time.perf_counter() - started)


def decode_speed(engine: Any, depth: int, n_tokens: int, rounds: int, drafter: str = "none") -> dict[str, Any]:
    prompt = filler(depth, 7)
    qcode, bare = [], []
    for _ in range(rounds):
        engine.cache.reset()
        done = engine.complete(GenerationRequest(prompt, max_tokens=n_tokens, drafter=drafter, stop=()))
        qcode.append(done.stats.decode_tokens_per_s)
        engine.cache.reset()
        bare.append(bare_decode(engine.runtime, prompt, n_tokens))
        engine.cache.reset()
    q, b = statistics.median(qcode), statistics.median(bare)
    return {"depth": depth, "tokens": n_tokens, "qcode_tok_s": round(q, 2), "bare_tok_s": round(b, 2),
            "ratio": round(q / b, 4), "qcode_runs": [round(x, 2) for x in qcode],
            "bare_runs": [round(x, 2) for x in bare]}


def decode_with_slots(engine: Any, depth: int, n_tokens: int, rounds: int, slots: int) -> dict[str, Any]:
    """The bare loop on a second context of the same model with `slots` recurrent rollback slots (n_rs_seq)."""
    from dataclasses import replace

    runtime = Runtime(engine.info.path, replace(engine.runtime.config, rollback_slots=slots))
    try:
        prompt = filler(depth, 7)
        runs = [bare_decode(runtime, prompt, n_tokens) for _ in range(rounds)]
    finally:
        runtime.close()
    return {"depth": depth, "tokens": n_tokens, "bare_tok_s": round(statistics.median(runs), 2),
            "runs": [round(x, 2) for x in runs], "rollback_slots": slots,
            "with_slots": engine.runtime.rollback_slots}


def cost_curve(engine: Any, depth: int, sizes: Sequence[int], repeats: int, observe: bool = False,
               steady: bool = False) -> dict[str, Any]:
    """Seconds of one verify step of n tokens: decode with n logits rows, argmax of each, rollback to 1 kept
    (for n beyond the recurrent rollback slots, to n - slots kept).

    Sizes are visited round-robin after a warm-up (every call changes shape, as drafting does), or with `steady`
    each size `repeats` + 3 times in a row (the shape repeats, so llama.cpp can replay a captured CUDA graph; the
    first 3 are dropped). Medians. `observe` hands each call to the drafters that follow the target (MTP), as the
    decode loop does.
    """
    runtime, cache = engine.runtime, engine.cache
    cache.reset()
    engine.complete(GenerationRequest(filler(depth, 11), max_tokens=1, drafter="none", stop=()))
    parts: dict[int, dict[str, list[float]]] = {n: {"decode": [], "pick": [], "rollback": []} for n in sizes}
    rng = np.random.default_rng(5)

    def one(n: int) -> tuple[float, float, float]:
        batch = [int(t) for t in rng.integers(1000, 150000, size=n)]
        position = len(cache.tokens)
        t0 = time.perf_counter()
        runtime.decode(batch, position, n)
        rows = runtime.logits(n)
        t1 = time.perf_counter()
        for i in range(n):
            sampling.greedy(rows[i])
        t2 = time.perf_counter()
        if observe:
            engine.notify_decode(batch, 1)
        cache.extend(batch)
        # recurrent state rolls back at most rollback_slots tokens (draft_max + 1): larger batches keep more
        keep = max(1, n - runtime.rollback_slots) if cache.recurrent else 1
        if not cache.rollback(position + keep):
            raise RuntimeError(f"rollback of {n - keep} tokens refused")
        t3 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2

    def keep(n: int) -> None:
        d, p, r = one(n)
        parts[n]["decode"].append(d)
        parts[n]["pick"].append(p)
        parts[n]["rollback"].append(r)

    if steady:
        for n in sizes:
            for _ in range(3):
                one(n)
            for _ in range(repeats):
                keep(n)
    else:
        for n in sizes:  # warm-up: the first call of each shape builds its graph
            one(n)
        for _ in range(repeats):
            for n in sizes:
                keep(n)
    out: dict[str, Any] = {"depth": depth, "repeats": repeats, "steady": steady, "ms": {}, "relative": {}}
    totals = {}
    for n in sizes:
        med = {key: statistics.median(values) for key, values in parts[n].items()}
        totals[n] = sum(med.values())
        out["ms"][n] = {key: round(value * 1000, 3) for key, value in med.items()} | {
            "total": round(totals[n] * 1000, 3)}
    for n in sizes:
        out["relative"][n] = round(totals[n] / totals[sizes[0]], 3)
    out["seconds"] = {n: totals[n] for n in sizes}
    cache.reset()
    return out


def engine_calibration(engine: Any) -> dict[str, Any]:
    """The engine's own per-card calibration (Engine.calibrate_costs, as at first load on a GPU): how long it takes,
    the curve relative to the steady plain step, and the draft length the seeded controller picks per acceptance."""
    at_load = engine.costs.snapshot()
    started = time.perf_counter()
    seconds = engine.calibrate_costs()
    took = time.perf_counter() - started
    steady = seconds[adaptive.STEADY]
    controller = adaptive.DraftController(engine.draft_max, engine.costs)
    return {"seconds": round(took, 2), "steady_ms": round(steady * 1000, 3),
            "ms": {n: round(s * 1000, 3) for n, s in seconds.items()},
            "relative_to_steady": {n: round(s / steady, 3) for n, s in seconds.items() if n},
            "at_load_ms": {n: round(s * 1000, 3) for n, s in at_load.items()},
            "switch_penalty": round(seconds[1] / steady - 1, 3),  # a one-token call among drafts vs a steady one
            "best_k_by_acceptance": {f"{a:.2f}": best_k(controller, a) for a in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)}}


def mtp_costs(engine: Any, depth: int, repeats: int) -> dict[str, Any]:
    """The MTP head's cost through qcode's MtpDrafter: a propose of depth d (1 head call with the LM head, then d-1
    chained calls), and a propose after m verified tokens (the head first catches up on their m rows)."""
    drafter = replay.mtp_head(engine)
    runtime, cache = engine.runtime, engine.cache
    cache.reset()
    engine.complete(GenerationRequest(filler(depth, 13), max_tokens=1, drafter="none", stop=()))
    pending = 4242
    out: dict[str, Any] = {"depth_ms": {}, "catch_up_ms": {}}
    try:
        history = [*cache.tokens, pending]
        for d in [1, 2, 3, 4, 6]:
            times = []
            for _ in range(repeats + 1):
                started = time.perf_counter()
                draft = drafter.propose(history, d)
                times.append(time.perf_counter() - started)
                drafter.observe(len(draft), 0)
            out["depth_ms"][d] = round(statistics.median(times[1:]) * 1000, 3)
            out.setdefault("depth_len", {})[d] = len(draft)
        rng = np.random.default_rng(3)
        for m in [1, 2, 4, 8, 16]:
            times = []
            for _ in range(repeats + 1):
                position = len(cache.tokens)
                batch = [pending, *(int(t) for t in rng.integers(1000, 150000, size=m - 1))]
                runtime.decode(batch, position, m)
                engine.notify_decode(batch, m)  # all m kept: the head has m new rows to take in
                cache.extend(batch)
                hist = [*cache.tokens, pending]
                started = time.perf_counter()
                draft = drafter.propose(hist, 1)
                times.append(time.perf_counter() - started)
                drafter.observe(len(draft), 0)
            out["catch_up_ms"][m] = round(statistics.median(times[1:]) * 1000, 3)
    finally:
        cache.reset()
    return out


def copy_bandwidth() -> dict[str, Any] | None:
    """bench/gpu/bandwidth.py in a child process (PyTorch and llama.cpp need not share one)."""
    try:
        done = subprocess.run([sys.executable, "-m", "bench.gpu.bandwidth"], capture_output=True, text=True,
                              timeout=120)
        value: dict[str, Any] = json.loads(done.stdout)
        return value
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


# --- the run ----------------------------------------------------------------------------------------------------
def make_engine(model: Path, kv: str, draft: str, n_ctx: int, draft_max: int | None = None,
                mtp_vocab: int | None = None) -> tuple[Any, float]:
    """The engine and its load seconds (calibration included where this card has none cached). Its tokens are chosen
    by a replay.TruthPicker (the engine's own rule until a replay loads an answer), and no token ends an answer."""
    settings = load_settings(model=model, kv_type_k=kv, kv_type_v=kv, n_ctx=n_ctx, draft=draft,
                             draft_max=draft_max, mtp_vocab=mtp_vocab)
    started = time.perf_counter()
    engine = Engine(settings, choose_token=replay.TruthPicker(), is_end=never_ends)
    load_s = time.perf_counter() - started
    log(f"loaded {model.name} (KV {kv}, draft {draft}) in {load_s:.1f} s")
    return engine, load_s


def plain_engine(model: Path, kv: str, n_ctx: int, quick: bool) -> dict[str, Any]:
    """Drafting off as a user sets it (draft = none: no rollback slots): qcode's decode loop against the bare loop
    on the same context, and prompt speed."""
    engine, load_s = make_engine(model, kv, "none", n_ctx)
    try:
        out = {"rollback_slots": engine.runtime.rollback_slots, "load_s": round(load_s, 1),
               "decode": decode_speed(engine, 128 if quick else 1024, 16 if quick else 128, 1 if quick else 3)}
        out["prompt"] = prompt_speed(engine, 256 if quick else 4096, 2)
        return out
    finally:
        engine.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.gpu_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--model-info", type=Path, help="the JSON synth27b printed (sizes, bytes per token)")
    parser.add_argument("--traces", type=Path, default=HERE / "traces.json")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kv", default="q8_0,f16")
    parser.add_argument("--deadline", type=float, default=None, help="seconds this run may take")
    parser.add_argument("--bandwidth-json", type=Path, default=None,
                        help="what bench/gpu/bandwidth.py printed (else measured here)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for checking the script on a CPU")
    parser.add_argument("--skip", default="", help="comma-separated phases to leave out")
    parser.add_argument("--answers", default="recorded", help="replay sources: recorded, ideal or both")
    parser.add_argument("--cap", type=int, default=160, help="answer tokens replayed per task")
    parser.add_argument("--draft-max", type=int, default=None, help="longest draft (settings default: 16)")
    parser.add_argument("--fixed", default="8,16", help="fixed draft lengths replayed")
    parser.add_argument("--padded", default="8", help="padded (constant-shape) draft lengths replayed")
    parser.add_argument("--mtp-rates", default="0.8", help="per-token MTP acceptance rates replayed")
    parser.add_argument("--policies", default="", help="n-gram replay policies to run (default: all)")
    parser.add_argument("--mtp-answers", default="recorded", choices=("recorded", "ideal"),
                        help="answers the MTP replay uses")
    parser.add_argument("--mtp-shipped-rates", default="0.72,0.85",
                        help="MTP acceptance rates replayed through the engine's own mtp and auto plans")
    parser.add_argument("--mtp-depths", default="2,3", help="MTP draft depths replayed")
    parser.add_argument("--auto-depths", default="2,3", help="MTP depths replayed in auto (n-gram or MTP)")
    parser.add_argument("--kinds", default="edit,explain", help="task kinds replayed")
    parser.add_argument("--mtp-cases", type=int, default=3, help="answers in the MTP replay (a prose one first)")
    parser.add_argument("--mtp-vocab", type=int, default=None,
                        help="the MTP head restricted to this many most frequent tokens (settings' mtp_vocab)")
    parser.add_argument("--slots", default="", help="also time plain decoding with these rollback-slot counts")
    args = parser.parse_args(argv)
    deadline = Deadline(args.deadline)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    quick = args.quick
    kvs = [k.strip() for k in args.kv.split(",") if k.strip()]
    info = json.loads(args.model_info.read_text()) if args.model_info else {}
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "model": info, "host_cpus": os.cpu_count(),
        "llama_cpp_python": llama_cpp.__version__, "gpu_memory_before_mib": gpu_memory_mib(), "kv": {},
        "mtp_vocab": args.mtp_vocab,
    }

    def save() -> None:
        partial = args.out.with_suffix(".part")
        partial.write_text(json.dumps(results, indent=1) + "\n")
        os.replace(partial, args.out)

    def phase(name: str, needed: float, run: Callable[[], Any], where: dict[str, Any]) -> Any:
        if name in skip or not deadline.allows(needed, name, results):
            return None
        started = time.perf_counter()
        try:
            value = run()
        except Exception as exc:  # one failed phase must not lose the others
            log(f"{name} failed: {type(exc).__name__}: {exc}")
            results.setdefault("errors", []).append(f"{name}: {type(exc).__name__}: {exc}")
            save()
            return None
        where[name] = value
        log(f"{name} done in {time.perf_counter() - started:.1f} s")
        save()
        return value

    if args.bandwidth_json:
        results["copy_bandwidth"] = json.loads(args.bandwidth_json.read_text())
    elif not quick:
        results["copy_bandwidth"] = copy_bandwidth()
    save()
    traces = json.loads(args.traces.read_text())
    sources = [x.strip() for x in args.answers.split(",") if x.strip()]
    cap = 48 if quick else args.cap
    recorded = replay.load_cases(traces, cap=cap) if "recorded" in sources else []
    ideal = replay.load_cases(traces, cap=cap, source="ideal") if "ideal" in sources else []
    kinds = {k.strip() for k in args.kinds.split(",")}
    recorded, ideal = [c for c in recorded if c.kind in kinds], [c for c in ideal if c.kind in kinds]
    if quick:
        recorded, ideal = recorded[:2] + recorded[-1:], ideal[:1] + ideal[-1:]

    def ints(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x.strip()]

    def floats(text: str) -> list[float]:
        return [float(x) for x in text.split(",") if x.strip()]
    depths = (256,) if quick else (1024, 4096)
    n_ctx = 2048 if quick else 8192
    made: dict[str, dict[int, float]] = {}  # the calibration: seconds per verify call of n tokens

    def ngram_replay(engine: Any, cases: list[replay.Case], name: str, res: dict[str, Any]) -> None:
        policies = replay.ngram_policies(engine.settings.draft_max, made.get("seconds"),
                                         ngram=(engine.settings.ngram_min, engine.settings.ngram_max),
                                         plain_step=(made.get("plain") or {}).get(1), fixed=ints(args.fixed),
                                         padded=ints(args.padded))
        wanted = {x.strip() for x in args.policies.split(",") if x.strip()}
        if wanted:
            policies = [p for p in policies if p.name in wanted or p.name == "none"]
        def partial(rows: list[dict[str, Any]]) -> None:
            res[name] = rows
            res[f"{name}_summary"] = replay.summarize(rows)
            save()

        rows = phase(name, 40 if not quick else 5, lambda: replay.run_all(
            engine, cases, policies, log=log, time_left=deadline.left, on_case=partial), res)
        if rows:
            res[f"{name}_summary"] = replay.summarize(rows)

    def run_kv(kv: str, primary: bool) -> None:
        """Every measurement for one KV type; the primary one also calibrates and replays."""
        engine, load_s = make_engine(args.model, kv, "ngram", n_ctx, args.draft_max)
        res: dict[str, Any] = {"gpu_memory_loaded_mib": gpu_memory_mib(), "load_s": round(load_s, 1)}
        results["kv"][kv] = res
        save()
        if primary:
            phase("checkpoint", 15, lambda: checkpoint_cost(engine, 256 if quick else 4096), res)
        phase("prompt", 10, lambda: prompt_speed(engine, 256 if quick else 4096, 2), res)
        phase("decode", 20, lambda: decode_speed(engine, 128 if quick else 1024, 16 if quick else 128,
                                                 1 if quick else 3), res)
        if primary:  # no slots at all: the `plain` phase, on an engine loaded with drafting off
            for slots in ints(args.slots):
                phase(f"decode_slots_{slots}", 12, lambda slots=slots: decode_with_slots(
                    engine, 128 if quick else 1024, 16 if quick else 128, 1 if quick else 2, slots), res)
        curves: dict[str, Any] = {}
        res["cost_curve"] = curves
        for depth in depths:
            sizes = CURVE_SIZES if not quick else [1, 2, 4, 8, 17]
            if engine.settings.draft_max + 1 not in sizes:
                sizes = sorted({*sizes, engine.settings.draft_max + 1})
            curve = phase(f"depth {depth}", 8, lambda depth=depth, sizes=sizes: cost_curve(
                engine, depth, sizes, 2 if quick else 6), curves)
            if primary and curve and "seconds" not in made:
                made["seconds"] = {int(n): t for n, t in curve["seconds"].items()
                                   if n <= engine.settings.draft_max + 1}
            if not primary:
                break  # one depth is enough for the second KV type
        if primary:
            steady = phase("steady 1024", 6, lambda: cost_curve(
                engine, depths[0], [1, 2, 3, 4, 5, 6, 8, 9, 12, 16, 17], 2 if quick else 5, steady=True), curves)
            if steady:
                made["plain"] = {1: steady["seconds"][1]}
        if primary:
            phase("calibration", 10, lambda: engine_calibration(engine), res)
        if primary and recorded:
            ngram_replay(engine, recorded, "replay", res)
        res["gpu_memory_peak_mib"] = gpu_memory_mib()
        save()
        engine.close()

    def run_mtp(kv: str) -> None:
        # loaded as `auto` is (n-gram drafts up to draft_max, so as many rollback slots); `--draft mtp` alone gets
        # slots for the head's drafts only (engine/runtime.py)
        engine, _ = make_engine(args.model, kv, "auto", n_ctx, mtp_vocab=args.mtp_vocab)
        res: dict[str, Any] = {"kv": kv, "gpu_memory_loaded_mib": gpu_memory_mib(),
                               "rollback_slots": engine.runtime.rollback_slots,
                               "slot_steps_ms": {n: round(t * 1000, 3) for n, t in engine.slot_steps.items()}}
        results["mtp"] = res
        depth = depths[0]
        phase("decode_with_head", 15, lambda: decode_speed(engine, 128 if quick else 1024, 16 if quick else 128,
                                                           1 if quick else 2), res)
        phase("costs", 10, lambda: mtp_costs(engine, depth, 2 if quick else 6), res)
        phase("cost_curve_with_head", 8, lambda: cost_curve(engine, depth, [1, 2, 3, 4, 5, 7, 9, 17],
                                                               2 if quick else 6, observe=True), res)
        pool = (ideal or recorded) if args.mtp_answers == "ideal" else (recorded or ideal)
        # prose first: where drafting must never be slower, and the deadline cuts the last case
        edits = max(args.mtp_cases - 1, 1) if any(c.kind == "explain" for c in pool) else args.mtp_cases
        mtp_cases = [c for c in pool if c.kind == "explain"][:1] + [c for c in pool if c.kind == "edit"][:edits]
        policies = replay.mtp_policies(engine.settings.draft_max, depths=ints(args.mtp_depths),
                                       rates=floats(args.mtp_rates), auto_depths=ints(args.auto_depths),
                                       shipped_rates=floats(args.mtp_shipped_rates),
                                       ngram=(engine.settings.ngram_min, engine.settings.ngram_max))
        def partial(rows: list[dict[str, Any]]) -> None:
            res["replay"], res["replay_summary"] = rows, replay.summarize(rows)
            save()

        rows = phase("replay", 30 if not quick else 5, lambda: _mtp_replay(engine, mtp_cases, policies,
                                                                            deadline.left, partial), res)
        if rows:
            res["replay_summary"] = replay.summarize(rows)
        res["gpu_memory_peak_mib"] = gpu_memory_mib()
        save()
        engine.close()

    # in order of importance: the deadline drops the last ones first
    if kvs and "kv" not in skip and deadline.allows(60, f"kv {kvs[0]}", results):
        run_kv(kvs[0], True)
    if kvs and "plain" not in skip and deadline.allows(40, "plain", results):
        phase("plain", 40, lambda: plain_engine(args.model, kvs[0], n_ctx, quick), results["kv"].setdefault(kvs[0], {}))
    if kvs and "mtp" not in skip and deadline.allows(45, "mtp", results):
        run_mtp(kvs[0])
    for kv in kvs[1:]:
        if deadline.allows(45, f"kv {kv}", results):
            run_kv(kv, False)
    if kvs and ideal and "replay_ideal" not in skip and deadline.allows(50, "replay_ideal", results):
        engine, _ = make_engine(args.model, kvs[0], "ngram", n_ctx, args.draft_max)
        ngram_replay(engine, ideal, "replay_ideal", results["kv"].setdefault(kvs[0], {}))
        save()
        engine.close()
    results["finished"] = time.strftime("%H:%M:%S")
    save()
    print(summary_text(results))
    return 0


def _mtp_replay(engine: Any, cases: Sequence[replay.Case], policies: Sequence[replay.Policy],
                time_left: Callable[[], float], on_case: Callable[[list[dict[str, Any]]], None]) -> Any:
    return replay.run_all(engine, cases, policies, log=log, time_left=time_left, on_case=on_case)


def best_k(controller: adaptive.DraftController, acceptance: float) -> int:
    controller.restart(acceptance)  # what it has learned: this acceptance
    return controller.best_length()


def summary_text(results: dict[str, Any]) -> str:
    lines = [f"model: {results['model'].get('params', '?')} params, {results['model'].get('file_bytes', 0) / 1e9:.2f}"
             f" GB; copy bandwidth {results.get('copy_bandwidth')}"]
    per_token = results["model"].get("bytes_read_per_token")
    bandwidth = (results.get("copy_bandwidth") or {}).get("gb_s")
    for kv, res in results["kv"].items():
        p, d = res.get("prompt", {}), res.get("decode", {})
        share = ""
        if per_token and bandwidth and d:
            share = f" = {per_token / 1e9 * d['qcode_tok_s'] / bandwidth:.0%} of the bandwidth bound"
        lines.append(f"KV {kv}: prompt {p.get('qcode_tok_s')} tok/s (bare {p.get('bare_tok_s')}); decode qcode "
                     f"{d.get('qcode_tok_s')} vs bare {d.get('bare_tok_s')} tok/s (ratio {d.get('ratio')}){share}; "
                     f"memory {res.get('gpu_memory_peak_mib')}")
        plain = res.get("plain") or {}
        if plain:
            pd, pp = plain.get("decode", {}), plain.get("prompt", {})
            lines.append(f"  draft none ({plain.get('rollback_slots')} rollback slots): decode qcode "
                         f"{pd.get('qcode_tok_s')} vs bare {pd.get('bare_tok_s')} (ratio {pd.get('ratio')}); prompt "
                         f"{pp.get('qcode_tok_s')} vs bare {pp.get('bare_tok_s')}, "
                         f"{pp.get('checkpoints_per_prompt')} checkpoints")
        calibration = res.get("calibration")
        if calibration:
            lines.append(f"  calibration {calibration['seconds']} s, steady {calibration['steady_ms']} ms, relative "
                         f"{calibration['relative_to_steady']}")
        for depth, curve in res.get("cost_curve", {}).items():
            rel = " ".join(f"{n}:{v}" for n, v in curve["relative"].items())
            lines.append(f"  c(n) {depth}: {rel}")
        for name in ("replay", "replay_ideal"):
            for kind, by_policy in res.get(f"{name}_summary", {}).items():
                lines.append(f"  {name} {kind}: " + ", ".join(f"{k} x{v['total']}" for k, v in by_policy.items()))
    mtp = results.get("mtp")
    if mtp:
        lines.append(f"MTP: {mtp.get('costs')}")
        for kind, by_policy in mtp.get("replay_summary", {}).items():
            lines.append(f"  replay {kind}: " + ", ".join(f"{k} x{v['total']}" for k, v in by_policy.items()))
    if results.get("errors"):
        lines.append(f"errors: {results['errors']}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
