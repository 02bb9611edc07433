"""qcode against llama.cpp's own server: same GGUF, same settings, same prompt tokens, interleaved.

    python -m bench.peer --server PATH/llama-server [--model NAME|PATH[,...]] [--rounds 3] [--max-tokens 160]
        [--json] [--out FILE]

Issue 13's table (both packaged models, about 15 minutes on a quiet 2-core machine):

    python -m bench.peer --server /work/src/llama-server-build/bin/llama-server --model coder-0.5b,coder-1.5b \\
        --out bench/results/peer-cpu.json

Builds the server with bench/build_llama_server.sh (same vendored llama.cpp and CPU flags as llama-cpp-python).
For every task of tui/bench/tasks.py (edits and explanations of standard-library functions) it renders the request
qcode sends (engine.tasks.build_request) and runs, --rounds times per task, in a rotating order within each round:

- qcode, drafting off, and qcode with each drafter of --drafters (in this process, the real decode loop);
- llama-server, plain, and llama-server with --spec-type ngram-mod, both on loopback with -t, -c, -ctk/-ctv and
  -fa as qcode runs, given qcode's prompt as token ids (/completion, greedy, the same stop strings).

`--drafters none` compares plain decoding alone (qcode and the plain server: more rounds in the same time, for a
plain-speed gap smaller than one machine's drift between rounds).

The server's ngram-mod table is shared across requests and never cleared (only when a quarter full): a task's second
round would draft the first round's answer. So by default the drafted server is restarted before every drafted
request (`--server-ngram fresh`), as qcode's lookup also starts each request fresh; `kept` shows the other case.

Speeds are decode tokens per second as each reports them (tokens after the first, over the time after the first):
qcode's Stats.decode_tokens_per_s, the server's timings.predicted_per_second. Medians over rounds per task, then
medians over tasks per kind; also per CPU second of the engine's process, a figure a shared machine's load
disturbs less. Progress goes to stderr; per-task tables and a markdown summary (or --json) to stdout; --out FILE
keeps the JSON (several models: {"models": [one report each]}), rewritten after every task, so that a run stopped
early keeps what it measured (meta.tasks_done says how far it got).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.llama_server import LlamaServer
from engine import Engine, GenerationRequest, QcodeError, load_settings
from engine.tasks import build_request
from tui.bench.tasks import BenchTask, default_tasks


def log(message: str) -> None:
    print(f"peer: {message}", file=sys.stderr, flush=True)


# --- machine conditions -------------------------------------------------------------------------------------------
def cpu_times() -> list[int]:
    """The aggregate `cpu` line of /proc/stat (user nice system idle iowait irq softirq steal ...); [] elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            return [int(x) for x in handle.readline().split()[1:]]
    except OSError:
        return []


def steal_share(before: Sequence[int], after: Sequence[int]) -> float | None:
    """Share of CPU time the hypervisor gave to other guests between two cpu_times() readings."""
    if len(before) < 8 or len(after) < 8:
        return None
    total = sum(after) - sum(before)
    return round((after[7] - before[7]) / total, 4) if total > 0 else None


def load_average() -> list[float]:
    with contextlib.suppress(OSError):
        return [round(x, 2) for x in os.getloadavg()]
    return []


def build_flags(binary: Path) -> dict[str, str]:
    """The CPU options llama-server was built with, from its build folder's CMakeCache.txt (where there is one)."""
    wanted = ("CMAKE_BUILD_TYPE", "GGML_NATIVE", "GGML_OPENMP", "GGML_LLAMAFILE", "GGML_CPU_REPACK", "GGML_AVX2",
              "GGML_AVX512", "GGML_BLAS", "BUILD_SHARED_LIBS")
    for folder in (binary.resolve().parent, *binary.resolve().parents):
        cache = folder / "CMakeCache.txt"
        if cache.is_file():
            flags = {}
            for line in cache.read_text(errors="replace").splitlines():
                name, _, value = line.partition("=")
                key = name.split(":", 1)[0]
                if key in wanted:
                    flags[key] = value
            return flags
    return {}


def server_args(model: Path, threads: int, n_ctx: int, kv_type: str, flash_attn: bool) -> list[str]:
    return ["-m", str(model), "-t", str(threads), "-c", str(n_ctx), "-np", "1", "-ctk", kv_type, "-ctv", kv_type,
            "-fa", "on" if flash_attn else "off", "--no-webui"]


# --- runs ---------------------------------------------------------------------------------------------------------
@dataclass
class Run:
    tokens_per_s: float
    completion_tokens: int
    proposed: int
    accepted: int
    tokens: tuple[int, ...]
    cpu_s: float = 0.0  # CPU time the engine's process spent on the request (all its threads)

    @property
    def tokens_per_cpu_s(self) -> float:
        """Decode tokens (after the first) per CPU second: what the answer cost in work, whatever the machine's
        load (with one thread; with more, spin-waiting threads count too)."""
        return (self.completion_tokens - 1) / self.cpu_s if self.cpu_s > 0 and self.completion_tokens > 1 else 0.0


@dataclass
class Cell:
    """One task under one variant, over all rounds."""

    runs: list[Run] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(r.tokens_per_s for r in self.runs) if self.runs else 0.0

    @property
    def median_cpu(self) -> float:
        return statistics.median(r.tokens_per_cpu_s for r in self.runs) if self.runs else 0.0


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_qcode(engine: Engine, request: GenerationRequest, drafter: str) -> Run:
    started = time.process_time()
    done = engine.complete(dataclasses.replace(request, drafter=drafter))
    cpu = time.process_time() - started
    s = done.stats
    return Run(s.decode_tokens_per_s, s.completion_tokens, s.draft_proposed, s.draft_accepted, done.tokens, cpu)


def run_server(server: LlamaServer, prompt: list[int], request: GenerationRequest) -> Run:
    server.complete(prompt, 1, request.stop)  # the prompt in (a restarted server has none): count decode only
    assert server.process is not None
    before = process_cpu_seconds(server.process.pid)
    result = server.complete(prompt, request.max_tokens or 1, request.stop)
    cpu = process_cpu_seconds(server.process.pid) - before
    timings = result.get("timings", {})
    return Run(float(timings.get("predicted_per_second", 0.0)), int(timings.get("predicted_n", 0)),
               int(timings.get("draft_n", 0)), int(timings.get("draft_n_accepted", 0)),
               tuple(int(t) for t in result.get("tokens", [])), cpu)


def rotated(items: Sequence[str], by: int) -> list[str]:
    shift = by % len(items)
    return [*items[shift:], *items[:shift]]


def run_peer(
    engine: Engine, servers: dict[str, LlamaServer], tasks: Sequence[BenchTask], drafters: Sequence[str], rounds: int,
    max_tokens: int, fresh_ngram: bool,
    task_done: Callable[[Sequence[BenchTask], dict[str, dict[str, Cell]]], None] | None = None,
) -> dict[str, dict[str, Cell]]:
    """Every task's runs; `task_done(tasks so far, results)` after each task (a long run keeps what it measured)."""
    variants = ["qcode:none", *(f"qcode:{d}" for d in drafters), *(f"server:{name}" for name in servers)]
    results: dict[str, dict[str, Cell]] = {t.name: {v: Cell() for v in variants} for t in tasks}
    requests: dict[str, tuple[GenerationRequest, list[int]]] = {}
    for task in tasks:
        request, _ = build_request(engine, task.task)
        request = dataclasses.replace(request, max_tokens=min(request.max_tokens or max_tokens, max_tokens))
        requests[task.name] = (request, engine.prompt_tokens(request))
    # rounds within a task: qcode and the plain server evaluate its prompt once (later rounds find it cached), the
    # variants still alternate in a rotating order
    for task_index, task in enumerate(tasks):
        for round_index in range(rounds):
            request, prompt = requests[task.name]
            engine.complete(dataclasses.replace(request, max_tokens=1, drafter="none"))  # prompt in: time decode
            for variant in rotated(variants, round_index + task_index):
                side, name = variant.split(":", 1)
                if side == "qcode":
                    run = run_qcode(engine, request, name)
                else:
                    server = servers[name]
                    if fresh_ngram and name != "plain":
                        server.restart()  # its n-gram table has seen earlier answers
                    run = run_server(server, prompt, request)
                results[task.name][variant].runs.append(run)
                drafted = f" ({run.accepted}/{run.proposed} accepted)" if run.proposed else ""
                log(f"round {round_index + 1}/{rounds} {task.name} [{variant}]: {run.tokens_per_s:.1f} tok/s, "
                    f"{run.tokens_per_cpu_s:.1f} tok/cpu-s, {run.completion_tokens} tokens{drafted}")
        if task_done is not None:
            task_done(tasks[: task_index + 1], results)
    return results


# --- summary ------------------------------------------------------------------------------------------------------
def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if a > 0 and b > 0 else None


def task_rows(tasks: Sequence[BenchTask], results: dict[str, dict[str, Cell]]) -> list[dict[str, Any]]:
    rows = []
    for task in tasks:
        cells = results[task.name]
        plain = cells["qcode:none"]
        reference = plain.runs[0].tokens if plain.runs else ()
        variants = {}
        for variant, cell in cells.items():
            first = cell.runs[0] if cell.runs else None
            variants[variant] = {
                "tokens_per_s": round(cell.median, 2),
                "runs": [round(r.tokens_per_s, 2) for r in cell.runs],
                "tokens_per_cpu_s": round(cell.median_cpu, 2),
                "runs_cpu": [round(r.tokens_per_cpu_s, 2) for r in cell.runs],
                "completion_tokens": [r.completion_tokens for r in cell.runs],
                "proposed": [r.proposed for r in cell.runs],
                "accepted": [r.accepted for r in cell.runs],
                # the same tokens as qcode's plain answer (first rounds): prompts and greedy decoding agree
                "same_as_qcode_plain": (first.tokens == reference) if first and variant != "qcode:none" else None,
            }
        rows.append({"task": task.name, "kind": task.kind, "variants": variants})
    return rows


def summary(rows: list[dict[str, Any]], drafters: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per kind, medians over tasks of per-task ratios (each a ratio of medians over rounds): of wall-clock decode
    speeds, and (suffix _cpu) of decode tokens per CPU second."""
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r["variants"] for r in rows if r["kind"] == kind]
        entry: dict[str, Any] = {"tasks": len(mine)}
        for measure, suffix in (("tokens_per_s", ""), ("tokens_per_cpu_s", "_cpu")):

            def median_of(numerator: str, denominator: str, measure: str = measure,
                          cells: list[dict[str, Any]] = mine) -> float | None:
                values = [_ratio(v[numerator][measure], v[denominator][measure]) for v in cells
                          if numerator in v and denominator in v]
                present = [x for x in values if x is not None]
                return round(statistics.median(present), 3) if present else None

            entry[f"plain_qcode_over_server{suffix}"] = median_of("qcode:none", "server:plain")
            entry[f"server_drafting_speedup{suffix}"] = median_of("server:ngram-mod", "server:plain")
            for drafter in drafters:
                entry[f"qcode_{drafter}_speedup{suffix}"] = median_of(f"qcode:{drafter}", "qcode:none")
                entry[f"drafted_qcode_{drafter}_over_server{suffix}"] = median_of(f"qcode:{drafter}",
                                                                                    "server:ngram-mod")
        out[kind] = entry
    return out


def format_table(rows: list[dict[str, Any]], totals: dict[str, dict[str, Any]]) -> str:
    names = list(rows[0]["variants"]) if rows else []
    header = f"{'task':36} " + " ".join(f"{n:>24}" for n in names)
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = []
        for name in names:
            v = row["variants"][name]
            acc = f" {sum(v['accepted'])}/{sum(v['proposed'])}" if sum(v["proposed"]) else ""
            cells.append(f"{v['tokens_per_s']:5.1f} ({v['tokens_per_cpu_s']:5.1f}){acc:>10}")
        lines.append(f"{row['task'][:36]:36} " + " ".join(f"{c:>24}" for c in cells))
    lines.append("tok/s (tok per CPU second) accepted/drafted")
    for kind, entry in totals.items():
        lines.append(f"{kind} ({entry['tasks']} tasks): " + ", ".join(
            f"{key} {value}" for key, value in entry.items() if key != "tasks"))
    return "\n".join(lines)


def qcode_commit() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1], timeout=10, check=True)
        return done.stdout.strip()
    return "unknown"


@contextlib.contextmanager
def running(servers: dict[str, LlamaServer]) -> Iterator[None]:
    try:
        for server in servers.values():
            server.start()
        yield
    finally:
        for server in servers.values():
            server.stop()


def markdown_table(reports: Sequence[dict[str, Any]], drafter: str) -> str:
    """Issue 13's table, one line per model: medians over tasks of wall-clock ratios (per CPU second in brackets)."""

    def pair(entry: dict[str, Any], key: str, unit: str = "") -> str:
        wall, cpu = entry.get(key), entry.get(f"{key}_cpu")
        return f"{wall}{unit} ({cpu}{unit})" if wall is not None else "-"

    lines = [
        f"| model | edit tasks | plain tok/s, qcode / server | drafting speedup, qcode `{drafter}` | drafting speedup, "
        f"server `ngram-mod` | drafted tok/s, qcode / server | explain tasks: qcode drafted / plain |",
        "|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        edit = report["summary"].get("edit", {})
        explain = report["summary"].get("explain", {})
        meta = report["meta"]
        lines.append(
            f"| {meta['model_name']} {meta['quant']} | {edit.get('tasks', 0)} | "
            f"{pair(edit, 'plain_qcode_over_server')} | {pair(edit, f'qcode_{drafter}_speedup', 'x')} | "
            f"{pair(edit, 'server_drafting_speedup', 'x')} | {pair(edit, f'drafted_qcode_{drafter}_over_server')} | "
            f"{pair(explain, f'qcode_{drafter}_speedup', 'x')} |")
    lines.append("Medians over tasks of per-task ratios of medians over rounds: wall-clock decode tok/s "
                 "(in brackets: decode tokens per CPU second of the engine's process).")
    return "\n".join(lines)


def measure_model(binary: Path, model: str | None, args: argparse.Namespace, drafters: Sequence[str],
                  tasks: Sequence[BenchTask], argv: Sequence[str],
                  save: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """One model's interleaved runs and summary; `save` gets the report so far after each task. Raises QcodeError,
    RuntimeError or OSError."""
    settings = load_settings(model=model, draft_model=args.draft_model, threads=args.threads)
    engine = Engine(settings, progress=lambda m, f: log(m) if f in (None, 0.0, 1.0) else None)
    common = server_args(engine.info.path, args.threads, engine.n_ctx, settings.kv_type_k, settings.flash_attn)
    common += args.server_extra.split()
    servers = {"plain": LlamaServer(binary, common, "plain")}
    if drafters:  # `--drafters none`: plain decoding of both alone
        servers["ngram-mod"] = LlamaServer(binary, [*common, "--spec-type", "ngram-mod"], "ngram-mod")
    import llama_cpp

    log(f"{engine.info.name} {engine.info.quant}: {len(tasks)} tasks x {args.rounds} rounds")
    started_at = datetime.datetime.now(datetime.UTC)
    before, load_before = cpu_times(), load_average()

    def report(done: Sequence[BenchTask], results: dict[str, dict[str, Cell]]) -> dict[str, Any]:
        rows = task_rows(done, results)
        return {
            "meta": {
                "date": started_at.isoformat(timespec="seconds"),
                "command": " ".join(["python -m bench.peer", *argv]),
                "qcode_commit": qcode_commit(),
                "model": str(engine.info.path), "model_name": engine.info.name, "quant": engine.info.quant,
                "draft_model": str(settings.draft_model) if settings.draft_model else None,
                "threads": args.threads, "n_ctx": engine.n_ctx, "kv_type": engine.kv_type,
                "flash_attn": settings.flash_attn, "max_tokens": args.max_tokens, "rounds": args.rounds,
                "tasks_done": f"{len(done)}/{len(tasks)}",
                "server_args": common, "server_ngram": args.server_ngram,
                "server_build": build_flags(binary),
                "qcode_system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
                "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                "cpu_steal_share": steal_share(before, cpu_times()),
                "load_average_before": load_before, "load_average_after": load_average(),
            },
            "rows": rows,
            "summary": summary(rows, drafters),
        }

    try:
        with running(servers):
            results = run_peer(engine, servers, tasks, drafters, max(1, args.rounds), args.max_tokens,
                               args.server_ngram == "fresh",
                               (lambda done, so_far: save(report(done, so_far))) if save else None)
        return report(tasks, results)
    finally:
        engine.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True, help="path to llama-server (bench/build_llama_server.sh)")
    parser.add_argument("--model", default=None,
                        help="GGUF or model name, or several comma-separated, run one after the other "
                             "(default: qcode's default model)")
    parser.add_argument("--draft-model", default=None, help="qcode's draft model (for --drafters model or auto)")
    parser.add_argument("--drafters", default="ngram", help="qcode drafters to compare (comma-separated)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tasks", default="", help="only tasks whose name contains one of these (comma-separated)")
    parser.add_argument("--server-ngram", choices=("fresh", "kept"), default="fresh",
                        help="restart the drafted server before each drafted request (fresh), or keep its table")
    parser.add_argument("--server-extra", default="", help="more llama-server arguments for both servers")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout instead of the tables")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    binary = Path(args.server)
    if not binary.is_file() or not os.access(binary, os.X_OK):
        print(f"peer: error: {binary} is not an executable llama-server", file=sys.stderr)
        return 2
    drafters = [d.strip() for d in args.drafters.split(",") if d.strip() and d.strip() != "none"]
    tasks = default_tasks()
    if args.tasks:
        wanted = [w.strip() for w in args.tasks.split(",")]
        tasks = [t for t in tasks if any(w in t.name for w in wanted)]
    models: list[str | None] = [m.strip() for m in args.model.split(",") if m.strip()] if args.model else [None]
    # a terminated benchmark still stops its servers (the finally clauses run on SystemExit)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    reports: list[dict[str, Any]] = []

    def write(partial: Sequence[dict[str, Any]]) -> None:
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            whole = partial[0] if len(models) == 1 else {"models": list(partial)}
            Path(args.out).write_text(json.dumps(whole, indent=1) + "\n", encoding="utf-8")

    try:
        for model in models:
            reports.append(measure_model(binary, model, args, drafters, tasks,
                                         argv if argv is not None else sys.argv[1:],
                                         lambda partial: write([*reports, partial])))
    except QcodeError as exc:
        print(f"peer: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (RuntimeError, OSError) as exc:
        print(f"peer: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("peer: interrupted", file=sys.stderr)
        return 130
    write(reports)
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else {"models": reports}, indent=1))
    else:
        for one in reports:
            print(f"{one['meta']['model_name']} {one['meta']['quant']}")
            print(format_table(one["rows"], one["summary"]) + "\n")
        if drafters:
            print(markdown_table(reports, drafters[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
