"""bench/peer.py's bookkeeping (the server runs are manual: python -m bench.peer --server PATH)."""

from __future__ import annotations

import pytest

from bench.peer import Cell, Run, rotated, steal_share, summary, task_rows
from tui.bench.tasks import BenchTask


def _run(tok_s: float, tokens: tuple[int, ...] = (1, 2, 3)) -> Run:
    return Run(tok_s, len(tokens), 0, 0, tokens, cpu_s=(len(tokens) - 1) / (2 * tok_s))  # two busy threads


def test_every_variant_leads_a_round_in_turn() -> None:
    variants = ["qcode:none", "qcode:ngram", "server:plain", "server:ngram-mod"]
    firsts = {rotated(variants, r)[0] for r in range(4)}
    assert firsts == set(variants)
    assert sorted(rotated(variants, 5)) == sorted(variants)


def test_summary_is_the_median_over_tasks_of_ratios_of_medians() -> None:
    tasks = [BenchTask(f"t{i}", "edit", None) for i in range(3)]  # type: ignore[arg-type]
    speeds = {  # per task: qcode plain, qcode drafted, server plain, server drafted (three rounds each)
        "t0": ([50, 52, 51], [100, 90, 110], [55, 55, 55], [80, 80, 80]),
        "t1": ([40, 40, 40], [80, 80, 80], [50, 50, 50], [50, 50, 50]),
        "t2": ([60, 60, 60], [60, 60, 60], [60, 60, 60], [120, 120, 120]),
    }
    results = {}
    for name, (qp, qd, sp, sd) in speeds.items():
        cells = {"qcode:none": Cell(), "qcode:ngram": Cell(), "server:plain": Cell(), "server:ngram-mod": Cell()}
        for variant, runs in zip(cells, (qp, qd, sp, sd), strict=True):
            cells[variant].runs = [_run(x) for x in runs]
        results[name] = cells
    rows = task_rows(tasks, results)
    assert rows[0]["variants"]["qcode:ngram"]["tokens_per_s"] == 100
    assert rows[0]["variants"]["qcode:ngram"]["same_as_qcode_plain"] is True
    edit = summary(rows, ["ngram"])["edit"]
    assert edit["plain_qcode_over_server"] == pytest.approx(51 / 55, abs=1e-3)  # ratios 0.927, 0.8, 1.0
    assert edit["qcode_ngram_speedup"] == pytest.approx(100 / 51, abs=1e-3)  # 1.96, 2.0, 1.0
    assert edit["server_drafting_speedup"] == pytest.approx(80 / 55, abs=1e-3)  # 1.45, 1.0, 2.0
    assert edit["drafted_qcode_ngram_over_server"] == pytest.approx(1.25)  # 1.25, 1.6, 0.5
    assert edit["qcode_ngram_speedup_cpu"] == edit["qcode_ngram_speedup"]  # per CPU second: the same ratios here
    assert rows[0]["variants"]["qcode:ngram"]["tokens_per_cpu_s"] == pytest.approx(200)


def test_cpu_steal_share_from_two_readings() -> None:
    before = [100, 0, 50, 800, 0, 0, 0, 50, 0, 0]
    after = [200, 0, 100, 1500, 0, 0, 0, 150, 0, 0]
    assert steal_share(before, after) == pytest.approx(100 / 950, abs=1e-4)
    assert steal_share([], after) is None
