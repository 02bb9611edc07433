"""How many rollback slots a recurrent model keeps: as many as long drafts want, unless they slow every step.

A slot is a snapshot of the recurrent state, so a verify call can roll back to any of its tokens: a draft of d tokens
needs d + 1 slots. llama.cpp writes every slot's conv-state snapshot in every decode call (plain steps included), so
slots cost each step a fixed time per slot, drafting or not. On a CPU that is noise against a step; on an H200 with a
27B model each of them is about 0.14 ms of an 11.7 ms step, and 17 slots (16-token lookup drafts) cost 11% of every
step: `auto` that drafts nothing ran at 0.90x plain (bench/gpu/RESULTS.md). Drafting must never lose more than 2%
(issue 16), so the slots beyond those of the MTP head's longest draft may cost at most that, as measured on the
machine: long lookup drafts keep them where they are cheap.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..runtime import MTP_MAX_DRAFT

# Slots every drafting plan keeps (the MTP head's longest draft); more only while they fit SLOT_BUDGET.
SLOT_FLOOR = 1 + MTP_MAX_DRAFT
# The share of a plain step the slots above the floor may cost together.
SLOT_BUDGET = 0.02
# Steady plain steps timed at each slot count the choice compares.
SLOT_STEPS = 8


def slots_key(calibration_key: str) -> str:
    """The cache key of plain-step times by slot count, beside the verify-cost curve of the same setup."""
    return f"rollback-slots|{calibration_key}"


def choose_slots(step_seconds: Mapping[int, float], floor: int = SLOT_FLOOR, budget: float = SLOT_BUDGET) -> int:
    """The most slots, between `floor` and the most measured, whose cost above the floor's stays within `budget` of
    a plain step.

    `step_seconds`: a steady plain step's seconds by slot count, `floor` and a higher count at least. The cost is
    linear in the count (one snapshot copy per recurrent layer each), so two counts give the cost of one.
    """
    ceiling = max(step_seconds)
    if ceiling <= floor or floor not in step_seconds:
        return ceiling
    base = step_seconds[floor]
    per_slot = (step_seconds[ceiling] - base) / (ceiling - floor)
    if per_slot <= 0:
        return ceiling
    return min(ceiling, floor + int(budget * base / per_slot))
