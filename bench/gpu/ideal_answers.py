"""Ideal answers for the benchmark tasks: what a strong model should write, as a second source of acceptance.

The default model (Gemma 3 270M) is a small base model: its recorded edit answers drift into loops and its
"explanations" copy the code, which flatters n-gram drafting (loops and copies are exactly what it predicts). These
answers are the correct edits, made mechanically from the code being edited, and short prose explanations written
for this benchmark; the replay drafts against them as it does against the recorded ones.

    python -m bench.gpu.ideal_answers     # adds "ideal" token ids to bench/gpu/traces.json
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

TRACES = Path(__file__).resolve().parent / "traces.json"
FENCE_END = "\n```"


def _type_hints(code: str) -> str:
    code = code.replace("def dedent(text):", "def dedent(text: str) -> str:", 1)
    return code.replace("margin = None\n", "margin: str | None = None\n", 1)


def _rename_var(code: str) -> str:
    return re.sub(r"\bcur_line\b", "current_line", code)


def _rename_function(code: str) -> str:
    return code.replace("def split(", "def split_command(", 1)


def _f_strings(code: str) -> str:
    return code.replace('s = "%s %r" % (s, theyear)', 's = f"{s} {theyear!r}"', 1)


FILTER_DOC = '''"""Return the subset of the iterable NAMES that match the shell-style pattern PAT.

    The pattern, and on systems where case does not matter each name, is passed
    through os.path.normcase first, so on Windows the match ignores case. The
    compiled pattern is cached, so filtering many names costs one compilation.

    Args:
        names: The file names to test, in any iterable.
        pat: A shell-style wildcard pattern such as "*.py" or "data_??.csv".

    Returns:
        A list of the names that match PAT, in the order they came.
    """'''


def _docstring(code: str) -> str:
    return re.sub(r'"""Construct a list from those elements.*?"""', lambda _: FILTER_DOC, code, count=1,
                  flags=re.S)


DUMPS = """`json.dumps` turns a Python object into a JSON string.

The keyword-only options control the output: `skipkeys` drops dictionary keys that are not strings, numbers, \
booleans or None instead of raising `TypeError`; `ensure_ascii` escapes every non-ASCII character; \
`check_circular` guards against reference cycles; `allow_nan` decides whether NaN and infinities may be written \
as their JavaScript names; `indent` and `separators` shape the layout; `default` converts objects JSON does not \
know; `sort_keys` orders dictionary keys.

The function has a fast path: when every option has its default value and no extra keyword arguments are given, \
it reuses one module-level encoder, `_default_encoder`, instead of building a new one for every call. Otherwise \
it instantiates `cls` (a `JSONEncoder` unless the caller passes a subclass) with all the options and any extra \
keywords, and calls its `encode` method.

So the common call `json.dumps(data)` costs no encoder construction, and customising the output means either \
passing options or subclassing `JSONEncoder` and handing the subclass in as `cls`.
"""

MERGE = """`heapq.merge` lazily merges several inputs that are each already sorted into one sorted stream.

It keeps a small heap with one entry per input: the input's current value, its position in the argument list \
(used to break ties, so equal values come out in input order and the merge is stable) and the bound `__next__` \
method that yields its following value. Each step yields the value on top of the heap, pulls the next value from \
the same input and restores the heap with `heapreplace`; an exhausted input raises `StopIteration` and is popped.

With `reverse=True` it uses the max-heap helpers and negates the tie-breaking order, so inputs sorted from \
largest to smallest merge correctly. With a `key` function the heap entries carry the key of each value in front \
of the value itself, and the key is recomputed whenever an input advances.

When only one input is left, the loop stops using the heap and simply yields the rest of that iterator \
directly, which saves the heap overhead for the tail. Memory use is proportional to the number of inputs, not \
their length.
"""

EDITS: dict[str, Callable[[str], str]] = {
    "type-hints textwrap.dedent": _type_hints,
    "rename-var textwrap._wrap_chunks": _rename_var,
    "rename shlex.split": _rename_function,
    "f-strings calendar.TextCalendar": _f_strings,
    "docstrings fnmatch.filter": _docstring,
}
PROSE = {"explain json.dumps": DUMPS, "explain heapq.merge": MERGE}


def answer_text(name: str, reference: str) -> str:
    if name in EDITS:
        edited = EDITS[name](reference)
        if edited == reference:
            raise ValueError(f"{name}: the edit changed nothing")
        return edited.rstrip("\n") + FENCE_END
    return PROSE[name]


def main() -> int:
    from engine import Engine, load_settings

    data = json.loads(TRACES.read_text())
    engine = Engine(load_settings())
    for task in data["tasks"]:
        reference = engine.runtime.detokenize(task["reference"])
        if task["kind"] == "edit" and not reference.strip():
            raise SystemExit(f"{task['name']}: no reference text recorded")
        text = answer_text(task["name"], reference)
        task["ideal"] = engine.tokenize(text, add_bos=False)
        print(f"ideal: {task['name']}: {len(task['ideal'])} tokens", file=sys.stderr)
    engine.close()
    TRACES.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
