"""Completion prompts: the FIM layout, neighbouring files, windows and budgets (pure functions, no model)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fake_engine import fake_info

from engine.completion import (
    CompletionBudget,
    PromptCost,
    completion_parts,
    extended_window,
    prefix_window,
    suffix_window,
    window_start,
)
from engine.fim import FIM_TRIPLE, QWEN_MARKERS, FimParts, Marker, SourceFile, layout, render_text
from engine.neighbours import (
    Candidate,
    choose_neighbours,
    find_root,
    imported_files,
    rank_candidates,
)
from engine.settings import load_settings


def words(text: str) -> int:
    """A stand-in tokenizer: one token per word or punctuation mark, one per newline."""
    return len(re.findall(r"\w+|[^\w\s]|\n", text))


class WordCounter:
    """Just enough of a backend for the window functions: count_tokens."""

    def count_tokens(self, text: str) -> int:
        return words(text)


ALL = frozenset(Marker)


# --- layout -----------------------------------------------------------------------------------------
def test_layout_is_qwens_repository_level_psm() -> None:
    parts = FimParts("def f():\n    ", "\nprint(f())\n", path="pkg/main.py", repo="demo",
                     files=(SourceFile("pkg/util.py", "def helper():\n    return 1"),))
    text = render_text(parts, QWEN_MARKERS)
    assert text == (
        "<|repo_name|>demo\n"
        "<|file_sep|>pkg/util.py\ndef helper():\n    return 1\n\n"
        "<|file_sep|>pkg/main.py\n"
        "<|fim_prefix|>def f():\n    <|fim_suffix|>\nprint(f())\n<|fim_middle|>"
    )


def test_layout_without_repository_markers_or_path_is_the_plain_triple() -> None:
    parts = FimParts("a = ", "\n", path="x.py", repo="r", files=(SourceFile("y.py", "b = 1\n"),))
    assert layout(parts, FIM_TRIPLE) == [Marker.PREFIX, "a = ", Marker.SUFFIX, "\n", Marker.MIDDLE]
    no_path = FimParts("a = ", "\n", files=(SourceFile("y.py", "b = 1\n"),))
    assert layout(no_path, ALL) == [Marker.PREFIX, "a = ", Marker.SUFFIX, "\n", Marker.MIDDLE]


def test_layout_without_fim_markers_is_the_prefix_alone() -> None:
    parts = FimParts("a = ", "\n", path="x.py", files=(SourceFile("y.py", "b = 1\n"),))
    assert layout(parts, frozenset({Marker.REPO, Marker.FILE})) == ["a = "]
    assert render_text(parts, {}) == "a = "


def test_warm_up_layout_ends_with_the_prefix_and_is_a_prefix_of_the_completion() -> None:
    files = (SourceFile("u.py", "x = 1\n"),)
    warm = render_text(FimParts("import u\nprint(u.x)\n", None, "m.py", "r", files), QWEN_MARKERS)
    asked = render_text(FimParts("import u\nprint(", "u.x)\n", "m.py", "r", files), QWEN_MARKERS)
    assert warm.endswith("<|fim_prefix|>import u\nprint(u.x)\n")
    shared = asked.index("print(") + len("print(")
    assert warm[:shared] == asked[:shared]


# --- windows ----------------------------------------------------------------------------------------
def test_window_start_moves_in_whole_grains() -> None:
    costs = [10] * 100
    assert window_start(costs, 10_000, grain=32) == 0
    # 250 tokens hold the last 25 lines: the earliest start within budget is 75, rounded up to 96
    assert window_start(costs, 250, grain=32) == 96
    # typing on the last line does not move the start until the window outgrows its budget
    assert window_start([*costs[:-1], 14], 250, grain=32) == 96
    # a last line bigger than the budget is kept alone
    assert window_start([10, 10, 500], 100, grain=1) == 2
    # by default the grain is about a quarter of the window
    assert window_start(costs, 250) == 78 and window_start(costs, 4000) == 0
    assert window_start([10] * 1000, 4000) == 600  # 100-line grain: 600 lines within budget


def test_prefix_window_keeps_its_start_while_typing_and_the_suffix_fits_its_budget() -> None:
    engine = WordCounter()
    text = "".join(f"value_{i} = compute({i})\n" for i in range(200))
    cursor = text.index("value_150")
    typed = text[:cursor] + "v" + text[cursor:]
    first, start = prefix_window(engine, text[:cursor], 300)  # type: ignore[arg-type]
    second, start_after = prefix_window(engine, typed[: cursor + 1], 300)  # type: ignore[arg-type]
    assert start == start_after and start % 7 == 0 and second == first + "v"
    assert words(first) <= 300
    suffix = suffix_window(engine, text[cursor:], 20)  # type: ignore[arg-type]
    assert suffix.startswith("value_150 = compute(150)\n") and words(suffix) <= 20 and suffix.endswith("\n")
    assert suffix_window(engine, "rest)", 20) == "rest)"  # type: ignore[arg-type]


def test_extended_window_runs_past_the_cursor_from_the_same_start() -> None:
    engine = WordCounter()
    lines = [f"line_{i} = {i}" for i in range(100)]
    warm = extended_window(engine, lines, 32, 60)  # type: ignore[arg-type]
    assert warm.startswith("line_32 = 32\n") and words(warm) <= 60 and warm.endswith("\n")


def test_completion_parts_with_a_path_bring_repository_context(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "shapes.py").write_text("def area(w, h):\n    return w * h\n")
    main = pkg / "main.py"
    text = "from pkg.shapes import area\n\nprint(area(2, 3))\n"
    budget = CompletionBudget(prefix_tokens=200, suffix_tokens=10, context_tokens=200)
    built = completion_parts(WordCounter(), text, text.index("area(2"), main, "python", budget)  # type: ignore[arg-type]
    assert built.parts.path == "pkg/main.py" and built.parts.repo == tmp_path.name
    assert [f.path for f in built.parts.files][-1] == "pkg/shapes.py"  # most relevant: next to the file
    assert built.parts.prefix == "from pkg.shapes import area\n\nprint(" and built.parts.suffix == "area(2, 3))\n"
    warm = completion_parts(WordCounter(), text, 0, main, "python", budget, warm=True)  # type: ignore[arg-type]
    assert warm.parts.suffix is None and warm.parts.prefix == text
    with pytest.raises(Exception, match="outside the text"):
        completion_parts(WordCounter(), text, len(text) + 1, None, None, budget)  # type: ignore[arg-type]


# --- budgets ----------------------------------------------------------------------------------------
def test_prompt_cost_fits_fixed_and_per_token_seconds() -> None:
    cost = PromptCost.fit({8: 0.09, 64: 0.58})
    assert cost.per_token_s == pytest.approx(0.00875) and cost.fixed_s == pytest.approx(0.02)
    assert cost.tokens_within(0.25) == 26


def test_budget_follows_the_measured_cost_and_the_context() -> None:
    slow = CompletionBudget.from_cost(PromptCost(0.03, 1 / 115), n_ctx=8192, reserved=300)
    fast = CompletionBudget.from_cost(PromptCost(0.01, 1 / 3400), n_ctx=8192, reserved=300)
    assert 8 <= slow.suffix_tokens <= 25 and slow.prefix_tokens + slow.context_tokens <= 1150
    assert fast.suffix_tokens > 200 and fast.prefix_tokens + fast.context_tokens + fast.suffix_tokens <= 8192 - 300
    assert fast.prefix_tokens > fast.context_tokens > 0


# --- neighbouring files ------------------------------------------------------------------------------
@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    src = tmp_path / "src" / "app"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "models.py").write_text("class User:\n    name: str\n")
    (src / "db.py").write_text("def connect():\n    return None\n")
    (src / "views.py").write_text("")
    (src / "unrelated.py").write_text("X = 1\n")
    (src / "notes.txt").write_text("not code\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helpers.py").write_text("def helper():\n    pass\n")
    return tmp_path


def test_find_root_and_python_imports(repo: Path) -> None:
    views = repo / "src" / "app" / "views.py"
    assert find_root(views) == repo
    text = "from app.models import User\nfrom . import db\nimport lib.helpers as h\nimport os, json\n"
    found = imported_files(text, "python", views, repo)
    names = [p.relative_to(repo.resolve()).as_posix() for p in found]
    assert names == ["src/app/models.py", "src/app/db.py", "lib/helpers.py"] or set(names) == {
        "src/app/models.py", "src/app/db.py", "lib/helpers.py"}


def test_python_imports_resolve_from_the_package_root_and_dunder_names_are_no_mention(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    package = tmp_path / "lib" / "python" / "json"
    package.mkdir(parents=True)
    for name in ("__init__.py", "scanner.py", "encoder.py"):
        (package / name).write_text("X = 1\n")
    decoder = package / "decoder.py"
    text = "from json import scanner\n\nclass D:\n    def __init__(self):\n        pass\n"
    assert [p.name for p in imported_files(text, "python", decoder, tmp_path)] == ["scanner.py"]
    ranked = rank_candidates(text, "python", decoder, tmp_path)
    assert ranked[0].path.name == "scanner.py" and {c.score for c in ranked[1:]} == {1}


def test_js_c_and_rust_imports(tmp_path: Path) -> None:
    (tmp_path / "util.ts").write_text("export const x = 1\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "index.js").write_text("module.exports = {}\n")
    (tmp_path / "math.h").write_text("int add(int, int);\n")
    (tmp_path / "parser.rs").write_text("pub fn parse() {}\n")
    main_ts = tmp_path / "main.ts"
    js = "import { x } from './util.js'\nconst lib = require('./lib')\nimport fs from 'fs'\n"
    assert {p.name for p in imported_files(js, "typescript", main_ts, tmp_path)} == {"util.ts", "index.js"}
    assert [p.name for p in imported_files('#include "math.h"\n#include <stdio.h>\n', "c", tmp_path / "a.c",
                                           tmp_path)] == ["math.h"]
    assert [p.name for p in imported_files("mod parser;\n", "rust", tmp_path / "main.rs", tmp_path)] == ["parser.rs"]


def test_ranking_puts_imports_first_then_mentioned_then_same_directory(repo: Path) -> None:
    views = repo / "src" / "app" / "views.py"
    text = "from app.models import User\n\n# see db for the connection\n"
    ranked = rank_candidates(text, "python", views, repo)
    names = [c.path.name for c in ranked]
    assert names[0] == "models.py" and names[1] == "db.py"
    assert "unrelated.py" in names and "notes.txt" not in names and "views.py" not in names
    assert names.index("unrelated.py") > names.index("db.py")


def test_choose_neighbours_fills_the_budget_whole_then_outlined_and_orders_for_the_prompt(tmp_path: Path) -> None:
    big = tmp_path / "big.py"
    big.write_text("".join(f"def f{i}(x):\n    y = x + {i}\n    z = y * 2\n    return z\n\n" for i in range(40)))
    small = tmp_path / "small.py"
    small.write_text("def g():\n    return 1\n")
    candidates = [Candidate(small, 5), Candidate(big, 1)]
    chosen = choose_neighbours(candidates, tmp_path, 400, words)
    assert [f.path for f in chosen] == ["big.py", "small.py"]  # least relevant first
    assert chosen[1].text == small.read_text()
    assert "def f0(x):" in chosen[0].text and "z = y * 2" not in chosen[0].text  # outlined, bodies left out
    assert sum(words(f.text) + words(f.path) + 3 for f in chosen) <= 400
    assert choose_neighbours(candidates, tmp_path, 10, words) == ()


# --- the warm-up and the measured cost, on a stand-in backend ---------------------------------------------------
class TokenBackend:
    """A Backend stand-in whose tokens are words: it records requests, and each costs 1 ms + 10 ms a token."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.settings = load_settings()
        self.info = fake_info()
        self.kv_type = "q8_0"
        self.n_ctx = 4096
        self.requests: list[Any] = []
        self.cached: list[int] = []
        self.cancel_after = cancel_after
        self.cancel: Any = None

    def count_tokens(self, text: str) -> int:
        return words(text)

    def fim_prompt(self, parts: FimParts) -> list[int]:
        tokens: list[int] = []
        for piece in layout(parts, ALL):
            words_here = re.findall(r"\w+|[^\w\s]|\n", piece) if isinstance(piece, str) else []
            tokens += [-1] if isinstance(piece, Marker) else [hash(w) % 1000 for w in words_here]
        return tokens

    def complete(self, request: Any, cancel: Any = None) -> Any:
        from engine.cache import common_prefix
        from engine.events import DoneEvent, Stats

        prompt = request.prompt if isinstance(request.prompt, list) else [0] * words(request.prompt)
        reused = min(common_prefix(self.cached, prompt), len(prompt) - 1)
        self.cached = list(prompt)
        self.requests.append(request)
        if self.cancel_after is not None and len(self.requests) >= self.cancel_after and cancel is not None:
            cancel.set()
        evaluated = len(prompt) - reused
        return DoneEvent("", Stats(prompt_tokens=len(prompt), prompt_tokens_evaluated=evaluated,
                                   ttft_ms=1.0 + 10.0 * evaluated))


def test_prompt_cost_is_probed_once_and_keeps_the_fastest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.completion import prompt_cost

    monkeypatch.setenv("QCODE_CACHE_DIR", str(tmp_path))
    backend = TokenBackend()
    cost = prompt_cost(backend)  # type: ignore[arg-type]
    assert cost.per_token_s == pytest.approx(0.010, rel=0.05) and cost.fixed_s == pytest.approx(0.001, abs=0.002)
    probes = len(backend.requests)
    assert probes >= 4 and prompt_cost(backend) is cost and len(backend.requests) == probes  # kept, not probed again
    again = TokenBackend()
    assert prompt_cost(again) == cost and again.requests == []  # from the disk cache


def test_the_suffix_window_follows_how_fast_completions_evaluate_lately(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suffix comes last in the prompt and is evaluated again after every edit: when the machine runs slower
    than its fastest probe (a busy moment, a laptop on battery), it shrinks so a keystroke's completion stays
    within the latency budget, and grows back, never past the measured window; the rest of the layout stays put."""
    from engine.completion import EDIT_TOKENS, LATENCY_BUDGET_S, completion_budget, observe_prompt_time, prompt_cost

    monkeypatch.setenv("QCODE_CACHE_DIR", str(tmp_path))
    backend: Any = TokenBackend()  # 1 ms + 10 ms a token at its fastest
    measured = completion_budget(backend)
    cost = prompt_cost(backend)
    assert measured.suffix_tokens == cost.tokens_within(LATENCY_BUDGET_S) - EDIT_TOKENS
    observe_prompt_time(backend, 2, cost.seconds(2) * 5)  # too few tokens to say how fast it evaluates
    assert completion_budget(backend) == measured
    for _ in range(12):
        observe_prompt_time(backend, 20, cost.seconds(20) * 2)  # twice as slow
    slow = completion_budget(backend)
    assert slow.suffix_tokens < measured.suffix_tokens
    assert cost.scaled(2).seconds(slow.suffix_tokens + EDIT_TOKENS) <= LATENCY_BUDGET_S * 1.1
    assert (slow.prefix_tokens, slow.context_tokens) == (measured.prefix_tokens, measured.context_tokens)
    for _ in range(30):
        observe_prompt_time(backend, 20, cost.seconds(20) / 2)  # faster than ever: capped at the measured window
    assert completion_budget(backend) == measured


def test_warm_up_is_one_request_in_small_batches_kept_as_a_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.completion import WARM_STEP_S, evaluate_ahead, prompt_cost

    monkeypatch.setenv("QCODE_CACHE_DIR", str(tmp_path))
    (tmp_path / ".git").mkdir()
    path = tmp_path / "m.py"
    text = "".join(f"value_{i} = compute({i}, 'x')\n" for i in range(60))
    budget = CompletionBudget(prefix_tokens=400, suffix_tokens=10, context_tokens=0)
    backend: Any = TokenBackend()
    stats = evaluate_ahead(backend, text, 10, "warm-up", path=path, budget=budget)
    warm = backend.requests[-1]  # after the probes of the prompt cost, which sizes the batches
    full = warm.prompt
    assert warm.max_tokens == 1 and warm.drafter == "none"
    # a cancel waits for one batch of about WARM_STEP_S at most; everything but the last token becomes a snapshot
    assert warm.batch_tokens == prompt_cost(backend).tokens_within(WARM_STEP_S) < len(full)
    assert warm.prefix_tokens == len(full) - 1
    assert stats.prompt_tokens == len(full) and stats.prompt_tokens_evaluated == len(full)
    assert stats.completion_tokens == 0

    # typing paused: the completion prompt at the cursor, evaluated ahead; no snapshot of a prompt that moves on
    cursor = text.index("compute(30")
    prefetch = evaluate_ahead(backend, text, cursor, "prefetch", path=path, budget=budget)
    ahead = backend.requests[-1]
    assert ahead.prompt == backend.fim_prompt(completion_parts(backend, text, cursor, path, None, budget).parts)
    assert ahead.prefix_tokens == 0 and ahead.batch_tokens > 0 and ahead.max_tokens == 1
    assert prefetch.prompt_tokens == len(ahead.prompt)
