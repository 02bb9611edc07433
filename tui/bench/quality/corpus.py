"""The quality benchmark's corpus: subjects (standard-library functions with checks) and the cases made of them.

Cases live in data/cases.json, derived once from the subjects by `python -m tui.bench.quality.corpus --write`
(the derivation runs the checks to find lines and bugs the checks notice) and reviewed like code. Which lines
are blanked and which bug is seeded follows a fixed seed, not anyone's choice.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import itertools
import json
import sys
import tokenize
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from .checks import find_function
from .sandbox import run_checks

KINDS = ("infill-line", "infill-block", "fix", "hints", "docs", "rename", "explain")
REWRITE_KINDS = frozenset(("fix", "hints", "docs", "rename"))
SEED = 11
LINES_PER_SUBJECT = 2  # single-line infills per subject
BLOCK_LINES = (2, 8)  # a blanked block spans this many lines
CHECK_TIMEOUT_S = 5.0  # while deriving: a seeded bug that makes the checks hang is not used


@dataclass(frozen=True)
class Subject:
    name: str
    origin: str
    function: str
    source: str
    checks: str
    rename: tuple[str, str]
    explain: tuple[str, ...]
    quick: bool = False

    @property
    def filename(self) -> str:
        """The file name the model sees: the module the function comes from."""
        return self.origin.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    subject: str
    quick: bool = False
    lines: tuple[int, int] | None = None  # infills: the 1-based line range blanked
    mutation: dict[str, Any] | None = None  # fix: where the bug is seeded
    instruction: str | None = None
    facts: tuple[str, ...] = ()
    rename: tuple[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _data() -> Any:
    return resources.files(__package__).joinpath("data")


def load_subjects() -> dict[str, Subject]:
    data = _data()
    table = tomllib.loads(data.joinpath("subjects.toml").read_text(encoding="utf-8"))
    subjects = {}
    for name, spec in table.items():
        old, new = spec["rename"]
        subjects[name] = Subject(
            name=name, origin=spec["origin"], function=spec["function"],
            source=data.joinpath(f"{name}.py").read_text(encoding="utf-8"),
            checks=data.joinpath(f"{name}_checks.py").read_text(encoding="utf-8"),
            rename=(old, new), explain=tuple(spec["explain"]), quick=bool(spec.get("quick", False)),
        )
    return subjects


def load_cases() -> list[Case]:
    raw = json.loads(_data().joinpath("cases.json").read_text(encoding="utf-8"))
    return [_case(item) for item in raw["cases"]]


def _case(item: dict[str, Any]) -> Case:
    return Case(
        id=item["id"], kind=item["kind"], subject=item["subject"], quick=item.get("quick", False),
        lines=(item["lines"][0], item["lines"][1]) if "lines" in item else None,
        mutation=item.get("mutation"), instruction=item.get("instruction"),
        facts=tuple(item.get("facts", ())),
        rename=(item["rename"][0], item["rename"][1]) if "rename" in item else None,
    )


# --- making a case's input from its subject -----------------------------------------------------------------


def infill_input(source: str, lines: tuple[int, int]) -> tuple[str, int]:
    """The file with lines first..last blanked to one line of their indentation, and the cursor at its end."""
    first, last = lines
    all_lines = source.split("\n")
    indent = _indent(all_lines[first - 1])
    before = "\n".join(all_lines[: first - 1])
    after = "\n".join(all_lines[last:])
    head = (before + "\n" if before else "") + indent
    return head + "\n" + after, len(head)


def blanked_lines(source: str, lines: tuple[int, int]) -> str:
    """The code that `infill_input` takes out."""
    first, last = lines
    return "\n".join(source.split("\n")[first - 1 : last])


def apply_mutation(source: str, mutation: dict[str, Any]) -> str:
    """The source with one seeded bug: `old` at line/column start..end replaced by `new`."""
    all_lines = source.split("\n")
    line = all_lines[mutation["line"] - 1]
    start, end = mutation["start"], mutation["end"]
    if line[start:end] != mutation["old"]:
        raise ValueError(f"mutation {mutation} does not match line {line!r}")
    all_lines[mutation["line"] - 1] = line[:start] + mutation["new"] + line[end:]
    return "\n".join(all_lines)


def without_docstring(source: str, function: str) -> str:
    """The source with `function`'s docstring taken out (the docs task's input)."""
    node = find_function(ast.parse(source), function)
    if node is None:
        raise LookupError(function)
    first = node.body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        return source
    all_lines = source.split("\n")
    start, end = first.lineno - 1, first.end_lineno or first.lineno
    rest = all_lines[end:]
    while rest and not rest[0].strip():  # the blank line that followed the docstring goes with it
        rest = rest[1:]
    return "\n".join(all_lines[:start] + rest)


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


# --- deriving cases (run once, written to data/cases.json) -----------------------------------------------


def _order(key: str) -> str:
    return hashlib.sha256(f"{SEED}:{key}".encode()).hexdigest()


def _body_statements(function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.stmt]:
    """Every statement inside the function (nested blocks included), its docstring left out."""
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    for statement in body:
        yield from _walk_statements(statement)


def _walk_statements(statement: ast.stmt) -> Iterator[ast.stmt]:
    yield statement
    for name in ("body", "orelse", "finalbody", "handlers"):
        for child in getattr(statement, name, []) or []:
            if isinstance(child, ast.ExceptHandler):
                for inner in child.body:
                    yield from _walk_statements(inner)
            elif isinstance(child, ast.stmt):
                yield from _walk_statements(child)


def _blocks(function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[list[ast.stmt]]:
    """Statement lists that form a block: the body of an if, else, for, while, try, except or with."""
    for statement in _body_statements(function):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(statement, name, None)
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if block and not (name == "orelse" and len(block) == 1 and isinstance(block[0], ast.If)):
                yield block  # an `elif` chain is not an else block of its own
        for handler in getattr(statement, "handlers", []) or []:
            yield handler.body


def _whole_line(source_lines: list[str], statement: ast.stmt) -> bool:
    """The statement is alone on its one line (a trailing comment allowed)."""
    if statement.end_lineno != statement.lineno:
        return False
    line = source_lines[statement.lineno - 1]
    code = line[: statement.end_col_offset]
    rest = line[statement.end_col_offset or 0 :].strip()
    return not code[: statement.col_offset].strip() and (not rest or rest.startswith("#"))


def _breaks(subject: Subject, source: str) -> bool:
    run = run_checks(source, subject.checks, CHECK_TIMEOUT_S)
    return not run.passed and not run.timed_out


def _with_pass(source: str, lines: tuple[int, int]) -> str:
    """The lines replaced by `pass`: the checks must notice that they are gone."""
    text, offset = infill_input(source, lines)
    return text[:offset] + "pass" + text[offset:]


def line_cases(subject: Subject) -> list[tuple[int, int]]:
    tree = ast.parse(subject.source)
    function = find_function(tree, subject.function)
    assert function is not None, subject.name
    lines = subject.source.split("\n")
    simple = [
        s for s in _body_statements(function)
        if not hasattr(s, "body") and not isinstance(s, ast.Pass) and _whole_line(lines, s)
    ]
    chosen: list[tuple[int, int]] = []
    for statement in sorted(simple, key=lambda s: _order(f"{subject.name}:line:{s.lineno}")):
        span = (statement.lineno, statement.lineno)
        if _breaks(subject, _with_pass(subject.source, span)):
            chosen.append(span)
        if len(chosen) == LINES_PER_SUBJECT:
            break
    return sorted(chosen)


def block_case(subject: Subject) -> tuple[int, int] | None:
    function = find_function(ast.parse(subject.source), subject.function)
    assert function is not None
    spans = []
    for block in _blocks(function):
        first, last = block[0].lineno, block[-1].end_lineno or block[-1].lineno
        if BLOCK_LINES[0] <= last - first + 1 <= BLOCK_LINES[1]:
            spans.append((first, last))
    for span in sorted(set(spans), key=lambda s: _order(f"{subject.name}:block:{s}")):
        if _breaks(subject, _with_pass(subject.source, span)):
            return span
    return None


# operator swaps a seeded bug may make (the classic slips: off by one, wrong comparison, wrong sign)
_SWAPS = {
    "<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==", "is": "is not", "is not": "is",
    "in": "not in", "not in": "in", "+": "-", "-": "+", "*": "+", "//": "/", "/": "//", "%": "//",
    "<<": ">>", ">>": "<<", "&": "|", "|": "&", "and": "or", "or": "and",
    "+=": "-=", "-=": "+=", "<<=": ">>=", ">>=": "<<=",
}


def _operator_at(line: str, start: int, end: int) -> tuple[int, int, str] | None:
    """The one operator token between two operands on a line, as (start, end, text)."""
    segment = line[start:end]
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(segment).readline)
                  if t.type in (tokenize.OP, tokenize.NAME)]
    except (tokenize.TokenError, SyntaxError):
        return None
    words = [t for t in tokens if t.string not in "()[]{},"]
    if not words:
        return None
    text = " ".join(t.string for t in words)
    if text not in _SWAPS:
        return None
    return start + words[0].start[1], start + words[-1].end[1], text


def mutations(subject: Subject) -> list[dict[str, Any]]:
    """Every single-token bug the seeding may choose from, in the target function."""
    function = find_function(ast.parse(subject.source), subject.function)
    assert function is not None
    lines = subject.source.split("\n")
    found: list[dict[str, Any]] = []

    def between(left: ast.AST, right: ast.AST) -> None:
        if left.end_lineno != right.lineno:  # type: ignore[attr-defined]
            return
        line = lines[right.lineno - 1]  # type: ignore[attr-defined]
        spot = _operator_at(line, left.end_col_offset, right.col_offset)  # type: ignore[attr-defined]
        if spot:
            start, end, text = spot
            found.append({"line": right.lineno, "start": start, "end": end,  # type: ignore[attr-defined]
                          "old": text, "new": _SWAPS[text]})

    for statement in _body_statements(function):
        for node in ast.walk(statement):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                for left, right in itertools.pairwise(operands):
                    between(left, right)
            elif isinstance(node, ast.BinOp):
                between(node.left, node.right)
            elif isinstance(node, ast.BoolOp):
                for left, right in zip(node.values, node.values[1:], strict=False):
                    between(left, right)
            elif isinstance(node, ast.AugAssign):
                between(node.target, node.value)
            elif (isinstance(node, ast.Constant) and type(node.value) is int and 0 <= node.value <= 16
                  and node.lineno == node.end_lineno):
                line = lines[node.lineno - 1]
                text = line[node.col_offset : node.end_col_offset]
                if text.isdigit():
                    found.append({"line": node.lineno, "start": node.col_offset, "end": node.end_col_offset,
                                  "old": text, "new": str(node.value + 1)})
    unique = {(m["line"], m["start"], m["end"]): m for m in found}
    return list(unique.values())


def fix_case(subject: Subject) -> dict[str, Any] | None:
    """The seeded bug: the first, in seeded order, that the checks notice without hanging."""
    for mutation in sorted(mutations(subject), key=lambda m: _order(f"{subject.name}:fix:{m}")):
        broken = apply_mutation(subject.source, mutation)
        try:
            ast.parse(broken)
        except SyntaxError:
            continue
        run = run_checks(broken, subject.checks, CHECK_TIMEOUT_S)
        if not run.passed and not run.timed_out:
            return mutation
    return None


def derive(subjects: dict[str, Subject], progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    by_kind: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for name, subject in subjects.items():
        if progress:
            progress(name)
        run = run_checks(subject.source, subject.checks, CHECK_TIMEOUT_S)
        if not run.passed:
            raise ValueError(f"{name}: the untouched subject fails its checks: {run.detail}")
        for span in line_cases(subject):
            by_kind["infill-line"].append({"id": f"infill-line/{name}:{span[0]}", "subject": name,
                                           "lines": list(span)})
        block = block_case(subject)
        if block:
            by_kind["infill-block"].append({"id": f"infill-block/{name}:{block[0]}-{block[1]}", "subject": name,
                                            "lines": list(block)})
        mutation = fix_case(subject)
        if mutation:
            by_kind["fix"].append({"id": f"fix/{name}", "subject": name, "mutation": mutation})
        by_kind["hints"].append({"id": f"hints/{name}", "subject": name, "instruction": "add type hints"})
        by_kind["docs"].append({"id": f"docs/{name}", "subject": name})
        old, new = subject.rename
        by_kind["rename"].append({"id": f"rename/{name}", "subject": name, "rename": [old, new],
                                  "instruction": f"rename the variable {old} to {new}"})
        by_kind["explain"].append({"id": f"explain/{name}", "subject": name, "facts": list(subject.explain)})
    for kind in KINDS:
        quick_taken = 0
        for item in by_kind[kind]:
            # the quick subset: the first case of each kind (two single-line infills) of the quick subjects
            wanted = 2 if kind == "infill-line" else 1
            if subjects[item["subject"]].quick and quick_taken < wanted:
                item["quick"] = True
                quick_taken += 1
            cases.append({"kind": kind, **item})
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="derive the quality benchmark's cases from its subjects")
    parser.add_argument("--write", action="store_true", help="write data/cases.json (else print it)")
    args = parser.parse_args(argv)
    cases = derive(load_subjects(), progress=lambda name: print(f"deriving cases: {name}", file=sys.stderr))
    text = json.dumps({"seed": SEED, "cases": cases}, indent=1) + "\n"
    if args.write:
        target = resources.files(__package__).joinpath("data").joinpath("cases.json")
        with resources.as_file(target) as path:
            path.write_text(text, encoding="utf-8")
        print(f"wrote {len(cases)} cases", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
