"""`qcode bench --completion`: time to the first completion character after a one-character edit, and a small
single-line infill check, on files nobody here wrote (Python's own json package, copied into a scratch repository).

Latency (`--latency`, the default): at each site a line is cut in the middle of a word; a completion is asked there
(the one before the edit, not timed), then the word's next characters are typed one at a time, each followed by a
completion, timed from the request to its first text: in the engine (complete_at's first TextEvent) and in the TUI
(Textual's Pilot drives the real app: the key press, the completion key, until the ghost text holds its first
character; `--pauses`: after a pause, as a user's before the key, in which the app evaluates the prompt ahead).
Variants run site by site, interleaved (ABAB), so a machine whose speed drifts favours none; medians.
  measured  the windows the backend's measured prompt cost gives (what users get)
  wide      a 512-token suffix, the old fixed window (what the suffix costs in latency)
Also: the warm-up a file open runs at its cursor (evaluate_ahead), the first completion after it, and one from
an empty cache (cold).

Quality (`--quality`): whole-line infills (the cursor after the line's indentation, the rest of the line removed);
a pass is the line completed exactly. Variants: the measured windows, the same with a 512-token suffix, and no
suffix at all (what the suffix gives), each with repository context; no neighbouring files; and the plain FIM
triple (no path: no repository markers, no neighbours).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import engine.tasks as tasks
from engine import Engine, QcodeError, load_settings
from engine.completion import CompletionBudget, complete_at, completion_budget, evaluate_ahead, prompt_cost
from engine.events import DoneEvent, TextEvent

WIDE_SUFFIX = 512
SAMPLE_PACKAGE = "json"
SAMPLE_FILE = "decoder.py"
QUALITY_FILES = ("json/decoder.py", "json/encoder.py", "json/scanner.py", "json/__init__.py")


def log(message: str) -> None:
    print(f"qcode bench: {message}", file=sys.stderr, flush=True)


def scratch_repo(where: Path) -> Path:
    """Python's json package in a scratch repository (a .git marker makes it the root): a file and its neighbours."""
    source = Path(json.__file__).parent
    repo = where / "stdlib-json"
    shutil.copytree(source, repo / SAMPLE_PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / ".git").mkdir()
    return repo


# --- sites ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Site:
    """A cursor in a text whose line was cut there; `typed` are the characters typed next, one at a time."""

    text: str
    offset: int
    typed: str


def statement_lines(text: str) -> list[int]:
    """0-based numbers of the indented lines that hold one whole simple statement (no docstrings, no comments)."""
    numbers = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.stmt) or hasattr(node, "body") or node.lineno != node.end_lineno:
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        numbers.append(node.lineno - 1)
    lines = text.split("\n")
    return sorted(n for n in set(numbers) if lines[n].startswith(" "))


def _line_starts(lines: list[str]) -> list[int]:
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    return starts


def latency_sites(text: str, count: int, chars: int) -> list[Site]:
    """Cuts inside words of statement lines spread over the file (the line's rest removed), `chars` to type."""
    lines = text.split("\n")
    starts = _line_starts(lines)
    eligible = []
    pattern = r"(?<=[\s(=.,\[])[A-Za-z_]\w{" + str(chars + 1) + ",}"
    for number in statement_lines(text):
        line = lines[number]
        indent = len(line) - len(line.lstrip())
        match = re.search(pattern, line[indent + 4 :])
        if match and len(line.strip()) >= 20:
            eligible.append((number, indent + 4 + match.start() + 1))
    step = max(len(eligible) // count, 1)
    sites = []
    for number, column in eligible[::step][:count]:
        cut = starts[number] + column
        end = starts[number] + len(lines[number])
        sites.append(Site(text[:cut] + text[end:], cut, text[cut : cut + chars]))
    return sites


def quality_sites(repo: Path, count: int) -> list[tuple[Path, Site, str]]:
    """Whole-line infills: (file, site, the statement removed), spread over QUALITY_FILES.

    The cursor sits after the line's indentation; the line's statement is what the model must write.
    """
    found: list[tuple[Path, Site, str]] = []
    per_file = -(-count // len(QUALITY_FILES))
    for name in QUALITY_FILES:
        path = repo / name
        text = path.read_text(encoding="utf-8")
        lines = text.split("\n")
        starts = _line_starts(lines)
        eligible = [n for n in statement_lines(text) if len(lines[n].strip()) >= 12]
        step = max(len(eligible) // per_file, 1)
        for n in eligible[::step][:per_file]:
            indent = len(lines[n]) - len(lines[n].lstrip())
            cut, end = starts[n] + indent, starts[n] + len(lines[n])
            found.append((path, Site(text[:cut] + text[end:], cut, ""), lines[n].strip()))
    return found[:count]


# --- the engine -------------------------------------------------------------------------------------
@dataclass
class Timing:
    first_text_s: float | None  # None: the completion came back empty
    first_token_ms: float
    evaluated: int
    prompt: int
    text: str


def timed_completion(engine: Engine, site_text: str, offset: int, path: Path | None, budget: CompletionBudget,
                     max_tokens: int) -> Timing:
    started = time.perf_counter()
    first: float | None = None
    done: DoneEvent | None = None
    for event in complete_at(engine, site_text, offset, path=path, budget=budget, max_tokens=max_tokens):
        if isinstance(event, TextEvent) and first is None and event.text:
            first = time.perf_counter() - started
        elif isinstance(event, DoneEvent):
            done = event
    assert done is not None
    return Timing(first, done.stats.ttft_ms, done.stats.prompt_tokens_evaluated, done.stats.prompt_tokens, done.text)


def typing_steps(site: Site) -> Iterator[tuple[str, int]]:
    """The text and cursor after each typed character."""
    text, offset = site.text, site.offset
    for char in site.typed:
        text, offset = text[:offset] + char + text[offset:], offset + 1
        yield text, offset


@dataclass
class Samples:
    first_text_s: list[float] = field(default_factory=list)
    first_token_ms: list[float] = field(default_factory=list)
    evaluated: list[int] = field(default_factory=list)
    prompt: list[int] = field(default_factory=list)
    empty: int = 0
    parts: dict[str, list[float]] = field(default_factory=dict)  # the TUI's time, split where it goes (seconds)

    def add(self, timing: Timing) -> None:
        if timing.first_text_s is None:
            self.empty += 1
        else:
            self.first_text_s.append(timing.first_text_s)
        self.first_token_ms.append(timing.first_token_ms)
        self.evaluated.append(timing.evaluated)
        self.prompt.append(timing.prompt)

    def summary(self) -> dict[str, Any]:
        def median(values: Sequence[float]) -> float | None:
            return round(statistics.median(values), 1) if values else None

        return {
            "first_char_ms_median": median([s * 1000 for s in self.first_text_s]),
            "first_char_ms_p90": round(sorted(self.first_text_s)[-(-9 * len(self.first_text_s) // 10) - 1] * 1000, 1)
            if self.first_text_s else None,  # nearest rank
            "first_token_ms_median": median(self.first_token_ms),
            "evaluated_median": median(self.evaluated),
            "prompt_tokens_median": median(self.prompt),
            "samples": len(self.first_token_ms),
            "empty": self.empty,
            **({"split_ms_median": {name: median([v * 1000 for v in values]) for name, values in self.parts.items()}}
               if self.parts else {}),
        }


def engine_latency(engine: Engine, repo: Path, sites: list[Site], variants: dict[str, CompletionBudget],
                   max_tokens: int) -> dict[str, Samples]:
    path = repo / SAMPLE_PACKAGE / SAMPLE_FILE
    results = {name: Samples() for name in variants}
    for index, site in enumerate(sites):
        for name, budget in variants.items():
            timed_completion(engine, site.text, site.offset, path, budget, max_tokens)  # the one before the edit
            for text, offset in typing_steps(site):
                timing = timed_completion(engine, text, offset, path, budget, max_tokens)
                results[name].add(timing)
                log(f"engine site {index + 1}/{len(sites)} [{name}]: first char "
                    f"{'-' if timing.first_text_s is None else f'{timing.first_text_s * 1000:.0f} ms'}, "
                    f"{timing.evaluated}/{timing.prompt} tokens evaluated")
    return results


def warm_then_first(engine: Engine, repo: Path, site: Site, budget: CompletionBudget,
                    max_tokens: int) -> dict[str, Any]:
    """A file opened with the cursor at a site: the warm-up's time, then the first completion there; and cold."""
    path = repo / SAMPLE_PACKAGE / SAMPLE_FILE
    engine.cache.reset(forget_snapshots=True)
    started = time.perf_counter()
    stats = evaluate_ahead(engine, site.text, site.offset, "warm-up", path=path, budget=budget)
    warm_s = time.perf_counter() - started
    first = timed_completion(engine, site.text, site.offset, path, budget, max_tokens)
    engine.cache.reset(forget_snapshots=True)
    cold = timed_completion(engine, site.text, site.offset, path, budget, max_tokens)
    return {
        "warm_up_s": round(warm_s, 2), "warm_up_tokens": stats.prompt_tokens_evaluated,
        "first_after_warm_up_ms": round(first.first_token_ms, 1), "first_after_warm_up_evaluated": first.evaluated,
        "cold_ms": round(cold.first_token_ms, 1), "cold_evaluated": cold.evaluated,
    }


# --- the TUI ----------------------------------------------------------------------------------------
def tui_latency(engine: Engine, settings: Any, repo: Path, sites: list[Site], max_tokens: int,
                pauses: Sequence[float] = (0.0,)) -> dict[float, Samples]:
    """The real app on the same engine: type a character, wait `pause` seconds (for each of `pauses`, site by site
    in turn), press the completion key, wait for the ghost text. A pause lets the app's prefetch run, as a user's
    own pause before the key does."""
    from tui.app import QcodeApp
    from tui.backend import EngineBackend

    path = repo / SAMPLE_PACKAGE / SAMPLE_FILE
    marks: dict[str, float] = {}

    class MarkedBackend(EngineBackend):
        """Marks when the app's worker starts the completion and when the engine side yields its first text."""

        def complete(self, text: str, offset: int, *, language: str | None, cancel: Any,
                     path: Path | None = None) -> Iterator[Any]:
            marks["worker"] = time.perf_counter()
            for event in super().complete(text, offset, language=language, cancel=cancel, path=path):
                if isinstance(event, TextEvent) and event.text and "text" not in marks:
                    marks["text"] = time.perf_counter()
                yield event

    backend = MarkedBackend(engine, tasks, settings)
    app = QcodeApp(settings, path, sites[0].text, loader=lambda s, progress: backend)
    results = {pause: Samples() for pause in pauses}

    async def until(pilot: Any, condition: Callable[[], bool], timeout: float = 120.0, step: float = 0.001) -> float:
        started = time.perf_counter()
        while not condition():
            if time.perf_counter() - started > timeout:
                raise TimeoutError("the app did not get there")
            await asyncio.sleep(step)
        return time.perf_counter()

    async def complete(pilot: Any, samples: Samples, edited: float | None = None) -> float | None:
        """Press the completion key; seconds until the ghost text shows (None: no suggestion came). `edited`: when
        the character before it was pressed (the time from there is recorded too)."""
        editor = app.main.editor
        marks.clear()
        started = marks["key"] = time.perf_counter()
        # watched beside the key press: Pilot.press returns only once the app is idle, often after the whole
        # suggestion has streamed, so a check after it would time the press, not the ghost text. The editor
        # stamps when a suggestion first shows, so a slow poll serves (a fast one competes for the cores with the
        # engine it times)
        watch = asyncio.ensure_future(until(pilot, lambda: bool(editor.ghost_text), step=0.05))
        await pilot.press(settings.complete_key.split(",")[0].strip())
        await until(pilot, lambda: watch.done() or app.main.job is None, step=0.05)
        first = None
        if watch.done() or editor.ghost_text:
            await watch
            shown = editor.ghost_since
            first = shown - started
        else:
            watch.cancel()
        if first is not None and {"worker", "text"} <= marks.keys():
            samples.parts.setdefault("key to worker", []).append(marks["worker"] - started)
            samples.parts.setdefault("worker to first text", []).append(marks["text"] - marks["worker"])
            samples.parts.setdefault("first text to ghost", []).append(shown - marks["text"])
        if first is not None and edited is not None:
            samples.parts.setdefault("edit to ghost", []).append(shown - edited)
        await until(pilot, lambda: app.main.job is None)
        await pilot.press("escape")  # dismiss: the next character goes into the text, not a suggestion
        await pilot.pause()
        return first

    async def main() -> None:
        async with app.run_test(size=(120, 34)) as pilot:
            await until(pilot, lambda: app.backend is not None or app.load_error is not None)
            await until(pilot, lambda: app.main.job is None)  # the warm-up after the load
            editor = app.main.editor
            for index, site in enumerate(sites):
                # the variants' order turns with the site, so a drifting machine favours none
                for pause in [*pauses[index % len(pauses):], *pauses[: index % len(pauses)]]:
                    samples = results[pause]
                    editor.load_text(site.text)
                    row = site.text.count("\n", 0, site.offset)
                    editor.cursor_location = (row, site.offset - (site.text.rfind("\n", 0, site.offset) + 1))
                    await pilot.pause()
                    await until(pilot, lambda: app.main.job is None)
                    await complete(pilot, Samples())  # the completion before the edit
                    await until(pilot, lambda: app.main.job is None)
                    for char in site.typed:
                        # typed straight into the editor, as a key would: Pilot.press waits for the app to go
                        # idle (its prefetch included), which would hide what a user waits for after the key
                        edited = time.perf_counter()
                        editor.insert(char)
                        await asyncio.sleep(max(0.0, pause - (time.perf_counter() - edited)))
                        first = await complete(pilot, samples, edited)
                        stats = app.main.metrics.stats
                        samples.first_text_s.append(first) if first is not None else None
                        samples.empty += first is None
                        if stats is not None:
                            samples.first_token_ms.append(stats.ttft_ms)
                            samples.evaluated.append(stats.prompt_tokens_evaluated)
                            samples.prompt.append(stats.prompt_tokens)
                        log(f"tui site {index + 1}/{len(sites)}, pause {pause * 1000:.0f} ms: ghost after "
                            f"{'-' if first is None else f'{first * 1000:.0f} ms'}, "
                            f"{stats.prompt_tokens_evaluated if stats else '?'} tokens evaluated")

    asyncio.run(main())
    return results


# --- quality ----------------------------------------------------------------------------------------
def infill_quality(engine: Engine, repo: Path, count: int, variants: dict[str, tuple[CompletionBudget, bool]],
                   max_tokens: int) -> dict[str, dict[str, Any]]:
    """Pass rates per variant. One variant at a time, sites in file and line order, so each request reuses the one
    before it up to its cursor (pass or fail does not depend on timing, so nothing needs interleaving)."""
    sites = quality_sites(repo, count)
    results: dict[str, dict[str, Any]] = {}
    for name, (budget, with_path) in variants.items():
        cell: dict[str, Any] = {"passed": 0, "total": 0, "answers": []}
        for index, (path, site, expected) in enumerate(sites):
            timing = timed_completion(engine, site.text, site.offset, path if with_path else None, budget,
                                      max_tokens)
            line = timing.text.split("\n", 1)[0].strip()
            ok = line == expected
            cell["passed"] += ok
            cell["total"] += 1
            cell["answers"].append({"file": path.name, "expected": expected, "got": line, "pass": ok})
            log(f"infill {index + 1}/{len(sites)} [{name}] {'pass' if ok else 'FAIL'}: {expected!r} -> {line!r}")
        cell["pass_rate"] = round(cell["passed"] / max(cell["total"], 1), 3)
        results[name] = cell
    return results


# --- main -------------------------------------------------------------------------------------------
def run_model(model: str, args: argparse.Namespace, repo: Path) -> dict[str, Any]:
    settings = load_settings(model=model, threads=args.threads)
    log(f"loading {model}")
    engine = Engine(settings)
    try:
        prompt_cost(engine, measure=True)  # a probe now too: the cache keeps the fastest ever seen
        measured = completion_budget(engine)
        if args.windows:
            prefix, suffix, context = (int(part) for part in args.windows.split(","))
            measured = CompletionBudget(prefix, suffix, context)
        wide = replace(measured, suffix_tokens=WIDE_SUFFIX)
        record: dict[str, Any] = {"model": engine.info.name, "quant": engine.info.quant,
                                  "budget": measured.__dict__}
        log(f"{engine.info.name}: windows {measured}")
        if args.latency:
            text = (repo / SAMPLE_PACKAGE / SAMPLE_FILE).read_text(encoding="utf-8")
            sites = latency_sites(text, args.sites, args.chars)
            record["warm_up"] = warm_then_first(engine, repo, sites[len(sites) // 2], measured, args.max_tokens)
            variants = {"measured": measured, "wide": wide} if args.wide else {"measured": measured}
            engine_results = engine_latency(engine, repo, sites, variants, args.max_tokens)
            record["engine"] = {name: s.summary() for name, s in engine_results.items()}
            if args.tui:
                pauses = [float(ms) / 1000 for ms in args.pauses.split(",")]
                tui = tui_latency(engine, settings, repo, sites, args.max_tokens, pauses)
                record["tui"] = tui[pauses[0]].summary()
                record["tui_after_pause"] = {f"{pause * 1000:.0f} ms": tui[pause].summary() for pause in pauses}
        if args.quality:
            none = replace(measured, suffix_tokens=0)
            variants_q = {"measured": (measured, True), "wide suffix": (wide, True), "no suffix": (none, True),
                          "no neighbours": (replace(measured, context_tokens=0), True),
                          "plain FIM": (measured, False)}
            record["quality"] = infill_quality(engine, repo, args.infills, variants_q, args.max_tokens)
        return record
    finally:
        engine.close()


def format_record(record: dict[str, Any]) -> str:
    lines = [f"{record['model']} ({record['quant']}): windows {record['budget']}"]
    if "warm_up" in record:
        w = record["warm_up"]
        lines.append(f"  warm-up at the cursor: {w['warm_up_s']} s for {w['warm_up_tokens']} tokens; first completion "
                     f"after it {w['first_after_warm_up_ms']} ms ({w['first_after_warm_up_evaluated']} evaluated); "
                     f"cold {w['cold_ms']} ms ({w['cold_evaluated']} evaluated)")
    for where in ("engine", "tui", "tui_after_pause"):
        block = record.get(where)
        if not block:
            continue
        rows = block.items() if where != "tui" else [("measured", block)]
        for name, s in rows:
            label = f"pause {name}" if where == "tui_after_pause" else name
            lines.append(
                f"  {where.removesuffix('_after_pause'):6} {label:9} first char median "
                f"{s['first_char_ms_median']} ms (p90 "
                f"{s['first_char_ms_p90']}), first token {s['first_token_ms_median']} ms, evaluated "
                f"{s['evaluated_median']} of {s['prompt_tokens_median']} tokens, {s['samples']} edits "
                f"({s['empty']} empty)")
            if "split_ms_median" in s:
                lines.append("         where it goes (medians, ms): " + ", ".join(
                    f"{part} {value}" for part, value in s["split_ms_median"].items()))
    for name, cell in (record.get("quality") or {}).items():
        lines.append(f"  infill {name:13} {cell['passed']}/{cell['total']} ({cell['pass_rate']:.0%})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qcode bench --completion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="GGUF path or model name; repeat for several")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--sites", type=int, default=8, help="latency: cursor sites in the sample file")
    parser.add_argument("--chars", type=int, default=3, help="latency: characters typed at each site")
    parser.add_argument("--no-tui", dest="tui", action="store_false", help="latency: skip the TUI measurement")
    parser.add_argument("--pauses", default="0,200,500", metavar="MS,MS",
                        help="latency: in the TUI, pauses between the typed character and the completion key (the "
                             "app evaluates ahead once typing pauses); the first is the headline figure")
    parser.add_argument("--no-wide", dest="wide", action="store_false",
                        help="latency: skip the 512-token suffix variant (seconds per edit on a CPU)")
    parser.add_argument("--quality", action="store_true", help="run the single-line infill check")
    parser.add_argument("--no-latency", dest="latency", action="store_false")
    parser.add_argument("--infills", type=int, default=24)
    parser.add_argument("--windows", metavar="PREFIX,SUFFIX,CONTEXT",
                        help="token windows to use instead of the measured ones (a busy machine measures small ones)")
    parser.add_argument("--max-tokens", type=int, default=64, help="as the TUI asks")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    records = []
    try:
        with tempfile.TemporaryDirectory(prefix="qcode-bench-") as where:
            repo = scratch_repo(Path(where))
            for model in args.model or [None]:
                record = run_model(model, args, repo)
                records.append(record)
                if not args.json:
                    print(format_record(record), flush=True)
    except QcodeError as exc:
        log(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    if args.json:
        print(json.dumps({"command": " ".join(sys.argv), "models": records}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
