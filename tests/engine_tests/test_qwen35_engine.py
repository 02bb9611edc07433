"""The engine on a synthetic Qwen3.6-shaped model: hybrid recurrent memory, chat template, FIM, drafting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine import GenerationRequest
from engine.fim import FimParts
from engine.prompts import build_prompt

PROMPT = "def area(width, height):\n    return width * height\n\n" * 6


def test_loads_as_hybrid_with_mtp_fim_and_chat_template(qwen35_engine: Any) -> None:
    info = qwen35_engine.info
    assert info.arch == "qwen35" and info.is_hybrid and info.n_nextn_layers == 1
    assert info.has_fim and info.chat_template is not None
    assert qwen35_engine.runtime.keeps_recurrent_state and qwen35_engine.runtime.rollback_slots > 0
    done = qwen35_engine.complete(GenerationRequest(PROMPT, max_tokens=16, drafter="none"))
    assert done.stats.completion_tokens == 16 or done.stats.finish_reason == "eog"


def test_prefix_reuse_restores_a_recurrent_checkpoint_and_matches_a_fresh_run(qwen35_engine: Any) -> None:
    shared = PROMPT * 9  # longer than one 256-token batch: a checkpoint is kept at the batch boundary
    first = GenerationRequest(shared + "def first():\n", max_tokens=4, drafter="none")
    second = GenerationRequest(shared + "class Second:\n", max_tokens=8, drafter="none")
    qwen35_engine.cache.reset()
    qwen35_engine.complete(first)
    reused = qwen35_engine.complete(second)
    assert reused.stats.prompt_tokens_evaluated < reused.stats.prompt_tokens - 200
    qwen35_engine.cache.reset()
    fresh = qwen35_engine.complete(second)
    assert fresh.stats.prompt_tokens_evaluated == fresh.stats.prompt_tokens
    assert reused.tokens == fresh.tokens


def test_task_prefix_snapshot_serves_a_different_question(qwen35_engine: Any) -> None:
    system = "You are a careful assistant who answers briefly. " * 10
    built_a = build_prompt(qwen35_engine.info, system, "What is 2+2?")
    built_b = build_prompt(qwen35_engine.info, system, "Name a colour.")
    assert built_a.text[: built_a.prefix_chars] == built_b.text[: built_b.prefix_chars]
    qwen35_engine.cache.reset()
    qwen35_engine.complete(GenerationRequest(built_a.text, max_tokens=2, drafter="none",
                                             prefix_chars=built_a.prefix_chars))
    done = qwen35_engine.complete(GenerationRequest(built_b.text, max_tokens=2, drafter="none",
                                                    prefix_chars=built_b.prefix_chars))
    tail = qwen35_engine.count_tokens(built_b.text[built_b.prefix_chars :])
    assert done.stats.prompt_tokens_evaluated <= tail + 1


def test_chat_prompt_disables_thinking_unless_asked(qwen35_engine: Any) -> None:
    off = build_prompt(qwen35_engine.info, "sys", "hello").text
    on = build_prompt(qwen35_engine.info, "sys", "hello", think=True).text
    assert "<|im_start|>system\nsys<|im_end|>" in off
    assert off.endswith("<think>\n\n</think>\n\n") and not on.endswith("</think>\n\n")


def test_fim_prompt_uses_the_models_own_tokens(qwen35_engine: Any) -> None:
    tokens = qwen35_engine.fim_prompt(FimParts("def f(x):\n    ", "\n\nprint(f(2))\n"))
    runtime = qwen35_engine.runtime
    pre, suf, mid = (runtime.special_token(n) for n in ("fim_pre", "fim_suf", "fim_mid"))
    assert tokens.count(pre) == tokens.count(suf) == 1 and tokens[-1] == mid
    assert tokens.index(pre) < tokens.index(suf)


def test_ngram_drafting_is_byte_identical_with_rollbacks(qwen35_engine: Any) -> None:
    # batch and step logits agree exactly on this model on the CPU, so greedy drafted == plain, bit for bit
    for prompt in (PROMPT, "Write a haiku about recurrent state.\n", PROMPT[:40]):
        qwen35_engine.cache.reset()
        plain = qwen35_engine.complete(GenerationRequest(prompt, max_tokens=48, drafter="none"))
        drafted = qwen35_engine.complete(GenerationRequest(prompt, max_tokens=48, drafter="ngram", reference=prompt))
        assert drafted.tokens == plain.tokens
        assert drafted.stats.drafter == "ngram"


def test_the_same_prompt_again_evaluates_one_token_on_recurrent_memory(qwen35_engine: Any) -> None:
    request = GenerationRequest("Explain recurrence briefly.\n" * 3, max_tokens=6, drafter="none")
    qwen35_engine.cache.reset()
    first = qwen35_engine.complete(request)
    again = qwen35_engine.complete(request)
    assert again.stats.prompt_tokens_evaluated == 1
    assert again.tokens == first.tokens


def test_checkpoints_are_paced_by_their_measured_copy_cost(qwen35_engine: Any) -> None:
    """A checkpoint is a copy of the whole recurrent state: taken only where the evaluation it saves took longer."""
    long_prompt = PROMPT * 12  # several 256-token batches
    cache = qwen35_engine.cache
    cache.reset()
    qwen35_engine.complete(GenerationRequest(long_prompt, max_tokens=2, drafter="none"))
    assert len(cache.checkpoint_lengths) >= 2  # tiny model: copies are cheap, every boundary pays
    saved = cache.pacer.copy_seconds
    try:
        cache.pacer.copy_seconds = 1e6  # a copy dearer than any evaluation here
        cache.reset()
        done = qwen35_engine.complete(GenerationRequest(long_prompt + "# tail\n", max_tokens=2, drafter="none"))
        assert cache.checkpoint_lengths == []
        assert done.stats.prompt_tokens_evaluated == done.stats.prompt_tokens
    finally:
        cache.pacer.copy_seconds = saved


def test_checkpoint_pacer_takes_the_first_then_waits_for_payback() -> None:
    from engine.cache import CheckpointPacer

    pacer = CheckpointPacer(payback=4.0)
    assert pacer.due()  # nothing measured yet: the first copy measures itself
    pacer.copied(0.25)
    pacer.evaluated(0.5)
    assert not pacer.due()
    pacer.evaluated(0.5)
    assert pacer.due()  # 1.0 s of evaluation = 4 copies
    pacer.restored()
    assert not pacer.due()


def test_slots_above_the_floor_may_cost_two_percent_of_a_step() -> None:
    from engine.draft.slots import SLOT_FLOOR, choose_slots

    assert SLOT_FLOOR == 7
    assert choose_slots({7: 0.010, 17: 0.0114}) == 8  # 0.14 ms a slot on an 10 ms step (the H200's 27B)
    assert choose_slots({7: 1.0, 17: 1.001}) == 17  # a CPU's 27B: slots are noise against a step
    assert choose_slots({7: 1.0, 17: 1.045}) == 11  # 4.5 ms a slot: 20 ms buys 4 of them
    assert choose_slots({7: 1.0, 17: 0.99}) == 17  # timing noise, no cost
    assert choose_slots({17: 1.0}) == 17


def test_lookup_drafting_keeps_the_slots_its_measurement_affords(
    qwen35_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine import Engine, load_settings
    from engine.draft.adaptive import load_calibration, save_calibration
    from engine.draft.slots import choose_slots

    monkeypatch.setenv("QCODE_CACHE_DIR", str(tmp_path))
    base = dict(model=qwen35_model, n_ctx=1024, batch_size=256, draft="ngram", draft_max=8)
    engine = Engine(load_settings(**base, draft_calibration="on"))  # measured: plain steps at 9 and 7 slots
    try:
        key, measured = engine.slots_key, engine.slot_steps
        assert key is not None and set(measured) == {7, 9} and load_calibration(key) == measured
        assert engine.runtime.rollback_slots == choose_slots(measured)
    finally:
        engine.close()
    save_calibration(key, {7: 1.0, 9: 2.0})  # slots dear: the CPU does not measure unless asked, the cache decides
    engine = Engine(load_settings(**base, draft_calibration="auto"))
    try:
        assert (engine.runtime.rollback_slots, engine.draft_max, engine.slots_key) == (7, 6, key)
        # drafts with rollbacks on the reopened context: still the plain answer
        plain = engine.complete(GenerationRequest(PROMPT, max_tokens=40, drafter="none"))
        near = [0 if i % 5 == 4 else token for i, token in enumerate(plain.tokens)]  # every fifth token wrong
        drafted = engine.complete(GenerationRequest(PROMPT, max_tokens=40, drafter="ngram", reference=near))
        stats = drafted.stats
        assert drafted.tokens == plain.tokens
        assert 0 < stats.draft_accepted < stats.draft_proposed <= 6 * stats.draft_steps
    finally:
        engine.close()
    engine = Engine(load_settings(**base, draft_calibration="on", rollback_slots=3))
    try:  # a setting decides: nothing measured
        assert (engine.runtime.rollback_slots, engine.slots_key, engine.slot_steps) == (3, None, {})
    finally:
        engine.close()
