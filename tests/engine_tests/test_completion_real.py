"""Completion on the real default model: what a one-character edit costs, the warm-up, repository context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.cache import common_prefix
from engine.completion import (
    EDIT_TOKENS,
    CompletionBudget,
    complete_at,
    completion_budget,
    completion_parts,
    evaluate_ahead,
    prompt_cost,
)
from engine.events import DoneEvent, GenerationRequest, ProgressEvent

pytestmark = pytest.mark.slow

MODULE = '''"""Inventory of a small shop."""

from dataclasses import dataclass


@dataclass
class Item:
    name: str
    price: float
    count: int


def total_value(items: list[Item]) -> float:
    """The value of everything in stock."""
    value = 0.0
    for item in items:
        value += item.price * item.count
    return value


def cheapest(items: list[Item]) -> Item:
    """The item with the lowest price."""
    return min(items, key=lambda item: item.price)


def restock(items: list[Item], amount: int) -> None:
    """Add `amount` to the count of every item."""
    for item in items:
        item.count += amount
'''


def final(events: Any) -> DoneEvent:
    done = [e for e in events if isinstance(e, DoneEvent)]
    assert len(done) == 1
    return done[0]


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    path = tmp_path / "shop.py"
    path.write_text(MODULE)
    return path


def test_the_budget_follows_the_measured_prompt_cost(real_engine: Any) -> None:
    cost = prompt_cost(real_engine)
    budget = completion_budget(real_engine)
    assert cost.per_token_s > 0 and cost.fixed_s >= 0
    assert budget == CompletionBudget.from_cost(cost, real_engine.n_ctx, budget_reserve(real_engine))
    assert budget.prefix_tokens + budget.context_tokens + budget.suffix_tokens < real_engine.n_ctx


def budget_reserve(engine: Any) -> int:
    return min(engine.settings.max_tokens, 256) + engine.settings.draft_max + 8


def test_a_one_character_edit_evaluates_only_the_edit_and_the_suffix(real_engine: Any, shop: Path) -> None:
    budget = CompletionBudget(prefix_tokens=1024, suffix_tokens=16, context_tokens=256)
    cursor = MODULE.index("item.count += amount") + len("item.cou")
    real_engine.cache.reset(forget_snapshots=True)
    warm = evaluate_ahead(real_engine, MODULE, 0, "warm-up", path=shop, budget=budget)
    assert warm.prompt_tokens_evaluated == warm.prompt_tokens  # from an empty cache: all of it
    before = final(complete_at(real_engine, MODULE, cursor, path=shop, budget=budget, max_tokens=8))
    # the warm-up covered the window past the cursor: the first completion evaluates only the rest
    prompt_before = real_engine.fim_prompt(completion_parts(real_engine, MODULE, cursor, shop, None, budget).parts)
    assert before.stats.prompt_tokens == len(prompt_before)
    assert before.stats.prompt_tokens_evaluated <= budget.suffix_tokens + EDIT_TOKENS + 4

    edited = MODULE[:cursor] + "n" + MODULE[cursor:]
    after = final(complete_at(real_engine, edited, cursor + 1, path=shop, budget=budget, max_tokens=8))
    prompt_after = real_engine.fim_prompt(completion_parts(real_engine, edited, cursor + 1, shop, None, budget).parts)
    # everything before the edit is reused: only the tokens from the edit on are evaluated again
    assert after.stats.prompt_tokens_evaluated == len(prompt_after) - common_prefix(prompt_before, prompt_after)
    assert after.stats.prompt_tokens_evaluated <= budget.suffix_tokens + EDIT_TOKENS + 2


def test_the_warm_context_comes_back_as_a_snapshot_after_another_request(real_engine: Any, shop: Path) -> None:
    budget = CompletionBudget(prefix_tokens=1024, suffix_tokens=16, context_tokens=256)
    cursor = MODULE.index("item.count += amount") + len("item.cou")
    real_engine.cache.reset(forget_snapshots=True)
    evaluate_ahead(real_engine, MODULE, 0, "warm-up", path=shop, budget=budget)
    alone = final(complete_at(real_engine, MODULE, cursor, path=shop, budget=budget, max_tokens=8))
    # a request of another kind (an explain) takes the context over
    real_engine.complete(GenerationRequest("Explain what a dataclass is.\n", max_tokens=2, drafter="none"))
    after = final(complete_at(real_engine, MODULE, cursor, path=shop, budget=budget, max_tokens=8))
    # the warm-up's snapshot is restored and cut back at the cursor: only the suffix is evaluated again
    assert after.stats.prompt_tokens_evaluated <= budget.suffix_tokens + EDIT_TOKENS + 4
    assert after.text == alone.text


def test_a_prefetch_leaves_the_completion_one_token_to_evaluate(real_engine: Any, shop: Path) -> None:
    budget = CompletionBudget(prefix_tokens=1024, suffix_tokens=16, context_tokens=256)
    cursor = MODULE.index("item.count += amount") + len("item.cou")
    evaluate_ahead(real_engine, MODULE, 0, "warm-up", path=shop, budget=budget)
    edited = MODULE[:cursor] + "n" + MODULE[cursor:]
    ahead = evaluate_ahead(real_engine, edited, cursor + 1, "prefetch", path=shop, budget=budget)
    assert 1 < ahead.prompt_tokens_evaluated <= budget.suffix_tokens + EDIT_TOKENS + 2
    done = final(complete_at(real_engine, edited, cursor + 1, path=shop, budget=budget, max_tokens=8))
    assert done.stats.prompt_tokens_evaluated == 1


def test_background_work_stops_within_one_small_batch(real_engine: Any) -> None:
    import threading

    prompt = real_engine.tokenize("".join(f"def helper_{i}(x):\n    return x * {i}\n\n" for i in range(30)))
    real_engine.cache.reset(forget_snapshots=True)
    cancel = threading.Event()
    evaluated: list[int] = []
    request = GenerationRequest(prompt, max_tokens=1, drafter="none", batch_tokens=32)
    for event in real_engine.stream(request, cancel):
        if isinstance(event, ProgressEvent) and event.done:
            evaluated.append(event.done)
            cancel.set()  # after the first batch
        if isinstance(event, DoneEvent):
            assert event.stats.finish_reason == "cancelled"
    assert evaluated == [32] and len(real_engine.cache.tokens) == 32 < len(prompt)


def test_repository_context_lets_the_model_use_a_neighbours_names(real_engine: Any, tmp_path: Path) -> None:
    if not real_engine.info.has_fim:
        pytest.skip("the default model has no FIM tokens")
    (tmp_path / ".git").mkdir()
    (tmp_path / "rooms.py").write_text(
        "class Room:\n    def __init__(self, width_m: float, depth_m: float) -> None:\n"
        "        self.width_m = width_m\n        self.depth_m = depth_m\n"
    )
    path = tmp_path / "plan.py"
    text = "from rooms import Room\n\n\ndef floor_area(room: Room) -> float:\n    return room.\n"
    cursor = text.index("room.\n") + len("room.")
    budget = CompletionBudget(prefix_tokens=512, suffix_tokens=16, context_tokens=512)
    with_context = final(complete_at(real_engine, text, cursor, path=path, budget=budget, max_tokens=16))
    assert "width_m" in with_context.text and "depth_m" in with_context.text, with_context.text
    assert "\n" not in with_context.text  # the cursor's line only
