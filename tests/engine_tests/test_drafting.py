"""Drafting: lossless against measured noise on the real default model, rollback, the accept rule, the controller."""

from __future__ import annotations

import random
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import GenerationRequest, load_settings
from engine.draft.adaptive import (
    CPU_VERIFY_BLOCK,
    PRIOR_SLOPE,
    RUN_RISK,
    CostModel,
    DraftController,
    repeated_key,
)
from engine.draft.base import Drafter
from engine.draft.edits import EditedReference
from engine.draft.ngram import NgramDrafter
from engine.draft.plan import EDIT_PRIOR
from engine.sampling import speculative_accept, target_distribution
from tui.bench.lossless import first_divergence, measure_gap_noise


def _refactor_prompt() -> tuple[str, str]:
    source = Path(textwrap.__file__).read_text()
    start = source.index("def dedent(")
    code = source[start : source.index("\ndef ", start + 10)]
    prompt = (
        "Rewrite this Python function with type hints, keeping everything else the same.\n\n"
        f"```python\n{code}\n```\n\n### Answer\n```python\n"
    )
    return prompt, code


def _prompts() -> list[tuple[str, str]]:
    refactor, code = _refactor_prompt()
    return [
        (refactor, code),
        ("Explain what a Python list comprehension is, with an example.\n\n### Answer\n", ""),
        ("def parse_header(line):\n    \"\"\"Split 'Key: value' into a pair.\"\"\"\n", ""),
    ]


@pytest.fixture(scope="module")
def noise(real_engine: Any) -> float:
    """The build's batch-versus-step noise on the default model, on code like the prompts' (measured, not assumed)."""
    prompt = real_engine.tokenize(_refactor_prompt()[0])
    tokens = real_engine.tokenize(_refactor_prompt()[1], add_bos=False)[:16]
    return measure_gap_noise(real_engine, prompt, tokens)


@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("drafter", ["ngram", "model"])
def test_greedy_drafting_is_lossless_within_measured_noise(
    real_engine: Any, noise: float, drafter: str, index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt, reference = _prompts()[index]
    if drafter == "model":  # the default model drafting for itself: its drafts are its own greedy choices
        settings = load_settings(draft_model=real_engine.info.path)
        monkeypatch.setattr(real_engine, "settings", settings)
    if drafter == "model" or index == 0:
        # how long a draft pays is the controller's choice from live timings (a drafter as large as its target never
        # pays; on a loaded machine a verify can look too dear): here every proposal is verified in full, so the
        # drafted path this test checks runs on a machine of any speed
        monkeypatch.setattr(DraftController, "best_length", _verify_all)
    plain = real_engine.complete(GenerationRequest(prompt, max_tokens=64, drafter="none"))
    drafted = real_engine.complete(GenerationRequest(prompt, max_tokens=64, drafter=drafter, reference=reference))
    assert drafted.stats.drafter == drafter
    if drafter == "model" or index == 0:
        assert drafted.stats.draft_accepted > 0  # drafting really ran
    tokens = real_engine.tokenize(prompt)
    split = first_divergence(real_engine, tokens, plain.tokens, drafted.tokens)
    if split is None:
        assert drafted.text == plain.text
        return
    assert abs(split.plain_gap) < noise, (
        f"drafted run parted from the plain run at answer token {split.position} where the plain run's logit gap "
        f"was {split.plain_gap:.3f}, wider than this build's batch noise {noise:.3f}"
    )


def _verify_all(
    self: DraftController, available: int | None = None, sustained: bool = False, streak: int | None = None
) -> int:
    return self.draft_max if available is None else min(self.draft_max, available)


def test_noise_is_measured_and_nonnegative(noise: float) -> None:
    assert 0.0 <= noise < 20.0


def test_rollback_then_next_token_matches_a_plain_run(real_engine: Any, noise: float) -> None:
    runtime, cache = real_engine.runtime, real_engine.cache
    prompt = real_engine.tokenize("def add(a, b):\n    return a + b\n\ndef sub(a, b):\n")
    kept = real_engine.tokenize("    return a - b\n", add_bos=False)[:3]
    junk = real_engine.tokenize(" banana orchard", add_bos=False)
    # plain: prompt, then the kept tokens one by one
    cache.reset()
    runtime.decode(prompt, 0, 1)
    cache.extend(prompt)
    for token in kept:
        runtime.decode([token], len(cache.tokens), 1)
        cache.extend([token])
    reference = runtime.logits(1)[0].copy()
    # drafted: the kept tokens and a rejected tail in one batch, roll the tail back, decode the last kept again
    cache.reset()
    runtime.decode(prompt, 0, 1)
    cache.extend(prompt)
    batch = kept[:-1] + junk
    runtime.decode(batch, len(cache.tokens), len(batch))
    cache.extend(batch)
    assert cache.rollback(len(prompt) + len(kept) - 1)
    runtime.decode([kept[-1]], len(cache.tokens), 1)
    cache.extend([kept[-1]])
    after = runtime.logits(1)[0]
    delta = after - reference
    assert float(delta.max() - delta.min()) <= noise
    assert int(after.argmax()) == int(reference.argmax())
    cache.reset()


def test_speculative_accept_keeps_the_target_distribution() -> None:
    rng_logits = np.random.default_rng(3)
    row = rng_logits.normal(0, 2, size=50).astype(np.float32)
    ids, probs = target_distribution(row, temperature=0.8, top_k=10, top_p=0.9)
    expected = dict(zip(ids.tolist(), probs.tolist(), strict=True))
    rng = random.Random(11)
    n = 20000
    for draft in (int(ids[0]), int(ids[-1]), 49 if 49 not in expected else 48):  # likely, unlikely, impossible
        counts = Counter(speculative_accept(row, draft, 0.8, 10, 0.9, rng)[1] for _ in range(n))
        assert set(counts) <= set(expected)
        chi2 = sum((counts.get(t, 0) - n * p) ** 2 / (n * p) for t, p in expected.items())
        # degrees of freedom = len(expected) - 1 (at most 9): 99.9% quantile of chi2(9) is 27.9
        assert chi2 < 27.9, (draft, chi2)


def test_controller_stops_drafting_at_zero_acceptance_and_drafts_long_at_full() -> None:
    cpu_like = CostModel(prior_slope=0.45)
    never = DraftController(16, cpu_like)
    for _ in range(30):
        never.record(proposed=4, accepted=0)
    assert never.best_length() == 0
    always = DraftController(16, CostModel(prior_slope=0.45))
    for _ in range(30):
        always.record(proposed=16, accepted=16)
    assert always.best_length() == 16
    assert always.best_length(available=5) == 5


def test_controller_follows_measured_costs() -> None:
    cost = CostModel()
    for n, seconds in ((1, 0.010), (2, 0.019), (4, 0.037), (8, 0.075), (16, 0.15)):  # verify as dear as decode
        for _ in range(5):
            cost.record(n, seconds)
    controller = DraftController(16, cost)
    for _ in range(30):
        controller.record(proposed=8, accepted=6)  # good but imperfect acceptance
    assert controller.best_length() == 0  # nothing pays when a verified token costs a whole step
    cheap = CostModel()
    for n, seconds in ((1, 0.010), (4, 0.012), (8, 0.014), (16, 0.02)):  # a GPU-like curve
        for _ in range(5):
            cheap.record(n, seconds)
    controller.cost = cheap
    assert controller.best_length() >= 4


def test_ngram_drafter_copies_the_reference_from_where_it_left_off() -> None:
    reference = [1, 2, 3, 9, 1, 2, 3, 8, 7]
    drafter = NgramDrafter(2, 3)
    drafter.begin([], reference)
    assert drafter.propose([5, 1, 2, 3], 3) == [9, 1, 2]
    drafter.observe(3, 3)  # the answer copied the first occurrence and past it
    assert drafter.propose([5, 1, 2, 3, 9, 1, 2, 3], 2) == [8, 7]
    assert drafter.propose([4, 4], 3) == []


def test_ngram_drafter_says_how_long_a_copy_its_proposal_continues() -> None:
    reference = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 0]
    drafter = NgramDrafter(2, 3)
    drafter.begin([], reference)
    assert drafter.propose([9, 9, 1, 2, 3, 4, 5, 6], 3) == [7, 8, 9]
    assert drafter.streak == 6  # the answer so far ends with reference[0:6]
    drafter.observe(3, 3)
    assert drafter.propose([4, 4, 8, 9, 1, 2, 3], 2) == [0]  # the later "1 2 3", where the copy left off
    assert drafter.streak == 5  # 8 9 1 2 3
    history = [5, 7, 7, 5, 6, 5, 7, 7]  # no reference: the answer's own past ("5 7 7" followed by 5)
    drafter.begin([], [])
    assert drafter.propose(history, 4) == [5, 6, 5, 7]
    assert drafter.streak == 3


def _walk(
    drafter: NgramDrafter, reference: list[int], answer: list[int], limit: int = 6
) -> tuple[int, list[list[int]]]:
    """The engine's loop over `answer` with `drafter` verifying all it proposes: accepted tokens and the drafts."""
    drafter.begin([0, *reference], reference)
    history, emitted, accepted_total, drafts = [0, *reference], 0, 0, []
    while emitted < len(answer):
        draft = drafter.propose(history, min(limit, len(answer) - emitted - 1))
        accepted = 0
        while accepted < len(draft) and draft[accepted] == answer[emitted + accepted]:
            accepted += 1
        if draft:
            drafter.observe(len(draft), accepted)
            drafts.append(draft)
        history += answer[emitted : emitted + accepted + 1]
        emitted += accepted + 1
        accepted_total += accepted
    return accepted_total, drafts


def test_a_replacement_the_answer_made_twice_is_drafted_at_the_next_occurrences() -> None:
    """A rename: name 50 becomes 60 at every occurrence. Copying the original, every draft through an occurrence
    fails there; once the answer has made the replacement twice, the lookup copies the reference as edited."""
    reference = [t for line in range(8) for t in (10 + 3 * line, 11 + 3 * line, 50, 12 + 3 * line)]
    answer = [60 if t == 50 else t for t in reference]
    accepted, drafts = _walk(NgramDrafter(2, 3), reference, answer)
    assert any(60 in draft for draft in drafts)
    copying, _ = _walk(NgramDrafter(2, 3, learn_edits=False), reference, answer)  # the lookup before
    assert accepted > copying + 8  # 20 accepted against 7


def test_a_replacement_the_answer_does_not_follow_is_dropped() -> None:
    """Two occurrences renamed, the third kept (the answer's own choice): the draft through it fails once, and the
    lookup copies the original from there on."""
    reference = [t for line in range(8) for t in (10 + 3 * line, 11 + 3 * line, 50, 12 + 3 * line)]
    answer = [60 if t == 50 and i < 12 else t for i, t in enumerate(reference)]
    _, drafts = _walk(NgramDrafter(2, 3), reference, answer)
    with_rename = [i for i, draft in enumerate(drafts) if 60 in draft]
    assert with_rename and any(50 in draft for draft in drafts[with_rename[-1] + 1 :])


def test_a_new_indent_is_learned_from_one_stretch_that_changes_it_twice() -> None:
    """A method answered without its class's indentation: every line's indent token (90) is written as another
    (80). Where a one-token line (40 + k: a docstring's quotes and line break) sits between two indents, the stretch
    from one copied line to the next holds both changes; counted apart they confirm the new indent, and the lookup
    copies on across line breaks."""
    reference = [t for k in range(6) for t in (90, 40 + k, 90, 10 + 3 * k, 11 + 3 * k, 12 + 3 * k, 92)]
    answer = [80 if t == 90 else t for t in reference]
    accepted, _ = _walk(NgramDrafter(2, 3), reference, answer)
    assert accepted >= 24  # counting each stretch as one replacement: 11


def test_replacements_are_short_and_confirmed() -> None:
    edited = EditedReference([1, 2, 3, 1, 2, 3])
    assert not edited.learn([2], [7])  # once: maybe a one-off edit
    assert edited.learn([2], [7]) and edited.tokens == [1, 7, 3, 1, 7, 3]
    assert edited.replaced == [None, (2,), None, None, (2,), None]
    assert not edited.learn([1, 2, 3, 1, 2], [9]) and not edited.learn([1, 2, 3, 1, 2], [9])  # an edit, not a rename
    assert not edited.learn([], [9]) and not edited.learn([], [9])  # an insertion: nowhere to apply it
    assert edited.contradicted(4) and edited.tokens == [1, 2, 3, 1, 2, 3]
    assert not edited.learn([2], [7]) and not edited.learn([2], [7])  # dropped for the request


def _copy_costs() -> CostModel:
    """A CPU-like verify curve: each extra verified token costs a third of a step."""
    cost = CostModel()
    for n in (1, 2, 4, 8, 16, 32, 65):
        cost.record(n, 0.02 * (1 + (n - 1) / 3))
    return cost


def test_long_copies_are_drafted_long_and_fresh_matches_short() -> None:
    """Edits copy their input until the next edit point: a copy that has run long goes on (a long verify call is
    cheap per token), while right after an edit a short match is as often a coincidence."""
    controller = DraftController(64, _copy_costs())
    controller.restart(EDIT_PRIOR)
    for _ in range(12):
        controller.record(8, 2, streak=2)  # after an edit: the first guesses are often wrong
        controller.record(64, 64, streak=40)  # deep in a copy: all of it accepted
    assert controller.best_length(64, streak=40) == 64
    assert controller.best_length(64, streak=2) < 16
    # a new request starts over: what one edit's copies taught does not carry into the next text
    controller.restart(EDIT_PRIOR)
    assert controller.best_length(64, streak=40) < 64


def test_a_short_match_risks_a_short_verify_where_verifying_is_dear() -> None:
    """A 2-token match is often a coincidence, however well the request's copies went: on a CPU-like curve (a third
    of a step per verified token) its draft may cost about RUN_RISK steps per token of the copy; a GPU-like curve
    (64 tokens for 2.5 steps) hardly limits it, and a long copy is drafted long on both."""
    controller = DraftController(64, _copy_costs())
    controller.restart(EDIT_PRIOR)
    for _ in range(12):
        controller.record(64, 64, streak=40)  # every copy so far accepted in full
    fresh = controller.best_length(64, streak=2)
    assert fresh >= 1 and _copy_costs().relative(fresh + 1) - 1.0 <= RUN_RISK * 2
    assert controller.best_length(64, streak=40) == 64
    flat = CostModel()
    for n in (1, 2, 4, 8, 16, 32, 65):
        flat.record(n, 0.01 * (1 + (n - 1) / 40))
    controller.cost = flat
    assert controller.best_length(64, streak=2) == 64


def test_lookup_drafts_on_a_cpu_fill_whole_verify_blocks(real_engine: Any) -> None:
    """On a CPU a verify call of a multiple of 4 tokens costs less than its neighbours (llama.cpp multiplies
    repacked weights four rows at a time): a lookup draft is sized so that its call (the draft and the token before
    it) fills whole blocks, or is shorter than one. The learned curve knows only the sizes it has timed, so an
    unblocked controller picks lengths in between."""
    cost = CostModel()
    for n, steps in ((1, 1.0), (2, 2.3), (4, 3.1), (8, 4.9), (16, 7.5), (32, 12.2), (65, 25.7)):  # coder-0.5b's
        cost.record(n, 0.02 * steps)
    blocked, free = DraftController(64, cost, verify_block=4), DraftController(64, cost)
    chosen: dict[DraftController, set[int]] = {blocked: set(), free: set()}
    for controller in chosen:
        controller.restart(EDIT_PRIOR)
        for _ in range(8):
            controller.record(24, 24, streak=16)  # copies run on
        for streak in range(1, 80):
            for available in (5, 9, 30, 64):
                chosen[controller].add(controller.best_length(available, streak=streak))
    assert all(k < 3 or (k + 1) % 4 == 0 for k in chosen[blocked]) and max(chosen[blocked]) > 30
    assert any(k >= 3 and (k + 1) % 4 for k in chosen[free])
    # the engine's lookup on a CPU drafts so
    assert not real_engine.runtime.offloads
    assert real_engine.draft_plan("ngram").sources[0].controller.verify_block == CPU_VERIFY_BLOCK


def test_calls_longer_than_any_timed_are_priced_no_dearer_per_token_than_the_prior() -> None:
    """A CPU's curve flattens: the average of short calls (0.6 of a step per token) would price a 64-token call at
    39 steps where it costs about 24, so it would never be tried, and never timed."""
    cost = CostModel()
    for n in range(1, 9):
        cost.record(n, 0.05 * (1 + 0.6 * (n - 1)))
    assert cost.relative(8) == pytest.approx(5.2)
    assert cost.relative(64) == pytest.approx(5.2 + PRIOR_SLOPE * 56)
    assert cost.curve(64)[64] == pytest.approx(cost.relative(64))
    cost.record(64, 0.05 * 24)  # tried once: from now on priced by its time
    assert cost.relative(64) == pytest.approx(24)
    steep_prior = CostModel(prior_slope=0.9)  # below the prior, the timed average stands
    for n in range(1, 9):
        steep_prior.record(n, 0.05 * (1 + 0.6 * (n - 1)))
    assert steep_prior.relative(16) == pytest.approx(5.2 + 0.6 * 8)


def test_run_acceptance_leans_on_the_per_token_rate_where_it_has_no_evidence() -> None:
    controller = DraftController(64, _copy_costs())
    controller.restart(0.9)
    expected = controller.runs.expected_tokens(streak=10, limit=8, acceptance=controller.acceptance)
    assert expected == pytest.approx([controller.expected_tokens(k) for k in range(9)])
    for _ in range(20):
        controller.record(8, 0, streak=10)  # every token after a 10-token copy rejected
    assert controller.best_length(64, streak=10) == 0


EXACT_SCRIPT = """
import json, sys
from engine import Engine, GenerationRequest, load_settings
engine = Engine(load_settings(exact_batches=True))
prompt, reference = json.loads(sys.argv[1])
plain = engine.complete(GenerationRequest(prompt, max_tokens=48, drafter="none"))
drafted = engine.complete(GenerationRequest(prompt, max_tokens=48, drafter="ngram", reference=reference))
print(json.dumps([plain.tokens, drafted.tokens, drafted.stats.draft_accepted]))
"""


@pytest.mark.slow
def test_exact_batches_make_drafted_greedy_runs_identical() -> None:
    # a fresh process: ggml reads its kernel switch once, at the first matmul
    import json
    import subprocess
    import sys

    prompt, reference = _refactor_prompt()
    done = subprocess.run(
        [sys.executable, "-c", EXACT_SCRIPT, json.dumps([prompt, reference])],
        capture_output=True, text=True, timeout=600, check=True,
    )
    plain, drafted, accepted = json.loads(done.stdout.strip().splitlines()[-1])
    assert accepted > 0
    assert drafted == plain


# --- draft plans: which source proposes, and costly sources while paused --------------------------------------------


class _ListDrafter(Drafter):
    """Proposes a fixed list; counts how often it was asked."""

    streak = 0

    def __init__(self, name: str, tokens: list[int]) -> None:
        self.name, self.tokens, self.asked, self.observed = name, tokens, 0, []

    def begin(self, prompt: Any, reference: Any) -> None:
        pass

    def propose(self, history: Any, limit: int) -> list[int]:
        self.asked += 1
        return self.tokens[:limit]

    def observe(self, proposed: int, accepted: int) -> None:
        self.observed.append((proposed, accepted))


def _paused() -> DraftController:
    controller = DraftController(8)
    for _ in range(20):
        controller.record(4, 0)  # nothing accepted: no length pays
    assert controller.best_length(8) == 0
    return controller


def test_plan_prefers_a_long_ngram_match_then_the_costly_source() -> None:
    from engine.draft.plan import DraftPlan, DraftSource

    ngram, mtp = _ListDrafter("ngram", [1, 2]), _ListDrafter("mtp", [7, 8, 9])
    plan = DraftPlan("ngram+mtp", [DraftSource(ngram, DraftController(8), min_tokens=4),
                                   DraftSource(mtp, DraftController(8), costly=True)])
    proposal = plan.propose([0], 8)
    # the head is asked for no more than its controller verifies (one token at even odds on the prior curve)
    assert proposal is not None and proposal.source.name == "mtp" and proposal.tokens == [7] == proposal.draft
    ngram.tokens = [1, 2, 3, 4, 5]
    proposal = plan.propose([0], 8)
    assert proposal is not None and proposal.source.name == "ngram" and mtp.asked == 1  # the head was not called
    plan.verified(proposal, 2)
    assert ngram.observed == [(proposal.length, 2)] and not mtp.observed
    # nothing better from the head: the short n-gram match is still used
    ngram.tokens, mtp.tokens = [1, 2], []
    proposal = plan.propose([0], 8)
    assert proposal is not None and proposal.source.name == "ngram" and proposal.tokens == [1, 2]


def test_a_paused_costly_source_only_probes_now_and_then() -> None:
    from engine.draft.plan import PROBE_EVERY, PROBE_LENGTH, PROBE_MAX_GAP, DraftPlan, DraftSource

    mtp = _ListDrafter("mtp", list(range(7, 23)))
    plan = DraftPlan("mtp", [DraftSource(mtp, _paused(), costly=True)])
    proposals = [plan.propose([0], 16) for _ in range(1 + 7 * PROBE_EVERY)]
    # probes back off: step 1, then after 8, 16 and 32 steps
    probed = [step + 1 for step, p in enumerate(proposals) if p is not None]
    assert probed == [1, 1 + PROBE_EVERY, 1 + 3 * PROBE_EVERY, 1 + 7 * PROBE_EVERY] and mtp.asked == 4
    probes = [p for p in proposals if p is not None]
    assert all(p.length == 0 and p.draft == [] and len(p.tokens) == PROBE_LENGTH for p in probes)  # shadows only
    for _ in range(4 * PROBE_MAX_GAP):
        plan.propose([0], 16)
    assert 4 + 3 <= mtp.asked <= 4 + 5  # the gap stops growing at PROBE_MAX_GAP
    plan.begin([0], [])  # a new request probes at once, with the short gap again
    assert plan.propose([0], 16) is not None
    # a head whose calls cost more than a perfect draft saves is probed only at the longest gap
    plan.sources[0].controller.cost.record(1, 0.010)
    plan.sources[0].controller.record_draft(1, 0.050)
    plan.begin([0], [])
    proposals = [plan.propose([0], 16) for _ in range(1 + 2 * PROBE_MAX_GAP)]
    assert [step for step, p in enumerate(proposals) if p is not None] == [0, PROBE_MAX_GAP, 2 * PROBE_MAX_GAP]


class _SlowFirstDrafter(_ListDrafter):
    """Its first proposal of a request takes 400 ms (the MTP head catching up on the prompt), then 1 ms a token.

    The two are far apart, so a busy machine's late wake-ups cannot make one look like the other."""

    def begin(self, prompt: Any, reference: Any) -> None:
        self.first = True

    def propose(self, history: Any, limit: int) -> list[int]:
        time.sleep(0.400 if self.first else 0.001 * min(limit, len(self.tokens)))
        self.first = False
        return super().propose(history, limit)


def test_proposals_are_timed_per_token_except_a_requests_first() -> None:
    from engine.draft.plan import DraftPlan, DraftSource

    cost = CostModel()
    cost.record(1, 0.010)
    controller = DraftController(8, cost, prior=0.9)
    head = _SlowFirstDrafter("mtp", list(range(10, 20)))
    plan = DraftPlan("mtp", [DraftSource(head, controller, costly=True)])
    plan.begin([0], [])
    plan.propose([0], 8)
    assert controller.draft_cost() == 0.0  # the prompt catch-up is not charged to its tokens
    plan.propose([0], 8)
    # ~1 ms a token against a 10 ms plain step (0.1); charged with the catch-up it would be about 4
    assert 0.1 <= controller.draft_cost() < 2.0


def test_plan_records_decode_times_once_per_cost_model() -> None:
    from engine.draft.plan import DraftPlan, DraftSource

    shared = CostModel()
    plan = DraftPlan("ngram+mtp", [DraftSource(_ListDrafter("a", []), DraftController(8, shared)),
                                   DraftSource(_ListDrafter("b", []), DraftController(8, shared))])
    plan.record_cost(1, 0.01)
    plan.record_cost(1, 0.03)
    assert shared.snapshot()[1] == pytest.approx(0.01 + 0.2 * 0.02)  # two records, not four


# --- calibration of the verify-cost curve, per card --------------------------------------------------------------


def test_calibration_times_every_length_once_then_comes_from_the_cache(
    real_engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine import Engine

    monkeypatch.setenv("QCODE_CACHE_DIR", str(tmp_path))  # the calibration cache; the model is named explicitly
    settings = load_settings(model=real_engine.info.path, draft="ngram", draft_max=4, draft_calibration="on")
    said: list[str] = []
    first = Engine(settings, lambda text, fraction: said.append(text))
    try:
        assert "calibrating draft costs" in said
        curve = first.costs.snapshot()
        # 0: the steady plain step; -n: n-token calls in a row (repeated shapes)
        assert sorted(curve) == [-5, -4, -3, -2, 0, 1, 2, 3, 4, 5] and all(seconds > 0 for seconds in curve.values())
        assert first.cache.tokens == []  # the scratch context was cleared
        plain = first.complete(GenerationRequest("def add(a, b):\n", max_tokens=8, drafter="none"))
        drafted = first.complete(GenerationRequest("def add(a, b):\n", max_tokens=8, drafter="ngram"))
        assert plain.stats.finish_reason and drafted.stats.drafter == "ngram"
    finally:
        first.close()
    assert len(list((tmp_path / "calibration").glob("costs-*.json"))) == 1
    said.clear()
    second = Engine(settings, lambda text, fraction: said.append(text))
    try:
        assert "calibrating draft costs" not in said
        assert second.costs.snapshot() == pytest.approx(curve)
    finally:
        second.close()
    off = Engine(settings.model_copy(update={"draft_calibration": "off"}))
    try:
        assert off.costs.snapshot() == {}
    finally:
        off.close()


def test_costs_learned_while_drafting_carry_to_the_next_process_where_nothing_calibrates(
    real_engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each `qcode` command is a new process: on a CPU (nothing calibrates) the curve a request's drafting timed is
    where the next process starts, not the prior; `off` neither keeps nor reads it."""
    from engine import Engine

    monkeypatch.setenv("QCODE_CACHE_DIR", str(tmp_path))  # the model is named explicitly
    settings = load_settings(model=real_engine.info.path, draft="ngram", draft_max=4, draft_calibration="auto",
                             gpu_layers=0)
    # every proposal verified in full: drafting runs on a machine of any speed
    monkeypatch.setattr(DraftController, "best_length", _verify_all)
    prompt, reference = _refactor_prompt()
    request = GenerationRequest(prompt, max_tokens=24, drafter="ngram", reference=reference)
    first = Engine(settings)
    try:
        assert first.costs.snapshot() == {}  # nothing calibrated, nothing learned yet
        assert first.complete(request).stats.draft_steps > 0
        learned = first.costs.snapshot()
        assert any(n > 1 for n in learned)  # verify calls were timed
    finally:
        first.close()
    second = Engine(settings)
    try:
        assert second.costs.snapshot() == pytest.approx(learned)
    finally:
        second.close()
    off = Engine(settings.model_copy(update={"draft_calibration": "off"}))
    try:
        assert off.costs.snapshot() == {}
        off.complete(request)
    finally:
        off.close()
    again = Engine(settings)
    try:
        assert again.costs.snapshot() == pytest.approx(learned)  # `off` kept nothing
    finally:
        again.close()


def test_switch_pricing_charges_a_draft_for_the_plain_step_after_it() -> None:
    """On a GPU a plain step right after a draft loses its CUDA graph and costs more (bench/gpu/RESULTS.md)."""
    priced, blind = CostModel(price_switches=True), CostModel()
    for cost in (priced, blind):
        for n, ms in [(1, 10), (1, 10), (1, 10), (5, 20), (1, 15), (1, 10), (5, 20), (1, 15)]:
            cost.record(n, ms / 1000)
    assert priced.switch_penalty() == pytest.approx(0.5)
    assert priced.relative(5) == pytest.approx(2.0)  # against the steady step, not the average of both kinds
    assert blind.switch_penalty() == 0.0
    assert 1.0 < blind.relative(5) < priced.relative(5)  # the average plain step makes drafts look cheap
    at_even_odds = [DraftController(8, cost) for cost in (priced, blind)]
    for controller in at_even_odds:
        for _ in range(10):
            controller.record(4, 1)  # one token in two accepted
    assert at_even_odds[0].best_length(8) == 0 < at_even_odds[1].best_length(8)  # priced: drafting does not pay
    # a calibration carries the steady step; seeding gives both kinds of plain step at once
    seeded = CostModel(price_switches=True)
    seeded.seed({0: 0.010, 1: 0.015, 5: 0.020})
    assert seeded.switch_penalty() == pytest.approx(0.5) and seeded.relative(5) == pytest.approx(2.0)
    assert seeded.snapshot()[0] == pytest.approx(0.010)


def test_a_shapes_graph_capturing_call_is_not_taken_for_a_steady_one() -> None:
    """On a GPU the first call of a new shape runs kernel by kernel, the second captures its graph, the third
    replays it. A head that drafts, then pauses for two plain steps, then drafts again makes only the first two
    kinds of plain step: learning the capture as the steady step (12 ms taken for 16) priced every draft a quarter
    below its cost, and the head drafted where it lost (H200, run 9)."""
    cost = CostModel(price_switches=True)
    cost.seed({0: 0.012, 1: 0.016, 3: 0.019, repeated_key(3): 0.0155})
    for _ in range(30):
        for n, ms in [(3, 19), (1, 16), (1, 20)]:  # a draft, the plain step after it, the capturing one
            cost.record(n, ms / 1000)
    assert cost.base_seconds() == pytest.approx(0.012)
    assert cost.relative_repeated(3) == pytest.approx(0.0155 / 0.012)
    for ms in (19, 24, 16, 15.6, 15.5):  # kept at one length: change, capture, then replays
        cost.record(3, ms / 1000)
    assert 0.0155 < cost.snapshot()[repeated_key(3)] < 0.0158
    for _ in range(3):
        cost.record(1, 0.0121)  # sustained plain decoding refines the steady step
    assert cost.base_seconds() == pytest.approx(0.012 + 0.2 * 0.0001)
    steady = cost.base_seconds()
    cost.interrupted()  # a prompt ran: the next one-token call is the first of its shape, not a fourth in a row
    cost.record(1, 0.0166)
    assert cost.base_seconds() == steady


def test_a_new_request_starts_every_shape_anew() -> None:
    from engine.draft.plan import DraftPlan, DraftSource

    cost = CostModel(price_switches=True)
    cost.seed({0: 0.012})
    plan = DraftPlan("mtp", [DraftSource(_ListDrafter("mtp", []), DraftController(6, cost), costly=True)])
    for _ in range(5):
        plan.record_cost(1, 0.012)
    plan.begin([0], [])  # the request's prompt ran in between
    plan.record_cost(1, 0.0166)
    plan.record_cost(1, 0.020)  # the capture
    assert cost.base_seconds() == pytest.approx(0.012)
    plan.record_cost(1, 0.012)
    assert cost.base_seconds() == pytest.approx(0.012)


def test_a_sustained_drafter_is_priced_at_repeated_shapes_plus_its_own_calls() -> None:
    """The MTP head drafts at every step: kept at one length, its verify calls repeat a shape (a GPU replays the
    graph, cheaper than among changing shapes) and no plain step follows; but each head call costs."""
    cost = CostModel(price_switches=True)
    cost.seed({0: 0.010, 1: 0.015, 4: 0.024, repeated_key(4): 0.016})
    assert cost.relative(4) == pytest.approx(2.4) and cost.relative_repeated(4) == pytest.approx(1.6)
    assert cost.relative_repeated(5) == cost.relative(5)  # never timed in a row: priced as changing
    controller = DraftController(8, cost)
    for _ in range(20):
        controller.record(3, 2)  # two in three accepted
    assert controller.best_length(8) == 0  # lookup's way: a changing shape plus the plain step after it
    assert controller.best_length(8, sustained=True) == 3  # only 4-token calls were timed in a row
    cost.record(4, 0.024)
    cost.record(4, 0.030)  # the second of a shape captures its graph: not what a repeated shape costs
    assert cost.relative_repeated(4) == pytest.approx(1.6)
    cost.record(4, 0.018)  # the third replays it: refines the repeated cost, not the changing one
    assert cost.relative_repeated(4) == pytest.approx(1.6 + 0.2 * 0.2) and cost.relative(4) != pytest.approx(1.6)
    controller.record_draft(3, 0.012)  # 4 ms a drafted token: 0.4 plain steps
    assert controller.draft_cost() == pytest.approx(0.4)
    assert controller.best_length(8, sustained=True) == 0  # head calls that dear make drafting a loss
    assert cost.snapshot()[repeated_key(4)] == pytest.approx(0.0164)


def test_a_drafter_that_never_lets_a_plain_step_run_is_still_priced() -> None:
    """Drafting from the first step, no one-token call is ever timed: the plain step is inferred from the shortest
    call timed (through the prior slope), so verify costs and the drafter's own calls are priced from the start."""
    cost = CostModel(prior_slope=0.5)
    cost.record(5, 0.030)
    assert cost.base_seconds() == pytest.approx(0.010)  # 30 ms / (1 + 0.5 * 4)
    assert cost.relative(5) == pytest.approx(3.0) and cost.relative(3) == pytest.approx(2.0)
    controller = DraftController(8, cost, prior=0.99)
    controller.record_draft(4, 0.040)  # a draft model as large as the target: a plain step per drafted token
    assert controller.draft_cost() == pytest.approx(1.0) and controller.best_length(8, sustained=True) == 0


def test_a_costly_source_is_asked_for_what_its_controller_verifies() -> None:
    from engine.draft.plan import DraftPlan, DraftSource

    head = _ListDrafter("mtp", list(range(10, 26)))
    confident = DraftController(16, CostModel(prior_slope=0.05), prior=0.9)
    plan = DraftPlan("mtp", [DraftSource(head, confident, costly=True)])
    proposal = plan.propose([0], 16)
    wanted = confident.best_length(16, sustained=True)
    assert proposal is not None and 1 < wanted < 16 and len(proposal.tokens) == proposal.length == wanted


def test_ngram_acceptance_restarts_per_request_by_task_kind() -> None:
    """After a run of copied edits, prose starts from a low acceptance; a model drafter's acceptance carries over."""
    from engine.draft.plan import EDIT_PRIOR, PROSE_PRIOR, DraftPlan, DraftSource
    from engine.draft.select import NGRAM_PRIORS

    ngram, mtp = DraftController(8), DraftController(8)
    plan = DraftPlan("ngram+mtp", [DraftSource(_ListDrafter("ngram", []), ngram, priors=NGRAM_PRIORS),
                                   DraftSource(_ListDrafter("mtp", []), mtp, costly=True)])
    for controller in (ngram, mtp):
        for _ in range(20):
            controller.record(8, 8)  # everything accepted
    learned = mtp.acceptance
    plan.begin([1, 2], [])  # prose: no reference
    assert ngram.acceptance == pytest.approx(PROSE_PRIOR) and ngram.best_length(8) == 0
    assert mtp.acceptance == learned
    plan.begin([1, 2], [3, 4])  # an edit: its input is the reference
    assert ngram.acceptance == pytest.approx(EDIT_PRIOR) and ngram.best_length(8) > 0


def test_a_positional_controller_prices_each_draft_position_at_its_own_rate() -> None:
    """A head right 90% of the time on its first guess and 30% on the later ones: one average rate undervalues
    the first drafted token and overvalues the later ones; per position, a draft's worth comes out right."""
    cost = CostModel(price_switches=True)
    cost.seed({0: 0.010, **{repeated_key(n): 0.010 * (1 + 0.1 * (n - 1)) for n in range(2, 9)}})
    rng = random.Random(3)
    flat, positional = DraftController(6, cost), DraftController(6, cost, positional=True)
    for _ in range(200):
        accepted = 0
        while accepted < 6 and rng.random() < (0.9 if accepted == 0 else 0.3):
            accepted += 1
        for controller in (flat, positional):
            controller.record(6, accepted)
    # each position's estimate is drawn towards the overall rate (about 0.55) by its prior, and it is recent
    assert positional.acceptance_at(1) > 0.7 and positional.acceptance_at(3) < 0.5
    assert flat.acceptance_at(1) == flat.acceptance  # without positions every token has the average rate
    truth = [1 + 0.9 * sum(0.3**j for j in range(k)) for k in range(7)]  # expected tokens of a k-token draft
    for k in (1, 2, 6):
        assert abs(positional.expected_tokens(k) - truth[k]) < abs(flat.expected_tokens(k) - truth[k])
    # the second token pays (0.27 tokens for 0.1 of a step), the third does not (0.08)
    assert positional.best_length(6, sustained=True) == 2
    # a rate given explicitly (what perfect acceptance would pay) is still geometric
    assert positional.expected_tokens(3, 1.0) == pytest.approx(4.0, rel=0.01)
    positional.restart(0.5)
    assert positional.acceptance_at(2) == pytest.approx(0.5)


def test_a_model_loaded_for_mtp_alone_keeps_rollback_slots_for_the_head_only() -> None:
    from engine.runtime import MTP_MAX_DRAFT, RECURRENT_MAX_DRAFT, RuntimeConfig

    def slots(draft: str) -> int:
        return RuntimeConfig.from_settings(load_settings(draft=draft, draft_max=16)).rollback_slots

    assert (slots("none"), slots("ngram"), slots("auto"), slots("mtp")) == (0, 17, 17, MTP_MAX_DRAFT + 1)
    # lookup on attention-only models drafts up to draft_max (64); recurrent models keep slots for 16 at most
    assert RuntimeConfig.from_settings(load_settings(draft="auto")).rollback_slots == RECURRENT_MAX_DRAFT + 1


class _Scripted(DraftController):
    """A controller whose rates (tokens per unit of cost, k = 0..) a test sets."""

    rates: list[float]

    def _rates(self, available: int | None, sustained: bool, acceptance: float | None) -> list[float]:
        return self.rates


def test_a_sustained_drafter_keeps_its_length_unless_another_is_clearly_better() -> None:
    """Every change of length costs a verify call its CUDA graph: a model drafter moves only for a 5% gain, resumes
    after a pause only for 5% over plain decoding, and pauses only once its length loses (a pause costs the next
    plain steps their graph too)."""
    c = _Scripted(4)
    c.rates = [1.0, 1.30, 1.40, 1.38, 1.20]
    assert c.best_length(4, sustained=True) == 2
    c.rates = [1.0, 1.30, 1.40, 1.44, 1.20]  # 3 is best now, by less than 5%
    assert c.best_length(4, sustained=True) == 2 and c.best_length(4) == 3  # lookup (not sustained) follows
    c.rates = [1.0, 1.30, 1.40, 1.48, 1.20]
    assert c.best_length(4, sustained=True) == 3
    c.rates = [1.0, 0.9, 1.01, 0.99, 0.9]  # the held length loses: pause at once
    assert c.best_length(4, sustained=True) == 0
    c.rates = [1.0, 1.03, 1.04, 1.0, 0.9]  # pays a little: not worth a lost graph to resume
    assert c.best_length(4, sustained=True) == 0
    c.rates = [1.0, 1.03, 1.08, 1.0, 0.9]
    assert c.best_length(4, sustained=True) == 2
    c.rates = [1.0, 1.0, 1.01, 1.0, 0.9]  # about even: held (a head that resumed and paused again lost 10%)
    assert c.best_length(4, sustained=True) == 2


def test_resuming_is_priced_by_what_the_round_trip_costs_on_the_card() -> None:
    """H200-like costs (bench/gpu/RESULTS.md): a verify of 2 tokens 19.8 ms among changing shapes, 14.2 ms repeated,
    a plain step 12.8 ms steady and 19 ms right after a draft. A paused head that resumes pays the new shape's first
    call and, when it pauses again, the first plain step: about 0.92 plain steps, over 16 steps 5.7%."""
    from engine.draft.adaptive import RESUME_DWELL

    cost = CostModel(price_switches=True)
    cost.seed({0: 0.0128, 1: 0.019, 2: 0.0198, repeated_key(2): 0.0142})
    c = _Scripted(1, cost)
    assert c.resume_margin(1) == pytest.approx(((19.8 - 14.2) / 12.8 + 19 / 12.8 - 1) / RESUME_DWELL)
    c.rates = [1.0, 0.99]
    assert c.best_length(1, sustained=True) == 0  # paused
    c.rates = [1.0, 1.055]  # below the round trip's price
    assert c.best_length(1, sustained=True) == 0
    c.rates = [1.0, 1.06]
    assert c.best_length(1, sustained=True) == 1


def test_a_new_shapes_first_calls_are_measured_as_what_a_length_change_costs() -> None:
    """A GPU runs a new shape's first call kernel by kernel and captures its graph in the second: their excess over
    two replays is what changing a held length costs. A CPU has no graphs: nothing to price."""
    gpu = CostModel(price_switches=True)
    gpu.seed({0: 0.0124, repeated_key(2): 0.0139, repeated_key(3): 0.0161, 2: 0.0192, 3: 0.0217})
    assert gpu.change_cost(3) == pytest.approx((21.7 - 16.1) / 12.4)  # before any: the calibration's first call
    calls = [(2, 0.0192), (2, 0.0312), (2, 0.0139), (3, 0.0217), (3, 0.0337), (3, 0.0161)]
    for n, seconds in calls:
        gpu.record(n, seconds)
    # both changes: (19.2 + 31.2 - 2 * 13.9) and (21.7 + 33.7 - 2 * 16.1) ms, about 1.8 plain steps
    assert 1.7 < gpu.change_cost(2) < 1.95 and gpu.change_cost(2) == gpu.change_cost(7)
    cpu = CostModel(price_switches=True)
    cpu.seed({0: 0.040, repeated_key(2): 0.060, 2: 0.060})
    for n, seconds in [(2, 0.060), (2, 0.061), (2, 0.060), (1, 0.040), (1, 0.040)]:
        cpu.record(n, seconds)
    assert cpu.change_cost(2) < 0.05


def test_a_held_length_moves_only_for_more_than_a_round_trip_of_new_shapes_costs() -> None:
    """At acceptance 0.6 on the H200 the head's estimates for 1 and 2 tokens differ by a few percent either way; at
    a 5% margin it moved between them 8 times a request and each move cost two calls about 1.8 plain steps. Priced
    at that round trip over RESUME_DWELL steps of the held length, it holds; a clearly better length still wins;
    where shapes cost nothing new (a CPU), the 5% margin stays."""
    from engine.draft.adaptive import RESUME_DWELL, SWITCH_MARGIN

    cost = CostModel(price_switches=True)
    cost.seed({0: 0.0124, repeated_key(2): 0.0139, repeated_key(3): 0.0161})
    for n, seconds in [(2, 0.0192), (2, 0.0312), (2, 0.0139)]:  # a change measured: 1.8 plain steps
        cost.record(n, seconds)
    c = _Scripted(4, cost, positional=True)
    for _ in range(40):
        c.record(1, 1)
        c.record(1, 0)
    c.rates = [1.0, 1.20, 1.10, 1.0, 0.9]
    assert c.best_length(4, sustained=True) == 1
    margin = c.change_margin(1, 2, 1.20)
    step = c.expected_tokens(1) / 1.20
    assert margin == pytest.approx(2 * cost.change_cost(3) / (RESUME_DWELL * step)) and margin > 0.12
    c.rates = [1.0, 1.20, 1.20 * (1 + margin) - 0.01, 1.0, 0.9]  # better by more than 5%, less than the trip
    assert c.best_length(4, sustained=True) == 1
    c.rates = [1.0, 1.20, 1.20 * (1 + margin) + 0.01, 1.0, 0.9]
    assert c.best_length(4, sustained=True) == 2
    flat = CostModel(price_switches=True)
    flat.seed({0: 0.040, repeated_key(2): 0.060, 2: 0.060})
    assert _Scripted(4, flat).change_margin(1, 2, 1.2) == SWITCH_MARGIN


def test_a_ranked_head_keeps_the_tokens_counted_most_often_then_the_lowest_ids() -> None:
    """Half the rows for the tokens most frequent in the counted code (ties by id, never one not seen), the rest the
    lowest ids not taken: counts alone would lose the languages the sample lacks (head_trim's measurements)."""
    from engine.draft.head_trim import ranked_tokens

    def tokenize(text: str) -> list[int]:
        return [int(word) for word in text.split()]

    kept = ranked_tokens(tokenize, 50, 8, ["40 41 41 42 42 42 49", "42 49 3"])
    assert kept == [42, 41, 49, 3, 0, 1, 2, 4]  # counted: 42 (4), 41 (2), 49 (2), 3 (1 = 40's count, lower id)
    assert ranked_tokens(tokenize, 50, 6, [""]) == [0, 1, 2, 3, 4, 5]  # nothing counted: the lowest ids


def test_a_head_that_stops_short_is_padded_where_a_new_shape_costs_more_than_the_rows() -> None:
    """A ranked head cannot guess a token outside its rows: its draft stops short. On a GPU the shorter verify is a
    new shape (about 1.8 plain steps with the held one's return), so the draft is filled to the held length with
    tokens the target rejects; on a CPU shapes cost nothing new and the rows do, so it is verified short, for this
    step only (the held length stays)."""
    from engine.draft.plan import DraftPlan, DraftSource

    def plan_on(cost: CostModel, guesses: int) -> tuple[DraftPlan, DraftController]:
        head = _ListDrafter("mtp", list(range(10, 10 + guesses)))
        head.max_draft = 3
        controller = DraftController(16, cost, prior=0.95, positional=True)
        return DraftPlan("mtp", [DraftSource(head, controller, costly=True)]), controller

    gpu = CostModel(price_switches=True)
    gpu.seed({0: 0.0124, **{repeated_key(n): 0.0124 + 0.0018 * (n - 1) for n in range(2, 18)}})
    for n, seconds in [(2, 0.0192), (2, 0.0312), (2, 0.0142)]:
        gpu.record(n, seconds)
    plan, controller = plan_on(gpu, 1)
    proposal = plan.propose([5, 6], 16)
    assert proposal is not None and proposal.length == 3 and proposal.draft == [10, 10, 10]
    assert controller.pads(1, 3) and controller.pads(0, 3)

    cpu = CostModel(price_switches=True)
    for n, seconds in [(1, 0.040), (1, 0.040), (1, 0.040), (2, 0.052), (2, 0.052), (2, 0.052), (4, 0.08)]:
        cpu.record(n, seconds)
    plan, controller = plan_on(cpu, 1)
    held = controller.best_length(3, sustained=True)
    proposal = plan.propose([5, 6], 16)
    assert proposal is not None and proposal.draft == [10] and not controller.pads(1, 3)
    assert controller.best_length(3, sustained=True) == held


def test_a_position_the_drafts_stop_reaching_falls_back_to_the_overall_rate() -> None:
    """After drafts accepted in full, the text changes: first tokens are now wrong as often as not, so the deep
    positions are no longer reached; their old perfect record must fade, not keep buying long drafts."""
    c = DraftController(6, positional=True)
    for _ in range(60):
        c.record(6, 6)
    assert c.acceptance_at(6) > 0.95
    for i in range(60):
        c.record(6, i % 2)  # half the drafts fail at once, the rest at the second token
    assert c.acceptance_at(6) < 0.5
    assert c.acceptance_at(6) == pytest.approx(c.acceptance, abs=0.1)


def test_a_costly_source_is_priced_within_what_its_drafter_can_fill() -> None:
    """A head that drafts at most 3 tokens, in a plan whose budget is 16 (`auto`: n-gram drafts need 16): its
    controller chooses among 1..3 and keeps that choice step after step (asked among 1..16 and then re-asked within
    3, its held length flipped between the two answers, and every flip lost the verify call its CUDA graph)."""
    from engine.draft.plan import DraftPlan, DraftSource

    head = _ListDrafter("mtp", list(range(10, 26)))
    head.max_draft = 3
    cost = CostModel(price_switches=True)
    cost.seed({0: 0.010, **{repeated_key(n): 0.010 * (1 + 0.05 * (n - 1)) for n in range(2, 18)}})
    controller = DraftController(16, cost, prior=0.95, positional=True)
    plan = DraftPlan("mtp", [DraftSource(head, controller, costly=True)])
    lengths = []
    for _ in range(6):
        proposal = plan.propose([0], 16)
        assert proposal is not None
        lengths.append(proposal.length)
        plan.verified(proposal, proposal.length)
    assert lengths == [3] * 6 and len(proposal.tokens) == 3


def _low_acceptance_head() -> DraftController:
    """A head right 2 times in 5 on its first guess, drafting 1 token a step, on an H200-like curve (bench/gpu/
    RESULTS.md, run 6: a verify of 2 tokens 1.14 plain steps when its shape repeats; proposing 0.12 a token)."""
    cost = CostModel(price_switches=True)
    cost.seed({0: 0.010, repeated_key(2): 0.0114, repeated_key(3): 0.0134, repeated_key(4): 0.0155})
    controller = DraftController(3, cost, positional=True)
    for i in range(60):
        controller.record(1, 1 if (i * 2) % 5 < 2 else 0)
    controller.record_draft(1, 0.0012)
    return controller


def test_a_drafting_step_is_charged_what_it_costs_beyond_its_call_and_proposal() -> None:
    """At acceptance 0.4 a 1-token draft yields 1.4 tokens for 1.26 plain steps of call and proposal: it pays on
    those alone. A drafting step also costs what follows its call (the head taking the target's rows, the rollback,
    the bookkeeping): measured at 1.8 ms against a plain step's 0.3, the draft loses, and the head pauses."""
    controller = _low_acceptance_head()
    assert controller.acceptance_at(1) == pytest.approx(0.4, abs=0.05)
    assert controller.best_length(3, sustained=True) == 1 and controller.step_overhead() == 0.0
    for _ in range(40):
        controller.record_step(1, 0.0018)
        controller.record_step(0, 0.0003)
    assert controller.step_overhead() == pytest.approx(0.15, rel=0.01)  # (1.8 - 0.3) ms of a 10 ms step
    assert controller.best_length(3, sustained=True) == 0
    # what a plain step spends as well is no cost of drafting
    for _ in range(80):
        controller.record_step(0, 0.0018)
    assert controller.step_overhead() == pytest.approx(0.0, abs=0.002)
    assert controller.best_length(3, sustained=True) == 1
    assert controller.describe()["held"] == 1


def test_a_plan_hands_each_step_beyond_its_call_to_the_costly_sources() -> None:
    """The engine times a whole step (its call, then the head following and the rollback); the plan takes the
    call off and tells the costly sources' controllers whether the step drafted for them, once per step."""
    from engine.draft.plan import DraftPlan, DraftSource

    cost = CostModel(price_switches=True)
    cost.seed({0: 0.010, **{repeated_key(n): 0.010 * (1 + 0.1 * (n - 1)) for n in range(2, 10)}})
    ngram, head = _ListDrafter("ngram", []), _ListDrafter("mtp", [7, 8, 9])
    lookup, controller = DraftController(8, cost), DraftController(8, cost, prior=0.9, positional=True)
    plan = DraftPlan("ngram+mtp", [DraftSource(ngram, lookup, min_tokens=4),
                                   DraftSource(head, controller, costly=True)])
    proposal = plan.propose([0], 8)
    assert proposal is not None and proposal.source is plan.sources[1] and proposal.length > 0
    plan.record_cost(1 + proposal.length, 0.014)
    plan.record_step(0.016)  # 2 ms beyond the call: a fifth of the 10 ms plain step
    assert controller.step_overhead() == pytest.approx(0.2)
    plan.record_step(0.030)  # no step under way: nothing learned
    assert controller.step_overhead() == pytest.approx(0.2)
    ngram.tokens = [1, 2, 3, 4, 5]  # a lookup draft's step says nothing of the head's
    assert plan.propose([0], 8).source is plan.sources[0]  # type: ignore[union-attr]
    plan.record_cost(6, 0.02)
    plan.record_step(0.05)
    assert controller.step_overhead() == pytest.approx(0.2) and lookup.step_overhead() == 0.0
    ngram.tokens, head.tokens = [], []  # nothing drafted: a plain step, with its own 2 ms beyond the call
    plan.propose([0], 8)
    plan.record_cost(1, 0.010)
    plan.record_step(0.012)
    assert controller.step_overhead() == pytest.approx(0.0)


def test_a_draft_model_is_taken_only_where_it_could_pay() -> None:
    """`auto` prices a draft model from measured seconds before loading it: on a 2-core CPU a 0.5B step is about two
    thirds of a 1.5B's and each verified token adds a good part of a step, so even a generous acceptance loses; on a
    GPU the draft step is a small fraction and short verifies cost about one step, so it pays."""
    from engine.draft.pairing import DRAFT_KEY, pays

    cpu = {1: 0.030, 2: 0.036, 3: 0.045, 4: 0.053, 5: 0.062, 6: 0.070, DRAFT_KEY: 0.020}
    cpu.update({-n: s for n, s in cpu.items() if 1 < n < DRAFT_KEY})
    cpu[0] = cpu[1]
    assert not pays(cpu, draft_max=16)
    assert pays(cpu, draft_max=16, acceptance=1.0)  # only perfect drafts would pay there
    gpu = {1: 0.013, 2: 0.014, 3: 0.015, 4: 0.016, 5: 0.017, 6: 0.018, DRAFT_KEY: 0.003}
    gpu.update({-n: s for n, s in gpu.items() if 1 < n < DRAFT_KEY})
    gpu[0] = gpu[1]
    assert pays(gpu, draft_max=16)
    assert not pays({1: 0.03}, draft_max=16)  # the draft step never measured: no


def test_the_pair_is_judged_on_its_fastest_round() -> None:
    """A round timed while other work ran (this machine's cached pair-1 entry for coder-1.5b + 0.5B: a 135-207 ms
    target step beside a 20 ms draft step) said the pair pays; with a quiet round beside it, it does not."""
    from engine.draft.pairing import DRAFT_KEY, fastest, pays

    loaded = {-6: 0.481, -5: 0.289, -4: 0.258, -3: 0.299, -2: 0.320, 0: 0.135, 1: 0.207, 2: 0.152, 3: 0.336,
              4: 0.336, 5: 0.359, 6: 0.302, DRAFT_KEY: 0.020}
    quiet = {-6: 0.135, -5: 0.121, -4: 0.099, -3: 0.078, -2: 0.055, 0: 0.030, 1: 0.033, 2: 0.060, 3: 0.080,
             4: 0.109, 5: 0.135, 6: 0.154, DRAFT_KEY: 0.022}
    assert pays(loaded, draft_max=64)
    both = fastest([loaded, quiet])
    assert both[1] == 0.033 and both[DRAFT_KEY] == 0.020
    assert not pays(both, draft_max=64)
