"""One task registry (engine.task_registry) read by every layer: each reader shows exactly the registry's rows."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from fake_engine import default_respond

from engine.events import GenerationRequest
from engine.task_registry import REGISTRY, Task
from tui.actions import commands, help_rows
from tui.cli import build_parser
from tui.jobs import Job

PROMPTS = Path(__file__).resolve().parents[1] / "prompts"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_task_has_its_prompt_template_and_a_unique_key() -> None:
    for task in REGISTRY:
        assert (PROMPTS / f"{task.template}.txt").is_file(), task.name
    keys = [task.key for task in REGISTRY if task.key]
    assert len(keys) == len(set(keys))


def test_the_command_line_has_one_command_per_task_with_options_by_kind() -> None:
    parsers = _subcommands()
    for task in REGISTRY:
        options = {option for action in parsers[task.name]._actions for option in action.option_strings}
        assert ("--apply" in options) == task.rewrites, task.name
        assert ("--output" in options) == (task.kind == "code"), task.name
        assert task.help[1:] in (parsers[task.name].description or ""), task.name


def test_the_interface_binds_help_and_lists_each_task_with_a_key() -> None:
    table = commands()
    by_action = {command.action: command for command in table}
    rows = dict(help_rows(table, {}))
    for task in REGISTRY:
        command = by_action.get(f"task('{task.name}')")
        if not task.key:
            assert command is None, task.name  # e.g. ask: the prompt line's Enter
            continue
        assert command is not None and command.key == task.key and command.palette
        assert rows[task.key] == task.help


@pytest.mark.parametrize("task", REGISTRY, ids=lambda task: task.name)
def test_jobs_and_the_fake_follow_the_registry(task: Task) -> None:
    job = Job(1, "task", task.name)
    assert job.is_rewrite == task.rewrites
    assert job.answers_code == (task.kind == "code")
    # the fake answers a rewrite with the code it was given, marked; other code tasks with a new file
    code = "def add(a, b):\n    return a + b\n"
    answer = default_respond(GenerationRequest(f"TASK\n{task.name}\n\n---\n{code}"))
    assert (code in answer) == task.rewrites
    assert answer.startswith("## ") == (task.kind == "prose")  # prose: a markdown answer
