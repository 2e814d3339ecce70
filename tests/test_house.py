"""The house's shape: the import graph of the packages has no cycle (module-level and deferred
imports alike) and runs only down the floors written in docs/architecture.md, so that data flows
one way; no module is over 500 lines and ``benchmark/`` itself holds at most 8 modules."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "methods", "analysis")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    files = {_module(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                           for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != mod:
                    graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    # the graph sees deferred imports
    assert "benchmark.store.tracking" in graph["benchmark.store.runtime"]
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_analysis_imports_neither_benchmark_nor_methods():
    graph = import_graph()
    for mod, targets in graph.items():
        if mod.startswith("analysis"):
            assert not {t for t in targets if t.split(".")[0] in ("benchmark", "methods")}, mod


def floors() -> dict[str, int]:
    """docs/architecture.md's table: package or module prefix -> floor."""
    out = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        m = re.match(r"\| (\d+) \| ([^|]+) \|", line)
        if m:
            for name in re.findall(r"`([\w.]+)`", m.group(2)):
                out[name] = int(m.group(1))
    return out


def floor_of(module: str, table: dict[str, int]) -> int:
    """The floor of the longest prefix of ``module`` that the table names."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in table:
            return table[".".join(parts[:i])]
    raise AssertionError(f"{module} is on no floor of docs/architecture.md")


def upward(graph: dict[str, set[str]], table: dict[str, int]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, targets in graph.items() for b in targets
                  if floor_of(b, table) > floor_of(a, table))


def test_imports_run_only_down_the_floors_the_docs_write():
    table = floors()
    assert table["benchmark.config"] < table["benchmark.store"] < table["benchmark.jobs"]
    assert upward(import_graph(), table) == []


def test_the_floor_check_finds_an_upward_import():
    table = {"low": 1, "high": 2}
    assert upward({"low.a": {"high.b"}, "high.b": set()}, table) == [("low.a", "high.b")]
    assert upward({"high.b": {"low.a"}, "low.a": set()}, table) == []


def test_no_module_is_over_500_lines_and_benchmark_holds_at_most_8():
    long = {str(p.relative_to(ROOT)): n for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}
    assert len(list((ROOT / "benchmark").glob("*.py"))) <= 8
