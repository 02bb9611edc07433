"""The one list of tasks: what each is called, what its answer is, its prompt, its key and its help.

Data only (no imports beyond the standard library), so the command line's parser can read it without loading the
engine. engine.tasks builds requests from it; the CLI's parser and dispatch, the TUI's keys, help and palette, its
jobs and the tests' fake engine all read it, so a new task is one row here and one prompt template.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# prose: the answer is text to read; code: the answer is bare code (the prompt opens a code fence for it)
AnswerKind = Literal["prose", "code"]


@dataclass(frozen=True)
class Task:
    name: str
    kind: AnswerKind
    template: str  # the prompt template's name (prompts/NAME.txt)
    rewrites: bool  # the answer replaces the code it was given (a diff to review); else it is shown or saved
    key: str  # the interface's key for it ("": none, e.g. ask goes through the prompt line)
    help: str  # one line: the command line's summary, the interface's help and palette
    instruction: Literal["none", "optional", "required"] = "optional"  # the -m text / the prompt line


# in the interface's key order; the command line lists the prose tasks first
REGISTRY: tuple[Task, ...] = (
    Task("explain", "prose", "explain", False, "f2", "Explain the code"),
    Task("refactor", "code", "refactor", True, "f3", "Rewrite the code as instructed", instruction="required"),
    Task("review", "prose", "review", False, "f4", "Review the code for bugs and risks"),
    Task("fix", "code", "fix", True, "f5", "Fix bugs in the code"),
    Task("doc", "code", "doc", True, "f6", "Add docstrings and comments to the code"),
    Task("test", "code", "test", False, "f7", "Write tests for the code"),
    Task("ask", "prose", "ask", False, "", "Ask a question (about code on stdin or in FILEs)",
         instruction="required"),
)
BY_NAME: dict[str, Task] = {task.name: task for task in REGISTRY}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def task(name: str) -> Task:
    """The registry's row for `name` (KeyError for a name that is no task)."""
    return BY_NAME[name]
