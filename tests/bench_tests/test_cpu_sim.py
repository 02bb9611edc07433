"""bench/cpu_sim.py: qcode's drafting replayed on this CPU's measured verify curve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import cpu_sim
from bench.gpu.replay import Case
from bench.gpu.simulate import simulate_case

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
CURVE_05B = RESULTS / "cpu-sim-curve-coder-0.5b-2026-12-03.json"


def test_a_paused_lookup_drafts_a_long_copy_within_a_few_steps_where_verifying_is_dear() -> None:
    """On coder-0.5b's 2-core curve (2 tokens cost 2.4 plain steps, 8 cost 4.7) a few failed guesses pause the lookup;
    what brings it back is its shadow checks, and a shadow reports only when it ends. Followed over a whole 64-token
    proposal, the copy below ran 74 plain steps before its first draft; checked over PROBE_LENGTH tokens, 18."""
    table = cpu_sim.cost_table(json.loads(CURVE_05B.read_text()))
    reference = list(range(1000, 1200))
    # three 2-token matches that are coincidences (an edit after each), then a copy of the rest
    answer = [1000, 1001, 50, 1002, 1003, 51, 1004, 1005, 52, *reference[6:160]]
    case = Case("copy", "edit", [1, 2, 3, *reference, 4, 5], reference, answer, [])
    plan, draft_max = cpu_sim.policy("shipped-64", {})
    result = simulate_case(case, plan, table, draft_max)
    resumed = next(step for step, length in enumerate(result.lengths) if length and step > len(answer) - 160 + 6)
    assert resumed < 30
    assert result.calls < 40
    plain = simulate_case(case, None, table, draft_max)
    assert plain.decode_s / result.decode_s > 1.8  # paused that long: 1.41x (now 1.93x)


def test_the_oracle_bounds_every_policy_and_is_plain_where_nothing_matches() -> None:
    """bench.cpu_sim's oracle: the best lengths for the lookup's proposals, knowing the answer."""
    table = cpu_sim.cost_table(json.loads(CURVE_05B.read_text()))
    reference = list(range(1000, 1200))
    answer = [1000, 1001, 50, 1002, 1003, 51, 1004, 1005, 52, *reference[6:160]]
    case = Case("copy", "edit", [1, 2, 3, *reference, 4, 5], reference, answer, [])
    plain = simulate_case(case, None, table, 64).decode_s
    bound = cpu_sim.oracle_seconds(case, table)
    for name in ("shipped-64", "fixed-16", "ngram-mod"):
        plan, draft_max = cpu_sim.policy(name, {})
        assert bound <= simulate_case(case, plan, table, draft_max).decode_s
    assert plain / bound > 2.3  # a 150-token copy: the curve allows about 2.5x (64 tokens for 25 steps)
    unrelated = Case("prose", "explain", [1, 2, 3, *reference], reference, list(range(5000, 5100)), [])
    assert cpu_sim.oracle_seconds(unrelated, table) == pytest.approx(simulate_case(unrelated, None, table, 64).decode_s)
