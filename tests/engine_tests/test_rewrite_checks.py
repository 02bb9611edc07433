"""Pure engine checks on a rewrite: the region it replaces (engine.edit) and the kind of change (engine.change_kind)."""

from __future__ import annotations

import pytest

from engine.change_kind import allowed_kind, kind_violation
from engine.edit import region_replacement
from engine.errors import InputError

BUFFER = "import os\n\n\ndef add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n"
REGION = (BUFFER.index("def add"), BUFFER.index("\n\n\nprint"))


# ---- the region of a rewrite ------------------------------------------------------------------------


def test_the_region_is_what_lies_between_the_untouched_head_and_tail() -> None:
    start, end = REGION
    result = BUFFER.replace("return a + b", "# sum\n    return a + b")
    assert region_replacement(BUFFER, start, end, result) == "def add(a, b):\n    # sum\n    return a + b"


def test_the_region_keeps_its_own_trailing_newlines() -> None:
    start = BUFFER.index("def add")
    end = BUFFER.index("print")  # the region ends with its blank lines
    result = BUFFER.replace("return a + b\n\n\n", "return a + b\n\n\n\n")  # one blank line more
    assert region_replacement(BUFFER, start, end, result) == BUFFER[start:end]


@pytest.mark.parametrize("result", [
    BUFFER.replace("import os", "import sys"),  # before the region
    BUFFER.replace("print(add(1, 2))", "print(add(2, 2))"),  # after it
    "import os\n",  # shorter than the head and tail together
])
def test_a_result_that_changed_code_outside_the_region_is_refused(result: str) -> None:
    with pytest.raises(InputError, match="outside its region"):
        region_replacement(BUFFER, *REGION, result)


def test_a_region_outside_the_buffer_is_refused() -> None:
    with pytest.raises(InputError, match="outside the text"):
        region_replacement(BUFFER, 5, len(BUFFER) + 1, BUFFER)


# ---- the kind of change a task allows ---------------------------------------------------------------

DEDENT = '''def dedent(text):
    lines = text.split("\\n")
    margin = None
    for line in lines:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if margin is None or indent < margin:
            margin = indent
    return "\\n".join(line[margin:] for line in lines)
'''


def test_only_doc_tasks_and_renames_are_restricted() -> None:
    assert allowed_kind("doc", None) == "doc"
    assert allowed_kind("refactor", "Rename x to total") == "rename"
    assert allowed_kind("refactor", "renaming the loop variable") == "rename"
    assert allowed_kind("refactor", "use a list comprehension") is None
    assert allowed_kind("fix", "rename it") is None
    assert kind_violation("fix", None, DEDENT, "x = 1\n", "python") is None


def test_documentation_and_layout_changes_pass_a_doc_task() -> None:
    documented = DEDENT.replace(
        "def dedent(text):\n",
        'def dedent(text):\n    """Remove the common leading whitespace of every line."""\n'
        "    # blank lines do not count\n",
    ).replace("margin = None", "margin = None  # the smallest indent so far")
    assert kind_violation("doc", None, DEDENT, documented, "python") is None
    reflowed = DEDENT.replace('return "\\n".join(line[margin:] for line in lines)',
                              'return "\\n".join(\n        line[margin:] for line in lines\n    )')
    assert kind_violation("doc", None, DEDENT, reflowed, "python") is None


def test_a_doc_task_that_renames_the_function_is_flagged_with_the_line() -> None:
    renamed = DEDENT.replace("def dedent", "def remove_margin")
    reason = kind_violation("doc", None, DEDENT, renamed, "python")
    assert reason is not None
    assert reason.startswith("a doc task should change only comments and docstrings")
    assert "line 1 `def dedent(text):` became `def remove_margin(text):`" in reason


def test_a_doc_task_that_changes_a_condition_is_flagged() -> None:
    changed = DEDENT.replace("indent < margin", "indent <= margin")
    reason = kind_violation("doc", None, DEDENT, changed, "python")
    assert reason is not None and "line 8" in reason and "indent <= margin" in reason
    # the region's lines are counted from where it starts in its file
    reason = kind_violation("doc", None, DEDENT, changed, "python", first_line=41)
    assert reason is not None and "line 48 " in reason


def test_a_doc_task_that_moves_a_statement_out_of_its_block_is_flagged() -> None:
    moved = DEDENT.replace("            margin = indent\n", "        margin = indent\n")
    reason = kind_violation("doc", None, DEDENT, moved, "python")
    assert reason is not None and "moved to another block" in reason


def test_a_doc_task_that_adds_or_drops_code_is_flagged() -> None:
    added = DEDENT + "\n\nprint(dedent('  x'))\n"
    assert "it adds `print(dedent('  x'))`" in (kind_violation("doc", None, DEDENT, added, "python") or "")
    dropped = DEDENT.replace("        if not line.strip():\n            continue\n", "")
    assert kind_violation("doc", None, DEDENT, dropped, "python") is not None


def test_a_consistent_rename_passes_and_may_touch_the_docs() -> None:
    renamed = DEDENT.replace("margin", "common").replace(
        "def dedent(text):\n", 'def dedent(text):\n    """Strip the common indent."""\n')
    assert kind_violation("refactor", "rename margin to common", DEDENT, renamed, "python") is None


def test_a_rename_that_changes_logic_is_flagged() -> None:
    renamed = DEDENT.replace("margin", "common").replace("indent < common", "indent > common")
    reason = kind_violation("refactor", "rename margin to common", DEDENT, renamed, "python")
    assert reason is not None and reason.startswith("a rename should change only names")
    assert "indent > common" in reason


def test_a_half_done_or_merging_rename_is_flagged() -> None:
    half = DEDENT.replace("margin = indent", "common = indent")
    reason = kind_violation("refactor", "rename margin", DEDENT, half, "python")
    assert reason is not None and "`margin` became `margin` on line 3 but `common` on line 9" in reason
    merged = DEDENT.replace("indent", "line")
    reason = kind_violation("refactor", "rename indent to line", DEDENT, merged, "python")
    assert reason is not None and "`line` and `indent` both became `line`" in reason


def test_other_languages_use_their_own_comments() -> None:
    js = "function add(a, b) {\n  return a + b;\n}\n"
    documented = "/** Add two numbers. */\nfunction add(a, b) {\n  // the sum\n  return a + b;\n}\n"
    assert kind_violation("doc", None, js, documented, "javascript") is None
    assert kind_violation("doc", None, js, js.replace("a + b", "a - b"), "javascript") is not None


def test_without_a_grammar_nothing_is_claimed() -> None:
    assert kind_violation("doc", None, "a b c\n", "x y z\n", None) is None
    assert kind_violation("doc", None, "a b c\n", "x y z\n", "no-such-language") is None
