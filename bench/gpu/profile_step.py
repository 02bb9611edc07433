"""Where a verify call and an MTP head step spend their time on the GPU.

    python -m bench.gpu.profile_step --model M.gguf --out profile.json [--depth 1024] [--quick]

1. Wall times, in this process, on qcode's engine loaded as `--draft mtp` (and bare decode calls on contexts with
   0, 3, 7, 17 rollback slots, and with logits for every row or the last only): a verify call of n tokens repeated
   (n = 1, 2, 4, 8: the shape kept, so llama.cpp replays its CUDA graph) and alternating with one-token calls (the
   graph lost), each with its logits rows and argmax and the rollback to one kept token; and the head's proposal of
   d tokens right after a verify call whose rows it must take in first (catch-up included), as the decode loop runs
   it.
2. Per-kernel GPU time of the same verify (4 tokens, repeated) and head step, from Nsight Compute (`ncu`, kernels
   serialised, clocks left alone) when it is on the PATH: this script runs itself under ncu with the regions
   between cudaProfilerStart/Stop, and groups the kernels by stream (the target's context and the head's have one
   each) and by name (mat-vec kernels by weight type: Q4_K the layers, Q6_K the 248,320-row LM heads).
The difference between a call's wall time and its kernels' sum is what the host and the launches cost.
"""

# ruff: noqa: I001  (llama_cpp before numpy: the other order crashed model loads on this CUDA build)
from __future__ import annotations

import llama_cpp

import argparse
import csv
import ctypes
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine import Engine, GenerationRequest, load_settings, sampling

GGML_TYPES = {0: "F32", 1: "F16", 8: "Q8_0", 12: "Q4_K", 14: "Q6_K", 30: "BF16"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def filler(n: int, seed: int) -> list[int]:
    return [int(t) for t in np.random.default_rng(seed).integers(20_000, 90_000, size=n)]


class Regions:
    """The calls profiled, on one engine; each region leaves the context where it found it (plus one token)."""

    def __init__(self, engine: Any, depth: int) -> None:
        self.engine = engine
        self.runtime, self.cache = engine.runtime, engine.cache
        self.cache.reset()
        engine.complete(GenerationRequest(filler(depth, 11), max_tokens=1, drafter="none", stop=()))
        self.drafter = engine.draft_plan("mtp").sources[-1].drafter
        self.rng = np.random.default_rng(5)

    def verify(self, n: int) -> float:
        """One verify call of n tokens: decode, n logits rows and their argmax, rollback to one kept token."""
        runtime, cache = self.runtime, self.cache
        batch = [int(t) for t in self.rng.integers(20_000, 90_000, size=n)]
        position = len(cache.tokens)
        started = time.perf_counter()
        runtime.decode(batch, position, n)
        rows = runtime.logits(n)
        for i in range(n):
            sampling.greedy(rows[i])
        self.engine.notify_decode(batch, 1)
        cache.extend(batch)
        cache.rollback(position + 1)
        return time.perf_counter() - started

    def head(self, depth: int) -> float:
        """The head's proposal of `depth` tokens after a 4-token verify that kept 2 (its rows taken in first)."""
        self.verify_keep(4, 2)
        history = [*self.cache.tokens, int(self.rng.integers(20_000, 90_000))]
        started = time.perf_counter()
        self.drafter.propose(history, depth)
        return time.perf_counter() - started

    def verify_keep(self, n: int, kept: int) -> None:
        runtime, cache = self.runtime, self.cache
        batch = [int(t) for t in self.rng.integers(20_000, 90_000, size=n)]
        position = len(cache.tokens)
        runtime.decode(batch, position, n)
        self.engine.notify_decode(batch, kept)
        cache.extend(batch)
        cache.rollback(position + kept)


def wall_times(engine: Any, depth: int, repeats: int) -> dict[str, Any]:
    regions = Regions(engine, depth)
    out: dict[str, Any] = {"verify_repeated_ms": {}, "verify_after_plain_ms": {}, "head_ms": {}}

    def median_ms(call: Callable[[], float], warm: int = 3) -> float:
        for _ in range(warm):
            call()
        return round(statistics.median(call() for _ in range(repeats)) * 1000, 3)

    for n in (1, 2, 4, 8):
        out["verify_repeated_ms"][n] = median_ms(lambda n=n: regions.verify(n))
    for n in (2, 4, 8):
        def alternating(n: int = n) -> float:
            regions.verify(1)
            return regions.verify(n)
        out["verify_after_plain_ms"][n] = median_ms(alternating)
    for d in (1, 2, 3):
        out["head_ms"][d] = median_ms(lambda d=d: regions.head(d))
    out["rollback_slots"] = engine.runtime.rollback_slots
    return out


def bare_costs(model: Path, depth: int, repeats: int, slot_counts: Sequence[int]) -> dict[str, Any]:
    """A bare loop's decode calls on contexts with `slots` recurrent rollback slots (llama.cpp writes a conv-state
    copy per slot and recurrent layer into every call's graph), n = 1 and 4 tokens repeated (all kept); and, on
    the first, 4 and 8 tokens with logits for every row against for the last only (what the 248,320-row LM head
    costs per extra verified row, its copy to the host included)."""
    from engine.runtime import Runtime, RuntimeConfig

    out: dict[str, Any] = {"slots_ms": {}, "logit_rows_ms": {}}
    prompt = filler(depth, 11)
    for index, slots in enumerate(slot_counts):
        runtime = Runtime(model, RuntimeConfig(n_ctx=depth + 64 * repeats + 64, n_batch=512, kv_type_k="q8_0",
                                               kv_type_v="q8_0", flash_attn=True, gpu_layers=-1, threads=0,
                                               rollback_slots=slots))
        try:
            for at in range(0, depth, 512):
                runtime.decode(prompt[at : at + 512], at, 0)
            position = depth

            def call(n: int, rows: int, runtime: Any = runtime) -> float:
                nonlocal position
                batch = filler(n, position)
                started = time.perf_counter()
                runtime.decode(batch, position, rows)
                logits = runtime.logits(rows)
                for i in range(rows):
                    sampling.greedy(logits[i])
                position += n
                return time.perf_counter() - started

            def median_ms(n: int, rows: int) -> float:
                for _ in range(3):
                    call(n, rows)
                return round(statistics.median(call(n, rows) for _ in range(repeats)) * 1000, 3)

            out["slots_ms"][slots] = {n: median_ms(n, n) for n in (1, 4)}
            if index == 0:
                out["logit_rows_ms"] = {n: {"all_rows": median_ms(n, n), "last_row": median_ms(n, 1)} for n in (4, 8)}
        finally:
            runtime.close()
    return out


def kernel_regions(engine: Any, depth: int, calls: int) -> None:
    """The regions for ncu: verify(4) repeated, then head steps, between cudaProfilerStart and Stop."""
    regions = Regions(engine, depth)
    for _ in range(4):
        regions.verify(4)
        regions.head(3)
    cudart = ctypes.CDLL("libcudart.so.13")
    cudart.cudaProfilerStart()
    for _ in range(calls):
        regions.verify(4)
    for _ in range(calls):
        regions.head(3)
    cudart.cudaProfilerStop()


def kernel_group(name: str) -> str:
    """A kernel's family: the function name, mat-vec kernels with their weight type."""
    match = re.search(r"(mul_mat_vec_q|mul_mat_q|mul_mat_vec_f|mul_mat_f)\w*<\(ggml_type\)(\d+)", name)
    if match:
        return f"{match.group(1)} {GGML_TYPES.get(int(match.group(2)), match.group(2))}"
    base = re.sub(r"^(void|static)\s+", "", name)
    base = re.split(r"[<(]", base, maxsplit=1)[0].strip()
    return base.split("::")[-1] or name[:60]


def parse_ncu(text: str, calls: int) -> dict[str, Any]:
    """ncu's CSV (one row per kernel and metric) -> per stream: kernels and ms per call, by family."""
    rows = list(csv.DictReader(io.StringIO(text[text.index('"ID"'):])))
    streams: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(row["Metric Value"].replace(",", ""))
        unit = row.get("Metric Unit", "nsecond")
        ms = value / 1e6 if unit.startswith("n") else value / 1e3 if unit.startswith("u") else value
        streams[row.get("Stream", "?")][kernel_group(row["Kernel Name"])].append(ms)
    out: dict[str, Any] = {}
    for stream, groups in streams.items():
        total = sum(sum(v) for v in groups.values())
        top = sorted(groups.items(), key=lambda kv: -sum(kv[1]))
        out[stream] = {
            "kernels_per_call": round(sum(len(v) for v in groups.values()) / calls, 1),
            "gpu_ms_per_call": round(total / calls, 4),
            "by_kernel": {name: {"ms_per_call": round(sum(v) / calls, 4), "launches_per_call": round(len(v) / calls, 1),
                                 "share": round(sum(v) / total, 4)} for name, v in top[:24]},
        }
    return out


def ncu_binary() -> str | None:
    found = shutil.which("ncu")
    if found:
        return found
    for candidate in sorted(Path("/opt/nvidia").glob("nsight-compute/*/ncu"), reverse=True):
        return str(candidate)
    return None


def make_engine(model: Path, n_ctx: int) -> Any:
    return Engine(load_settings(model=model, n_ctx=n_ctx, draft="mtp", kv_type_k="q8_0", kv_type_v="q8_0"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.profile_step", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--depth", type=int, default=1024)
    parser.add_argument("--calls", type=int, default=5, help="calls of each region under ncu")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--kernels-only", action="store_true", help=argparse.SUPPRESS)  # the run under ncu
    parser.add_argument("--no-ncu", action="store_true")
    parser.add_argument("--slots", default="7,0,3,17", help="rollback-slot counts of the bare-call contexts")
    args = parser.parse_args(argv)
    n_ctx = args.depth + 512
    if args.kernels_only:
        engine = make_engine(args.model, n_ctx)
        try:
            kernel_regions(engine, args.depth, args.calls)
        finally:
            engine.close()
        return 0
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "depth": args.depth,
                              "llama_cpp_python": llama_cpp.__version__}
    engine = make_engine(args.model, n_ctx)
    try:
        result["wall"] = wall_times(engine, args.depth, args.repeats)
    finally:
        engine.close()
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    log(f"wall times: {result['wall']}")
    slot_counts = [int(x) for x in args.slots.split(",") if x.strip()]
    if slot_counts:
        result["bare"] = bare_costs(args.model, args.depth, args.repeats, slot_counts)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        log(f"bare calls: {result['bare']}")
    ncu = None if args.no_ncu else ncu_binary()
    if ncu:
        command = [ncu, "--profile-from-start", "off", "--clock-control", "none", "--metrics",
                   "gpu__time_duration.sum", "--csv", "--print-units", "base", "--target-processes", "all",
                   sys.executable, "-m", "bench.gpu.profile_step", "--model", str(args.model), "--out", "/dev/null",
                   "--depth", str(args.depth), "--calls", str(args.calls), "--kernels-only"]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
        result["ncu_s"] = round(time.perf_counter() - started, 1)
        try:
            result["kernels"] = parse_ncu(done.stdout, args.calls)
        except (ValueError, KeyError) as exc:
            result["ncu_error"] = f"{type(exc).__name__}: {exc}; rc {done.returncode}; {done.stderr[-1500:]}"
        log(f"ncu: {result['ncu_s']} s, rc {done.returncode}")
    else:
        result["kernels"] = None
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for stream, data in (result.get("kernels") or {}).items():
        top = ", ".join(f"{k} {v['ms_per_call']}" for k, v in list(data["by_kernel"].items())[:6])
        print(f"stream {stream}: {data['gpu_ms_per_call']} ms GPU per call, {data['kernels_per_call']} kernels: {top}")
    print(f"wall: {result['wall']}")
    print(f"bare: {result.get('bare')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
