"""Checks on a rewrite before it may be written: a result that parses can still be wrong.

check_rewrite compares the whole new text with the original and says, in one line each, what is
wrong with it: the answer was cut off, it holds qcode's own prompt scaffolding, it changed code
outside the focused region, the result does not parse, the focused symbol is gone, doubled or of
another kind, a top-level definition was duplicated or lost, or (Python) it adds a wildcard import
or reads a name it no longer binds (an import it dropped). without_unneeded_wildcards takes out,
before the checks, the wildcard imports a Python rewrite added and does not need.
Pure text work: no model, no disk.
"""

from __future__ import annotations

import ast
import builtins
import re
import sys
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import TypeGuard

from .code import Span, compiles_as_python, parses_cleanly, symbols
from .events import CUT_OFF

# qcode's own markup a model may copy back: outline placeholders, chat and FIM tokens, the plain
# prompt format's headers, and Markdown fences (the answer's code never holds a fence line)
_SCAFFOLD = re.compile(
    r"\.\.\. .*\bis left out here\s*$"
    r"|<\|(?:im_start|im_end|endoftext|fim_prefix|fim_suffix|fim_middle|fim_pad|file_sep|repo_name)\|>"
    r"|<(?:start|end)_of_turn>"
    r"|^\s*#{3} (?:Task|Answer)\s*$"
    r"|^\s*(?:`{3,}|~{3,})"
)
_KIND_WORD = {"impl": "impl block"}


@dataclass(frozen=True)
class Problem:
    """One reason a rewrite must not be written. `check` names the rule (for --json); only a
    `forcible` problem may be overridden (--force): a cut-off answer never is."""

    check: str
    reason: str
    forcible: bool = True

    def message(self) -> str:
        """The reason, with how to override it where it may be."""
        return self.reason + (" (--force writes it anyway)" if self.forcible else "")


def blocking(problems: Collection[Problem], force: bool = False) -> Problem | None:
    """The problem that forbids writing, or None; `force` overrides the forcible ones."""
    return next((p for p in problems if not (force and p.forcible)), None)


def check_rewrite(
    original: str,
    result: str,
    language: str | None,
    focus: Span | None = None,
    *,
    finish_reason: str = "stop",
    scaffolding: Collection[str] = (),
    renaming: bool = False,
) -> list[Problem]:
    """Every problem of `result` (the whole new text) as a rewrite of `original`; [] when none.

    `focus` is the region the task rewrote (a symbol or a line range), None for the whole text.
    `scaffolding` holds lines of the prompt that are not code (see engine.tasks.scaffolding): one
    of them in the result, where the original has no such line, was copied from the prompt.
    `renaming`: the task renames, so the focused symbol may go by a new name (engine.change_kind holds
    such a rewrite to changing names only).
    """
    problems: list[Problem] = []
    if finish_reason in CUT_OFF:
        hint = " (raise --max-tokens)" if finish_reason == "length" else ""
        problems.append(Problem("complete", f"the answer was cut off ({finish_reason}){hint}", False))
    copied = _copied_scaffolding(original, result, scaffolding)
    if copied is not None:
        problems.append(Problem("scaffolding", f"the answer copied qcode's prompt back: {copied!r}"))
    if focus is not None:
        head, tail = original[: focus.start_byte], original[focus.end_byte :]
        if not (result.startswith(head) and result.endswith(tail)) or len(result) < len(head) + len(tail):
            problems.append(Problem("outside", f"the rewrite changed code outside {focus.describe()}"))
    parsed = parses_cleanly(result, language)
    if parsed and language == "python" and not compiles_as_python(result) and compiles_as_python(original):
        parsed = False  # the grammar let an indentation error through; Python's parser does not
    if parsed is False:  # the definitions of a broken parse are guesses: nothing more to compare
        problems.append(Problem("parse", f"the result does not parse as {language}"))
        return problems
    if parsed is None:
        unbalanced = _unbalanced(original, result, focus)
        if unbalanced:
            problems.append(Problem("complete", unbalanced))
        return problems
    old_defs, new_defs = symbols(original, language), symbols(result, language)
    focused = _focused_symbol(old_defs, focus)
    if focused is not None:
        wrong = _symbol_problem(focused, new_defs, renaming)
        if wrong:
            problems.append(Problem("symbol", wrong))
    definitions = _definitions_problem(_top_level(old_defs), _top_level(new_defs))
    if definitions:
        problems.append(Problem("definitions", definitions))
    if language == "python":
        before, after = _parse(original), _parse(result)  # None where this Python cannot parse a side: no check
        if before is not None and after is not None:
            wildcard = _added_wildcard_import(before, after)
            if wildcard:
                reason = f"the rewrite adds `{wildcard}`, which can shadow the code's names"
                problems.append(Problem("wildcard", reason))
            unbound = _newly_unbound(before, after)
            if unbound:
                problems.append(Problem("unbound", f"the rewrite uses {unbound}, which nothing defines or imports"))
    return problems


def _added_wildcard_import(before: ast.Module, after: ast.Module) -> str | None:
    """The first `from m import *` of the rewrite (`after`) that the original (`before`) has fewer of. It puts all
    of m's public names in scope over the module's own, and no task asks for one: coder-1.5b added `from typing
    import *` and `from collections import *` to files it gave type hints."""
    return next(iter(Counter(map(_import_text, _wildcards(after))) - Counter(map(_import_text, _wildcards(before)))),
                None)


def _newly_unbound(before: ast.Module, after: ast.Module) -> str | None:
    """The first name (`math`) the rewrite (`after`) reads and nothing in it binds, where the original (`before`)
    read no such name unbound: coder-1.5b replaced `import math` by `from typing import List` in a file it gave type
    hints, and math.sqrt stayed. Module attributes (`__file__`) aside. None where either side has a wildcard import
    (a name may come from it)."""
    if _wildcards(before) or _wildcards(after):
        return None
    lost = sorted(name for name in _unbound(after) - _unbound(before) if not name.startswith("__"))
    return f"`{lost[0]}`" if lost else None


def without_unneeded_wildcards(original: str, result: str) -> str:
    """`result` less the top-level `from m import *` lines it added where nothing needs them: every name the rest
    of it reads and nothing in it binds, the original read unbound too (the module's globals defined elsewhere,
    builtins). coder-1.5b wrote `from typing import *` and `from re import *` above a function it gave `str`
    hints. Where a new unbound name may come from one of them, `result` stays whole (check_rewrite then refuses
    it); so it does where either side does not parse."""
    before, after = _parse(original), _parse(result)
    if before is None or after is None:
        return result
    known = Counter(map(_import_text, _wildcards(before)))
    added = []
    for node in after.body:
        if _is_wildcard(node):
            if known[_import_text(node)] > 0:
                known[_import_text(node)] -= 1
            else:
                added.append(node)
    if not added:
        return result
    lines = result.splitlines(keepends=True)
    drop = {i for node in added for i in range(node.lineno - 1, node.end_lineno or node.lineno)}
    kept = [line for i, line in enumerate(lines) if i not in drop]
    if min(drop) == 0 and original[:1].strip():  # the imports opened the file: the blank lines after them go too
        while kept and not kept[0].strip():
            kept.pop(0)
    text = "".join(kept)
    narrowed = _parse(text)
    if narrowed is None or not _unbound(narrowed) <= _unbound(before):
        return result
    return text


def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def _is_wildcard(node: ast.AST) -> TypeGuard[ast.ImportFrom]:
    return isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names)


def _wildcards(tree: ast.Module) -> list[ast.ImportFrom]:
    return [node for node in ast.walk(tree) if _is_wildcard(node)]


def _import_text(node: ast.ImportFrom) -> str:
    return f"from {'.' * node.level}{node.module or ''} import *"


def _unbound(tree: ast.Module) -> set[str]:
    """Names `tree` reads that nothing in it binds, builtins aside (scopes flattened: a name bound anywhere counts)."""
    read: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias) and node.name != "*":
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
        elif sys.version_info >= (3, 12) and isinstance(node, (ast.TypeVar, ast.ParamSpec, ast.TypeVarTuple)):
            bound.add(node.name)  # def f[T](x: T)
    return read - bound - set(dir(builtins))


def _copied_scaffolding(original: str, result: str, scaffolding: Collection[str]) -> str | None:
    """The first line of `result` that is prompt scaffolding and not a line of `original`."""
    known = {line.strip() for line in original.splitlines()}
    prompt_lines = {line.strip() for line in scaffolding} - {""}
    for line in result.splitlines():
        stripped = line.strip()
        if stripped in known:
            continue
        if stripped in prompt_lines or _SCAFFOLD.search(line):
            return stripped if len(stripped) <= 60 else stripped[:57] + "..."
    return None


def _describe(kind: str, name: str) -> str:
    return f"{_KIND_WORD.get(kind, kind)} {name}"


def _focused_symbol(defs: list[Span], focus: Span | None) -> Span | None:
    """The definition the task is about: the focus itself, or the outermost one its lines hold exactly."""
    if focus is None:
        return None
    if focus.kind != "lines":
        return focus
    exact = [d for d in defs if (d.start_line, d.end_line) == (focus.start_line, focus.end_line)]
    return exact[0] if exact else None


def _symbol_problem(focused: Span, new_defs: list[Span], renaming: bool) -> str | None:
    same_name = [d for d in new_defs if d.name == focused.name]
    same_kind = [d for d in same_name if d.kind == focused.kind]
    what = _describe(focused.kind, focused.name)
    if len(same_kind) == 1 or (renaming and not same_name):
        return None
    if len(same_kind) > 1:
        return f"the rewrite defines {what} {len(same_kind)} times"
    if same_name:
        return f"the rewrite turned {what} into a {_KIND_WORD.get(same_name[0].kind, same_name[0].kind)}"
    return f"the rewrite lost {what}"


def _top_level(defs: list[Span]) -> Counter[tuple[str, str]]:
    """(name, kind) of each definition no other one holds; impl blocks may repeat, so not counted."""
    counts: Counter[tuple[str, str]] = Counter()
    outer_end = -1
    for span in defs:  # in order of their starts, outer ones first
        if span.start_byte < outer_end:
            continue
        outer_end = span.end_byte
        if span.kind != "impl":
            counts[(span.name, span.kind)] += 1
    return counts


def _definitions_problem(old: Counter[tuple[str, str]], new: Counter[tuple[str, str]]) -> str | None:
    doubled = [key for key, n in new.items() if n > 1 and n > old.get(key, 0)]
    if doubled:
        kind_name = doubled[0]
        return f"the rewrite defines {_describe(kind_name[1], kind_name[0])} {new[kind_name]} times"
    # a rename loses a name and adds one: only a loss nothing replaced counts
    lost = old - new
    added = new - old
    if sum(lost.values()) > sum(added.values()):
        name, kind = sorted(lost)[0]
        return f"the rewrite lost {_describe(kind, name)}"
    return None


_OPEN, _CLOSE = "([{", ")]}"


def _balance(text: str) -> int:
    return sum(text.count(c) for c in _OPEN) - sum(text.count(c) for c in _CLOSE)


def _unbalanced(original: str, result: str, focus: Span | None) -> str | None:
    """Without a grammar: a region whose brackets closed before and do not now was cut short."""
    if focus is None:
        old, new = original, result
    else:
        tail = len(original) - focus.end_byte
        old = original[focus.start_byte : focus.end_byte]
        new = result[focus.start_byte : len(result) - tail]
    if _balance(old) == 0 and _balance(new) != 0:
        return "the answer looks cut off: its brackets do not close"
    return None
