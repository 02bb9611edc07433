"""qcode's MTP drafting against llama.cpp's own (llama-server --spec-type draft-mtp), at acceptance set by the model.

    python -m bench.gpu.mtp_duel --model M.gguf --model-info M.json --server BUILD/bin/llama-server --out duel.json
        [--depth 1024] [--tokens 256] [--n-max 2,3,4] [--kv q8_0] [--rounds 2] [--deadline S] [--quick]

The model is synth27b's --controlled one: for each of its rates, the MTP head guesses right after that share of the
tokens of one cycle, and the target's greedy walk through the cycle is known. Every contender gets the same prompt
(depth - 1 filler tokens and the cycle's first token, as token ids) and generates `tokens` tokens greedily; the answer
must be the walk (lossless, checked), and tokens/s is the decode rate as both tools report it: the tokens after the
first over the time after the first (the first comes from the prompt's logits).

Contenders, all loaded side by side (idle ones use no GPU time) and run interleaved, the order rotated each round:
- llama-server plain (no rollback slots), and with `--spec-type draft-mtp --spec-draft-n-max N` for each N (it
  drafts N tokens at every step, with N rollback slots; its draft context gets the same KV type);
- qcode: drafting off (`draft = "none"`: no rollback slots), and one Engine per drafting setting as a user would
  start it (`mtp`, `auto`), each request with that drafter.
Servers are started a group at a time (`--group`), so memory holds the engines and a few servers at once.
"""

# ruff: noqa: I001  (llama_cpp before numpy: the other order crashed model loads on this CUDA build)
from __future__ import annotations

import llama_cpp  # noqa: F401

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.llama_server import LlamaServer, wait_ready
from engine import Engine, GenerationRequest, load_settings

from .synth27b import Controlled, Cycle

FILLER_RANGE = (20_000, 90_000)  # prompt filler: ordinary tokens apart from the cycles and the decoys


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def prompt_for(cycle: Cycle, depth: int, seed: int = 7) -> list[int]:
    """depth - 1 filler tokens, then the cycle's first token: the answer is the walk from there."""
    rng = np.random.default_rng(seed)
    filler = [int(t) for t in rng.integers(*FILLER_RANGE, size=depth - 1)]
    return [*filler, cycle.tokens[0]]


# --- llama-server -----------------------------------------------------------------------------------------------
def server_args(model: Path, n_ctx: int, kv: str, extra: Sequence[str]) -> list[str]:
    """One slot, every layer on the GPU, flash attention and the KV type qcode uses."""
    return ["-m", str(model), "-c", str(n_ctx), "-np", "1", "-ngl", "999", "-fa", "on", "-ctk", kv, "-ctv", kv,
            "--fit", "off", "--no-webui", *extra]


def server_row(server: LlamaServer, data: dict[str, Any], walk: Sequence[int]) -> dict[str, Any]:
    timings = data.get("timings", {})
    tokens = data.get("tokens") or []
    drafted, accepted = timings.get("draft_n", 0), timings.get("draft_n_accepted", 0)
    return {"contender": f"server-{server.label}", "tokens": timings.get("predicted_n"),
            "decode_s": round(timings.get("predicted_ms", 0.0) / 1000, 4),
            "tok_s": round(timings.get("predicted_per_second", 0.0), 2), "proposed": drafted, "accepted": accepted,
            "same_answer": list(tokens) == list(walk)}


# --- qcode --------------------------------------------------------------------------------------------------------
@dataclass
class Contender:
    name: str
    run: Callable[[list[int], int], dict[str, Any]]
    learns: bool = False  # adapts to the acceptance it sees: one untimed request at each rate first


class StepClock:
    """Where a drafting request's decode time goes, from the plan's own hooks: proposing (the head's calls), the
    target's decode calls (by kind: plain steady, plain right after another shape, drafting), what each step spends
    after its call, and the rest (the loop's bookkeeping). Shape changes cost a GPU its CUDA graph."""

    def __init__(self, plan: Any) -> None:
        self.plan = plan
        self.propose, self.record_cost, self.record_step = plan.propose, plan.record_cost, plan.record_step
        plan.propose, plan.record_cost, plan.record_step = self._propose, self._record_cost, self._record_step
        self.reset()

    def reset(self) -> None:
        self.t: dict[str, float] = {"propose": 0.0, "plain_steady": 0.0, "plain_after_change": 0.0, "draft": 0.0,
                                    "after_call": 0.0}
        self.n: dict[str, int] = {"plain_steady": 0, "plain_after_change": 0, "draft": 0, "shape_changes": 0}
        self._previous, self._in_a_row, self._call = 0, 0, 0.0

    def _propose(self, history: Any, budget: int) -> Any:
        started = time.perf_counter()
        try:
            return self.propose(history, budget)
        finally:
            self.t["propose"] += time.perf_counter() - started

    def _record_cost(self, n_tokens: int, seconds: float) -> None:
        self._in_a_row = self._in_a_row + 1 if n_tokens == self._previous else 1
        self.n["shape_changes"] += self._in_a_row == 1 and self._previous > 0
        kind = "draft" if n_tokens > 1 else "plain_steady" if self._in_a_row > 2 else "plain_after_change"
        self.t[kind] += seconds
        self.n[kind] += 1
        self._previous, self._call = n_tokens, seconds
        self.record_cost(n_tokens, seconds)

    def _record_step(self, seconds: float) -> None:
        self.t["after_call"] += seconds - self._call
        self.record_step(seconds)

    def row(self, decode_s: float) -> dict[str, Any]:
        ms = {k: round(v * 1000, 1) for k, v in self.t.items()}
        ms["other"] = round((decode_s - sum(self.t.values())) * 1000, 1)
        means = {f"{k}_mean": round(self.t[k] / self.n[k] * 1000, 3) for k in ("plain_steady", "plain_after_change",
                                                                                "draft") if self.n[k]}
        return {"ms": ms, **self.n, **means}


def qcode_contender(name: str, engine: Any, drafter: str) -> Contender:
    plan = engine.draft_plan(drafter) if drafter != "none" else None
    clock = StepClock(plan) if plan is not None else None

    def run(prompt: list[int], n_tokens: int) -> dict[str, Any]:
        if clock is not None:
            clock.reset()
        done = engine.complete(GenerationRequest(list(prompt), max_tokens=n_tokens, drafter=drafter, stop=()))
        s = done.stats
        row = {"contender": name, "tokens": s.completion_tokens, "decode_s": round(s.decode_s, 4),
               "tok_s": round(s.decode_tokens_per_s, 2), "proposed": s.draft_proposed, "accepted": s.draft_accepted,
               "draft_steps": s.draft_steps, "answer": list(done.tokens)}
        if clock is not None:
            row["steps"] = clock.row(s.decode_s)
        for source in plan.sources if plan is not None else ():
            if source.costly:  # what the head's controller learned, and the rates it chose its length from
                row["controller"] = source.controller.describe(source.drafter.max_draft)
        return row

    return Contender(name, run, learns=drafter != "none")


def contender_drafter(name: str) -> str:
    """The drafter of a contender name: plain (none), mtp or auto, before its options (-top32768, -slots17)."""
    draft = name.split("-")[0]
    return "none" if draft == "plain" else draft


CONTENDER_OPTIONS = {"top": "mtp_vocab", "slots": "rollback_slots"}


def contender_settings(name: str) -> dict[str, Any]:
    """The settings of a contender name: plain, mtp, auto, with options: -topN a ranked head (mtp-top32768),
    -slotsN that many rollback slots (auto-slots17: as before the engine chose them)."""
    settings: dict[str, Any] = {"draft": contender_drafter(name)}
    for option in name.split("-")[1:]:
        word = option.rstrip("0123456789")
        if word not in CONTENDER_OPTIONS or word == option:
            raise ValueError(f"unknown contender option {option!r} in {name!r}: top<N> or slots<N>")
        settings[CONTENDER_OPTIONS[word]] = int(option[len(word):])
    return settings


def make_engine(model: Path, kv: str, name: str, n_ctx: int) -> tuple[Engine, float]:
    """The engine of a contender name (contender_settings) and the seconds it took to load."""
    started = time.perf_counter()
    engine = Engine(load_settings(model=model, kv_type_k=kv, kv_type_v=kv, n_ctx=n_ctx, **contender_settings(name)))
    load_s = time.perf_counter() - started
    log(f"qcode {name}: loaded in {load_s:.1f} s, {engine.runtime.rollback_slots} rollback slots "
        f"(plain steps by slot count: {engine.slot_steps or 'not measured'})")
    return engine, load_s


# --- the run ------------------------------------------------------------------------------------------------------
@dataclass
class Duel:
    cycles: list[Cycle]
    depth: int
    n_tokens: int
    rows: list[dict[str, Any]] = field(default_factory=list)

    def play(self, contenders: Sequence[Contender], rounds: int, time_left: Callable[[], float],
             on_row: Callable[[], None]) -> None:
        """Rate by rate: a drafter that learns acceptance answers once untimed (qcode's controller then knows this
        text's acceptance, as after an earlier request like it; its head has also taken in the prompt), then every
        contender `rounds` times, the order rotated each round."""
        for cycle in self.cycles:
            prompt = prompt_for(cycle, self.depth)
            walk = cycle.walk(1, self.n_tokens)
            for contender in contenders:
                if contender.learns and time_left() > 30:
                    contender.run(prompt, self.n_tokens)
            for round_ in range(rounds):
                shift = round_ % len(contenders)
                order = [*contenders[shift:], *contenders[:shift]]
                for contender in order:
                    if time_left() < 15:
                        log(f"out of time before {contender.name} at {cycle.rate}")
                        return
                    row = contender.run(prompt, self.n_tokens)
                    answer = row.pop("answer", None)
                    if answer is not None:
                        row["same_answer"] = list(answer) == list(walk)
                    row.update({"rate": cycle.rate, "round": round_,
                                "head_hit_rate": round(cycle.hit_rate(1, self.n_tokens), 4)})
                    self.rows.append(row)
                    log(f"{cycle.rate:g} {row['contender']}: {row['tok_s']} tok/s, {row['accepted']}/"
                        f"{row['proposed']} accepted, same answer {row['same_answer']}")
                    on_row()


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per rate: median tok/s of each contender, acceptance, and qcode's ratios against plain and the server."""
    out: dict[str, dict[str, Any]] = {}
    for rate in sorted({r["rate"] for r in rows}, reverse=True):
        mine = [r for r in rows if r["rate"] == rate]
        by: dict[str, Any] = {}
        for name in dict.fromkeys(r["contender"] for r in mine):
            runs = [r for r in mine if r["contender"] == name]
            proposed = sum(r["proposed"] or 0 for r in runs)
            accepted = sum(r["accepted"] or 0 for r in runs)
            by[name] = {"tok_s": round(statistics.median(r["tok_s"] for r in runs), 2),
                        "runs": [r["tok_s"] for r in runs],
                        "accepted_share": round(accepted / proposed, 3) if proposed else None,
                        "lossless": all(r["same_answer"] for r in runs)}
        best_server = max((v["tok_s"] for k, v in by.items() if k.startswith("server-mtp")), default=None)
        entry: dict[str, Any] = {"contenders": by, "best_server_mtp": best_server}
        for name in [k for k in by if k.startswith("qcode-") and k != "qcode-plain"]:
            if name in by and "qcode-plain" in by:
                entry[f"{name}_vs_plain"] = round(by[name]["tok_s"] / by["qcode-plain"]["tok_s"], 3)
            if name in by and best_server:
                entry[f"{name}_vs_server"] = round(by[name]["tok_s"] / best_server, 3)
        if "server-plain" in by and "qcode-plain" in by:
            entry["plain_qcode_vs_server"] = round(by["qcode-plain"]["tok_s"] / by["server-plain"]["tok_s"], 3)
        out[f"{rate:g}"] = entry
    return out


def summary_text(summary: dict[str, dict[str, Any]]) -> str:
    lines = []
    for rate, entry in summary.items():
        parts = ", ".join(f"{k} {v['tok_s']}" for k, v in entry["contenders"].items())
        ratios = ", ".join(f"{k} {v}" for k, v in entry.items() if k.endswith(("_plain", "_server")))
        lines.append(f"rate {rate}: {parts}; {ratios}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.mtp_duel", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--model-info", type=Path, required=True, help="the JSON synth27b printed (--controlled)")
    parser.add_argument("--server", type=Path, default=None, help="llama-server binary (none: qcode only)")
    parser.add_argument("--no-server", action="store_true", help="qcode only, even with --server")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--depth", type=int, default=1024)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--n-max", default="2,3,4", help="llama-server --spec-draft-n-max values")
    parser.add_argument("--groups", type=int, default=2, help="servers started at a time (plus the qcode engines)")
    parser.add_argument("--qcode", default="plain,mtp,auto", help="qcode contenders: plain, mtp, auto; "
                        "mtp-top32768: the head restricted to the 32768 most frequent tokens; auto-slots17: 17 "
                        "rollback slots")
    parser.add_argument("--kv", default="q8_0")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rates", default="", help="only these of the model's rates")
    parser.add_argument("--deadline", type=float, default=None, help="seconds this run may take")
    parser.add_argument("--server-args", default="", help="extra llama-server arguments (e.g. -t 2 on a CPU)")
    parser.add_argument("--log-dir", type=Path, default=None, help="where the servers' logs go (default: beside --out)")
    args = parser.parse_args(argv)
    if args.no_server:
        args.server = None
    end = time.monotonic() + args.deadline if args.deadline else float("inf")

    def time_left() -> float:
        return end - time.monotonic()

    info = json.loads(args.model_info.read_text())
    if "controlled" not in info:
        parser.error(f"{args.model_info} describes a model without controlled acceptance (synth27b --controlled)")
    cycles = Controlled.from_json(info["controlled"]).cycles()
    if args.rates:
        wanted = {float(r) for r in args.rates.split(",")}
        cycles = [c for c in cycles if c.rate in wanted]
    n_ctx = max(256, args.depth + args.tokens + 64)
    duel = Duel(cycles, args.depth, args.tokens)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "model": info, "depth": args.depth,
                               "tokens": args.tokens, "kv": args.kv, "n_max": args.n_max, "rows": duel.rows}

    def save() -> None:
        results["summary"] = summarize(duel.rows) if duel.rows else {}
        partial = args.out.with_suffix(".part")
        partial.write_text(json.dumps(results, indent=1) + "\n")
        os.replace(partial, args.out)

    engines: dict[str, Engine] = {}
    load_seconds: dict[str, float] = {}
    servers: list[LlamaServer] = []
    try:
        for name in [x.strip() for x in args.qcode.split(",") if x.strip()]:
            engines[name], load_seconds[name] = make_engine(args.model, args.kv, name, n_ctx)
        results["qcode"] = {name: {"rollback_slots": e.runtime.rollback_slots, "load_s": round(load_seconds[name], 1),
                                   "draft_max": e.draft_max, "slot_steps_ms": {n: round(t * 1000, 3) for n, t in
                                                                               e.slot_steps.items()}}
                            for name, e in engines.items()}
        qcode = [qcode_contender(f"qcode-{name}", e, contender_drafter(name))
                 for name, e in engines.items()]
        configs: list[tuple[str, list[str]]] = [("plain", [])] if args.server else []
        if args.server:
            for n in [int(x) for x in args.n_max.split(",") if x.strip()]:
                configs.append((f"mtp-{n}", ["--spec-type", "draft-mtp", "--spec-draft-n-max", str(n),
                                             "-ctkd", args.kv, "-ctvd", args.kv]))
        extra = args.server_args.split()
        groups = [configs[i : i + args.groups] for i in range(0, len(configs), args.groups)] or [[]]
        results["servers"] = {}
        for group in groups:
            servers = [LlamaServer(args.server, server_args(args.model, n_ctx, args.kv, [*extra, *flags]), name,
                                   args.log_dir or args.out.parent)
                       for name, flags in group]
            for server in servers:
                server.launch()
            wait_ready(servers, timeout=max(30.0, min(240.0, time_left() - 30)))
            for server in servers:
                results["servers"][server.label] = {"load_s": round(server.load_s or 0.0, 1),
                                                   "command": " ".join(server.command()[1:])}
                # warm-up: graphs built, the prompt cached
                server.complete(prompt_for(cycles[0], args.depth), 8, ignore_eos=True)
                log(f"llama-server {server.label} ready in {server.load_s:.1f} s")

            def server_contender(server: LlamaServer) -> Contender:
                def run(prompt: list[int], n_tokens: int) -> dict[str, Any]:
                    cycle = next(c for c in cycles if c.tokens[0] == prompt[-1])
                    answer = server.complete(prompt, n_tokens, ignore_eos=True)
                    return server_row(server, answer, cycle.walk(1, n_tokens))

                return Contender(f"server-{server.label}", run)

            duel.play([*[server_contender(s) for s in servers], *qcode], args.rounds, time_left, save)
            for server in servers:
                server.stop()
            servers = []
            save()
            if time_left() < 30:
                break
    finally:
        for server in servers:
            server.stop()
        for engine in engines.values():
            engine.close()
        save()
    print(summary_text(results["summary"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
