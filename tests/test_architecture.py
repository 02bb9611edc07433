"""The layers' one-way arrows (ARCHITECTURE.md), read from the source: no import cycle inside engine/ or tui/, and
the engine never imports textual, rich or anything of tui/. Every import counts, including those inside functions
and under TYPE_CHECKING: a cycle that only type checking sees still ties two modules together."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every module name `path` imports (absolute), with `from x import y` also giving x.y (y may be a module)."""
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                module = ".".join([*anchor, *(node.module.split(".") if node.module else [])])
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def _graph(package: str) -> dict[str, set[str]]:
    """Edges between the package's own modules (a package's __init__ is not an edge of its submodules)."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {m for m in _imports(name, path) if m in modules and m != name}
        # importing engine.x runs engine/__init__ first; that is package loading, not a dependency of x's
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_in_the_engine() -> None:
    assert _cycles(_graph("engine")) == []


def test_no_import_cycle_in_the_interface() -> None:
    assert _cycles(_graph("tui")) == []


def test_the_engine_never_imports_the_interface_or_its_libraries() -> None:
    forbidden = ("textual", "rich", "tui", "bench", "tests")
    leaks = [
        f"{name} imports {imported}"
        for name, path in _modules("engine").items()
        for imported in _imports(name, path)
        if imported.split(".")[0] in forbidden
    ]
    assert leaks == []


def test_the_wheel_holds_the_product_packages_and_no_bench_scripts() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    # a package's data folder (the quality benchmark's corpus of source files) ships as that package's data
    data = {
        f"{package}.{pattern.split('/')[0]}"
        for package, patterns in config["tool"]["setuptools"]["package-data"].items()
        for pattern in patterns if "/" in pattern
    }
    product = {
        _module_name(folder / "x.py").removesuffix(".x")
        for top in ("engine", "tui", "prompts")
        for folder in (ROOT / top, *(p for p in (ROOT / top).rglob("*") if p.is_dir()))
        if any(folder.glob("*.py")) or folder.name == "prompts"
    } - data
    assert listed == product  # every product folder ships (`qcode bench` is tui.bench) ...
    assert not any(name.split(".")[0] in ("bench", "tests") for name in listed)  # ... and no device script does


def test_the_cycle_finder_finds_cycles() -> None:
    # the check above must be able to fail
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
