"""The import graph, read from the source (every import statement, in functions too, but not those
under ``if TYPE_CHECKING:``): core imports nothing above ``errors``; plugins import only
``adaptkit.core``; nothing imports the package root; no cycles."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_FILES = sorted((ROOT / "adaptkit_plugins").rglob("*.py")) + sorted(
    (ROOT / "examples" / "plugin_template").rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted((ROOT / "adaptkit").rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, imported names) for every import in ``path`` that runs."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    return parse_imports(path.read_text(), package)


def parse_imports(source: str, package: str) -> list[tuple[str, list[str]]]:
    """(absolute module, imported names) for every import in ``source``, a module of ``package``."""
    tree = ast.parse(source)
    skipped = _type_checking_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            names = [alias.name for alias in node.names]
            submodules = [n for n in names if f"{base}.{n}" in MODULES]
            found += [(f"{base}.{n}", []) for n in submodules]
            rest = [n for n in names if n not in submodules]
            if rest or not submodules:
                found.append((base, rest))
    return found


def adaptkit_edges(path: Path) -> set[str]:
    return {m for m, _ in imports(path) if m == "adaptkit" or m.startswith("adaptkit.")}


def test_the_walk_sees_what_it_should():
    source = ("from typing import TYPE_CHECKING\nfrom .. import errors\nfrom . import options\n"
              "from ..io.run_dir import load_run\nif TYPE_CHECKING:\n    from ..sample import StripEnds\n"
              "def f():\n    import adaptkit.core\n    from .. import __version__\n")
    assert sorted(parse_imports(source, "adaptkit.cli")) == sorted([
        ("typing", ["TYPE_CHECKING"]), ("adaptkit.errors", []), ("adaptkit.cli.options", []),
        ("adaptkit.io.run_dir", ["load_run"]), ("adaptkit.core", []), ("adaptkit", ["__version__"]),
    ])


@pytest.mark.parametrize("name", [n for n in MODULES if n.startswith("adaptkit.core")])
def test_core_imports_nothing_above_errors(name):
    above = {m for m in adaptkit_edges(MODULES[name]) if m != "adaptkit.errors" and not m.startswith("adaptkit.core")}
    assert not above, f"{name} imports {sorted(above)}"


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_only_adaptkit_core(path):
    edges = {m for m in adaptkit_edges(path)}
    assert edges <= {"adaptkit.core"}, f"{path.relative_to(ROOT)} imports {sorted(edges - {'adaptkit.core'})}"


def test_nothing_imports_the_package_root():
    offenders = {}
    for name, path in MODULES.items():
        for module, names in imports(path):
            if module == "adaptkit" and name != "adaptkit":
                offenders[name] = names
    assert not offenders, offenders


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the cycles (components of more than one module, or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_strongly_connected_finds_a_cycle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    graph = {name: {m for m in adaptkit_edges(path) if m in MODULES and m != name} for name, path in MODULES.items()}
    # a module importing a package it belongs to is no cycle: Python imports the package first
    graph = {name: {m for m in edges if not name.startswith(m + ".")} for name, edges in graph.items()}
    assert strongly_connected(graph) == []
