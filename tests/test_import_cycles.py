"""No import cycles between the project's modules (house rule; issue 20).

The graph is read from the source (AST), not by importing: every `import` and `from ... import`
counts, including those inside functions (a cycle hidden in a function is still a cycle, only a
later one), relative imports are resolved, and `from pkg import name` is an edge to the module
`pkg.name` when there is one. Imports under `if TYPE_CHECKING:` never run and are left out. An
import of `a.b.c` is an edge to `a.b.c` only, not to the packages `a` and `a.b` Python also runs:
a package's `__init__` importing its own modules would otherwise be a cycle with each of them.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "common",
    "bot",
    "connectors",
    "deploy",
    "devstack",
    "signing_service",
    "agent_desk",
    "notifier",
    "trainer",
)

Edge = tuple[str, int]  # imported module, line of the import in the importer


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
    return name == "TYPE_CHECKING"


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is one of the project's modules."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_edges(module: str, path: Path, modules: dict[str, Path]) -> list[Edge]:
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    edges: list[Edge] = []
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(p for p in [*base_parts, node.module or ""] if p)
            else:
                base = node.module or ""
            # `from pkg import name`: the module pkg.name when it is one, else pkg itself.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for target in targets:
            known = _known(target, modules)
            if known is not None and known != module and (known, node.lineno) not in edges:
                edges.append((known, node.lineno))
    return edges


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, list[Edge]]:
    modules = module_files(root, packages)
    return {name: import_edges(name, path, modules) for name, path in modules.items()}


def strongly_connected(graph: dict[str, list[Edge]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph has hundreds of modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted({t for t, _ in graph[start]})))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted({t for t, _ in graph[child]}))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return sorted(found)


def shortest_cycle(graph: dict[str, list[Edge]], component: list[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component."""
    inside = set(component)
    start = component[0]
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target, _ in graph[node]:
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if target in inside and target not in parent:
                parent[target] = node
                queue.append(target)
    return component  # unreachable for a real component


def describe(graph: dict[str, list[Edge]], component: list[str]) -> str:
    inside = set(component)
    lines = ["  " + " -> ".join(shortest_cycle(graph, component))]
    for module in component:
        for target, line in graph[module]:
            if target in inside:
                lines.append(f"      {module.replace('.', '/')}.py:{line} imports {target}")
    return "\n".join(lines)


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = strongly_connected(graph)
    report = "\n".join(describe(graph, c) for c in cycles)
    assert not cycles, f"{len(cycles)} import cycle(s) (a shortest one, then its imports):\n{report}"


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checker itself: a cycle through a relative import, an import inside a function and
    `from pkg import module` is found; TYPE_CHECKING imports and parent packages are not edges."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg import a\n")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from pkg.sub import c\n")
    (pkg / "sub" / "c.py").write_text("from .. import a\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.e\n")
    (pkg / "e.py").write_text("import pkg.d\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.sub.b"] == [("pkg.sub.c", 2)]
    assert graph["pkg.sub.c"] == [("pkg.a", 1)]
    assert graph["pkg.d"] == []
    cycles = strongly_connected(graph)
    assert cycles == [["pkg.a", "pkg.sub.b", "pkg.sub.c"]]
    assert shortest_cycle(graph, cycles[0]) == ["pkg.a", "pkg.sub.b", "pkg.sub.c", "pkg.a"]
    assert "pkg/sub/b.py:2 imports pkg.sub.c" in describe(graph, cycles[0])
