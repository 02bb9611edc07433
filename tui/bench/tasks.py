"""Benchmark tasks on real source files nobody here wrote: functions from Python's standard library."""

from __future__ import annotations

import ast
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path

from engine.tasks import TaskInput


@dataclass(frozen=True)
class BenchTask:
    name: str
    kind: str  # "edit" or "explain"
    task: TaskInput


def _function(module_name: str, function: str) -> tuple[Path, str]:
    module = importlib.import_module(module_name)
    path = Path(inspect.getfile(module))
    source = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == function:
            lines = source.splitlines(keepends=True)
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            return path, "".join(lines[start : node.end_lineno])
    raise LookupError(f"{module_name}.{function} not found")


def _edit(name: str, module: str, function: str, task: str, instruction: str) -> BenchTask:
    path, code = _function(module, function)
    return BenchTask(name, "edit", TaskInput(task, code, path=path, language="python", instruction=instruction))


def _explain(name: str, module: str, function: str) -> BenchTask:
    path, code = _function(module, function)
    return BenchTask(name, "explain", TaskInput("explain", code, path=path, language="python"))


def default_tasks() -> list[BenchTask]:
    return [
        _edit("type-hints textwrap.dedent", "textwrap", "dedent", "refactor", "add type hints"),
        _edit("rename-var textwrap._wrap_chunks", "textwrap", "_wrap_chunks", "refactor",
              "rename the variable cur_line to current_line"),
        _edit("rename shlex.split", "shlex", "split", "refactor", "rename the function split to split_command"),
        # a name used all through the function and its docstring: the lookup learns the replacement (draft/edits.py)
        _edit("rename-param textwrap._wrap_chunks", "textwrap", "_wrap_chunks", "refactor",
              "rename the parameter chunks to pieces"),
        _edit("f-strings calendar.TextCalendar", "calendar", "formatmonthname", "refactor",
              "convert the string formatting to f-strings"),
        _edit("docstrings fnmatch.filter", "fnmatch", "filter", "doc", "add a docstring"),
        _explain("explain json.dumps", "json", "dumps"),
        _explain("explain heapq.merge", "heapq", "merge"),
    ]
