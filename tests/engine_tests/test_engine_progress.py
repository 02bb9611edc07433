"""ProgressEvents on the real default model: prompt tokens evaluated of total, then answer tokens."""

from __future__ import annotations

import threading
from itertools import pairwise
from typing import Any

import pytest

from engine import DoneEvent, GenerationRequest, ProgressEvent, TextEvent
from engine.generate import DECODE_PROGRESS_EVERY

pytestmark = pytest.mark.slow

# more than one prompt batch (batch_size 512), and no reusable prefix from other tests
LONG_PROMPT = "".join(f"def progress_{i}(x):\n    return x * {i} + {i * 7}\n\n" for i in range(36))  # ~680 tokens


def events_of(engine: Any, request: GenerationRequest, cancel: threading.Event | None = None) -> list[Any]:
    return list(engine.stream(request, cancel))


def test_prompt_progress_counts_every_evaluated_token_then_decode_progress(real_engine: Any) -> None:
    request = GenerationRequest(LONG_PROMPT, max_tokens=40, drafter="none")
    events = events_of(real_engine, request)
    done = events[-1]
    assert isinstance(done, DoneEvent)
    prompt = [e for e in events if isinstance(e, ProgressEvent) and e.stage == "prompt"]
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextEvent))
    # all prompt progress comes before the answer, from 0 up to the whole of what was evaluated
    assert all(events.index(e) < first_text for e in prompt)
    total = done.stats.prompt_tokens_evaluated
    assert total > real_engine.settings.batch_size  # several batches, so several reports
    assert [e.total for e in prompt] == [total] * len(prompt)
    assert prompt[0].done == 0 and prompt[-1].done == total
    assert len(prompt) >= 3
    assert all(a.done < b.done and a.elapsed_s <= b.elapsed_s for a, b in pairwise(prompt))
    decode = [e for e in events if isinstance(e, ProgressEvent) and e.stage == "decode"]
    assert [e.done for e in decode] == [
        DECODE_PROGRESS_EVERY * (i + 1) for i in range(len(decode))
    ]
    assert all(e.total == 40 for e in decode)
    if done.stats.completion_tokens > DECODE_PROGRESS_EVERY:
        assert decode  # an answer longer than one report's worth reported its progress

    # the same prompt again: the engine reuses its state, and says how little it evaluated
    again = events_of(real_engine, request)
    prompt_again = [e for e in again if isinstance(e, ProgressEvent) and e.stage == "prompt"]
    assert prompt_again[0].total == again[-1].stats.prompt_tokens_evaluated < total


def test_a_cancel_during_prompt_evaluation_stops_its_progress(real_engine: Any) -> None:
    cancel = threading.Event()
    events: list[Any] = []
    request = GenerationRequest(LONG_PROMPT.replace("progress_", "cancelled_"), max_tokens=8, drafter="none")
    for event in real_engine.stream(request, cancel):
        events.append(event)
        if isinstance(event, ProgressEvent) and event.done > 0:
            cancel.set()  # after the first batch
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.stats.finish_reason == "cancelled"
    prompt = [e for e in events if isinstance(e, ProgressEvent)]
    assert prompt[-1].done < prompt[-1].total
    assert not any(isinstance(e, TextEvent) for e in events)
