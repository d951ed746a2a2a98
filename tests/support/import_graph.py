"""Import graph of the tdm_dagster package, built from the AST (module-level and
function-level imports alike, since a function-level import still ties two modules
together), and its strongly connected components: the import cycles.

Used by tests/unit/test_import_cycles.py; ``python -m tests.support.import_graph``
prints the cycles with the edges inside each.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "tdm_dagster"


def module_name(path: Path, package_dir: Path) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(package_dir: Path) -> dict[str, Path]:
    return {module_name(p, package_dir): p for p in sorted(package_dir.rglob("*.py"))}


def _resolve(name: str, known: set[str]) -> str | None:
    """The longest known module that `name` is or lies inside (`a.b.func` -> `a.b`)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    type_only = {id(inner) for node in ast.walk(tree) if _is_type_checking_block(node) for stmt in node.body for inner in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue  # ``if TYPE_CHECKING:`` imports never run: no cycle at import time
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, known)
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            if not prefix.startswith(PACKAGE):
                continue
            for alias in node.names:
                target = _resolve(f"{prefix}.{alias.name}", known) or _resolve(prefix, known)
                if target:
                    found.add(target)
    found.discard(module)
    return found


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    mods = modules(package_dir)
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in mods.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; returns every component (singletons included)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
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
                components.append(sorted(component))
    return components


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Components of more than one module. A package importing its own submodule
    while that submodule imports the package (`pkg/__init__` <-> `pkg.x`) counts too."""
    return sorted(c for c in strongly_connected(graph) if len(c) > 1)


def _edges_inside(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    members = set(component)
    return [f"  {a} -> {b}" for a in component for b in sorted(graph[a] & members)]


def main() -> int:
    root = Path(__file__).resolve().parents[2]
    graph = import_graph(root / PACKAGE)
    found = cycles(graph)
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} import edges, {len(found)} cycle(s)")
    for component in found:
        print(f"\ncycle of {len(component)}: " + ", ".join(component))
        print("\n".join(_edges_inside(component, graph)))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
