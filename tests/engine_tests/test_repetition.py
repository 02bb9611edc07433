"""engine.repetition: what counts as a loop (pure), and the engine stopping one (real model)."""

from __future__ import annotations

from typing import Any

import pytest

from engine import DoneEvent, GenerationRequest
from engine.repetition import MIN_SPAN, RepetitionGuard, _as_bytes, loop_period, occurs_in


def test_a_short_unit_repeated_past_the_minimum_span_is_a_loop() -> None:
    tokens = [7, 8, 9] * (MIN_SPAN // 3 + 1)
    assert loop_period(tokens) == 3
    assert loop_period(tokens[: MIN_SPAN - 1]) == 0  # not long enough yet


def test_a_long_unit_needs_three_repeats() -> None:
    unit = list(range(100, 180))  # 80 tokens: a paragraph
    assert loop_period(unit * 2) == 0
    assert loop_period(unit * 3) == 80
    assert loop_period([1, 2] + unit * 3) == 80


def test_varied_text_and_the_prompt_before_the_answer_are_no_loop() -> None:
    assert loop_period(list(range(500))) == 0
    tokens = [5] * 100 + list(range(10, 40))
    assert loop_period(tokens) == 0
    # the repeated run lies in the prompt: only the answer (from `start`) is looked at
    assert loop_period(tokens[:100], start=60) == 0
    assert loop_period(tokens[:100], start=30) == 1


def test_a_unit_longer_than_the_maximum_period_is_not_searched() -> None:
    unit = list(range(1000, 1000 + 50))
    assert loop_period(unit * 3, max_period=49) == 0


def test_occurs_in_matches_whole_tokens_only() -> None:
    haystack = _as_bytes([1, 2, 3, 256, 4])
    assert occurs_in([2, 3], haystack)
    assert occurs_in([256, 4], haystack)
    assert not occurs_in([3, 2], haystack)
    assert not occurs_in([1 << 8], _as_bytes([1, 1]))  # bytes straddling two tokens are no match


def test_the_guard_lets_an_answer_copy_a_repetitive_prompt() -> None:
    table = [11, 12, 13, 14] * 40  # code that repeats itself, being rewritten
    prompt = [1, 2, *table, 3]
    guard = RepetitionGuard(prompt)
    history = list(prompt)
    for token in table:
        history.append(token)
        assert not guard.looping(history)
    for token in [21, 22] * (MIN_SPAN // 2):  # a loop the prompt does not have
        history.append(token)
    assert guard.looping(history)


# ---- the real engine ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("prompt", [
    "x = [\n" + "    0,\n" * 8,  # any language model goes on with this pattern...
    "print('hello')\n" * 6,  # ...and the prompt holds less of it than a loop needs
])
def test_the_engine_stops_a_looping_answer(real_engine: Any, prompt: str) -> None:
    request = GenerationRequest(prompt, max_tokens=400, drafter="none", temperature=0.0)
    done = real_engine.complete(request)
    assert isinstance(done, DoneEvent)
    assert done.stats.finish_reason == "repetition", done.text
    assert MIN_SPAN <= done.stats.completion_tokens < 400
