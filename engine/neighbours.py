"""Which other files of the repository a completion shows the model, and how much of each.

Relevance, most first: files the current file imports (or includes, or declares as a module), then files in its
directory in the same language, ranked up when the current file mentions their name. The most relevant file is
shown whole when it fits the token budget, else as an outline (signatures and docstrings, bodies left out); then the
next, until the budget is spent. The prompt lists them least relevant first, so the most relevant sits next to the
current file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import code as codetools
from .fim import SourceFile
from .languages import detect_language

# a folder holding one of these is the repository's root
ROOT_MARKERS = (".git", ".hg", ".svn", "pyproject.toml", "setup.py", "package.json", "Cargo.toml", "go.mod")
MAX_FILE_BYTES = 256 * 1024  # larger files are generated or data: never a neighbour
MAX_SAME_DIR = 64  # directory entries looked at, so a huge folder costs little
IMPORTED, SAME_DIR, MENTIONED = 4, 1, 2  # relevance points
MIN_USEFUL_TOKENS = 32  # a smaller remainder of the budget shows nothing useful

_PY_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w. \t,]+)", re.M)
_PY_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+\(?[ \t]*([\w \t,]*)", re.M)
_JS_IMPORT = re.compile(
    r"""(?:\bfrom\s*|\bimport\s*|\brequire\(\s*|\bimport\(\s*)['"](\.{1,2}/[^'"\n]+)['"]"""
)
_C_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"', re.M)
_RUST_MOD = re.compile(r"^[ \t]*(?:pub(?:\([^)]*\))?[ \t]+)?mod[ \t]+(\w+)[ \t]*;", re.M)
_RUST_USE = re.compile(r"^[ \t]*(?:pub[ \t]+)?use[ \t]+crate::(\w+)", re.M)
_JS_EXTENSIONS = ("", ".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", "/index.ts", "/index.tsx", "/index.js")


def find_root(path: Path) -> Path:
    """The repository holding `path`: the nearest folder with a VCS or project marker, else the file's folder."""
    folder = path.parent
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).exists() for marker in ROOT_MARKERS):
            return candidate
    return folder


def relative_name(path: Path, root: Path) -> str:
    """`path` as the prompt names it: relative to the root, with forward slashes."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _existing(paths: Iterable[Path]) -> Path | None:
    for candidate in paths:
        if candidate.is_file():
            return candidate
    return None


def _package_root(folder: Path) -> Path:
    """The folder above the outermost package holding `folder` (where `import package.module` starts)."""
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder


def _python_imports(text: str, here: Path, root: Path) -> list[Path]:
    bases = list(dict.fromkeys([root, root / "src", _package_root(here), here]))
    found: list[Path] = []

    def module(base: Path, dotted: str) -> Path | None:
        parts = [p for p in dotted.split(".") if p]
        if not parts:
            return _existing([base / "__init__.py"])
        stem = base.joinpath(*parts)
        return _existing([stem.with_name(stem.name + ".py"), stem / "__init__.py"])

    for match in _PY_IMPORT.finditer(text):
        for name in match.group(1).split(","):
            dotted = name.split()[0] if name.split() else ""
            hit = next((m for base in bases if dotted and (m := module(base, dotted))), None)
            if hit:
                found.append(hit)
    for match in _PY_FROM.finditer(text):
        dots, dotted, names = match.groups()
        if dots:
            base = here
            for _ in range(len(dots) - 1):
                base = base.parent
            search = [base]
        else:
            search = bases
        for base in search:
            # `from pkg import mod` names modules as often as it names functions: the modules, else the package
            subs = [module(base, f"{dotted}.{n.split()[0]}") for n in names.split(",") if n.split()]
            hits = [h for h in subs if h is not None] or [h for h in [module(base, dotted)] if h is not None]
            if hits:
                found.extend(hits)
                break
    return found


def imported_files(text: str, language: str | None, path: Path, root: Path) -> list[Path]:
    """Files of the repository that `text` (the file at `path`) imports, includes or declares, in order."""
    here = path.parent
    found: list[Path] = []
    if language == "python":
        found = _python_imports(text, here, root)
    elif language in ("javascript", "typescript", "tsx"):
        for match in _JS_IMPORT.finditer(text):
            target = here / match.group(1)
            names = [Path(f"{target}{ext}") for ext in _JS_EXTENSIONS]
            if target.suffix == ".js":  # TypeScript imports name the compiled file
                names.append(target.with_suffix(".ts"))
            hit = _existing(names)
            if hit:
                found.append(hit)
    elif language in ("c", "cpp"):
        for match in _C_INCLUDE.finditer(text):
            name = match.group(1)
            hit = _existing([here / name, root / name, root / "include" / name])
            if hit:
                found.append(hit)
    elif language == "rust":
        nested = here if path.name in ("mod.rs", "lib.rs", "main.rs") else here / path.stem
        for match in _RUST_MOD.finditer(text):
            name = match.group(1)
            hit = _existing([nested / f"{name}.rs", nested / name / "mod.rs", here / f"{name}.rs"])
            if hit:
                found.append(hit)
        for match in _RUST_USE.finditer(text):
            name = match.group(1)
            hit = _existing([root / "src" / f"{name}.rs", root / "src" / name / "mod.rs"])
            if hit:
                found.append(hit)
    me = path.resolve()
    unique: dict[Path, None] = {}
    for hit in found:
        resolved = hit.resolve()
        if resolved != me and _inside(resolved, root):
            unique.setdefault(resolved)
    return list(unique)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _same_language_neighbours(path: Path, language: str | None) -> list[Path]:
    try:
        with os.scandir(path.parent) as entries:
            names = sorted(e.name for e in entries if e.is_file() and not e.name.startswith("."))
    except OSError:
        return []
    me = path.name
    suffix = path.suffix.lower()
    picked: list[Path] = []
    for name in names[:MAX_SAME_DIR]:
        candidate = path.parent / name
        if name == me:
            continue
        if (suffix and Path(name).suffix.lower() == suffix) or (
            language is not None and detect_language(candidate, "") == language
        ):
            picked.append(candidate.resolve())
    return picked


@dataclass(frozen=True)
class Candidate:
    path: Path
    score: int


def rank_candidates(text: str, language: str | None, path: Path, root: Path) -> list[Candidate]:
    """Candidate neighbours of the file at `path`, most relevant first (ties by path, so the order is stable)."""
    scores: dict[Path, int] = {}
    for hit in imported_files(text, language, path, root):
        scores[hit] = scores.get(hit, 0) + IMPORTED
    for hit in _same_language_neighbours(path, language):
        scores[hit] = scores.get(hit, 0) + SAME_DIR
    words = set(re.findall(r"[A-Za-z_]\w+", text))
    for hit in scores:
        if hit.stem in words and not hit.stem.startswith("__"):  # every class mentions __init__
            scores[hit] += MENTIONED
    ranked = [Candidate(p, s) for p, s in scores.items()]
    ranked.sort(key=lambda c: (-c.score, relative_name(c.path, root)))
    return ranked


def read_source(path: Path) -> str | None:
    """A candidate's text; None for what is not a small UTF-8 text file."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def head_lines(text: str, budget: int, count_tokens: Callable[[str], int]) -> str:
    """The longest run of whole lines from the top of `text` within `budget` tokens."""
    kept: list[str] = []
    used = 0
    for line in text.splitlines(keepends=True):
        cost = count_tokens(line)
        if used + cost > budget:
            break
        kept.append(line)
        used += cost
    return "".join(kept)


def choose_neighbours(
    candidates: list[Candidate], root: Path, budget: int, count_tokens: Callable[[str], int],
    read: Callable[[Path], str | None] = read_source,
) -> tuple[SourceFile, ...]:
    """Fill `budget` tokens with the candidates, most relevant first: whole, else outlined, else their head.

    Returned in prompt order: least relevant first.
    """
    chosen: list[SourceFile] = []
    remaining = budget
    for candidate in candidates:
        name = relative_name(candidate.path, root)
        room = remaining - count_tokens(name) - 3  # the separator, the newlines around the path
        if room < MIN_USEFUL_TOKENS:
            break
        text = read(candidate.path)
        if text is None or not text.strip():
            continue
        shown = text
        if count_tokens(shown) > room:
            shown = codetools.outline(text, detect_language(candidate.path, text))
            if not shown or count_tokens(shown) > room:
                shown = head_lines(shown or text, room, count_tokens)
        if not shown.strip():
            continue
        chosen.append(SourceFile(name, shown))
        remaining = room - count_tokens(shown)
    return tuple(reversed(chosen))
