"""The package's import graph, checked: ``python scripts/import_graph.py``.

Reads every module of ``jamjet_temporal`` (with ``ast``; nothing is imported) and reports

* the graph between packages (``gate``, ``approvals``, ...; a root module such as
  ``errors.py`` counts as a package of its own) and any cycle in it, and
* every path by which a workflow-side module reaches an I/O module at import time.

Only imports that run when a module is imported count: those inside functions or under
``if TYPE_CHECKING:`` do not, and a lazy package ``__init__`` imports nothing it exports.
Exit status 0 when there is no cycle and no workflow-side module reaches I/O, 1 otherwise.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "jamjet_temporal"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

#: Third-party modules that do I/O (network, database, files, a browser, a PDF renderer);
#: none may be reachable from a workflow-side module.
IO_MODULES = frozenset(
    {
        "a2a",
        "httpcore",
        "httpx",
        "httpx2",
        "mcp",
        "openai",
        "psycopg",
        "psycopg_pool",
        "reportlab",
        "requests",
        "securesystemslib",
        "sqlite3",
        "starlette",
        "typer",
        "urllib3",
        "uvicorn",
    }
)

#: Modules whose code runs inside Temporal's workflow sandbox, besides every ``_workflow`` and
#: ``_types`` module: the authoring API that workflow code calls, and pure helpers.
WORKFLOW_SIDE_EXTRA = frozenset(
    {
        f"{PACKAGE}",
        f"{PACKAGE}.agent",
        f"{PACKAGE}.guard",
        f"{PACKAGE}.strategies",
        f"{PACKAGE}.errors",
        f"{PACKAGE}.llm",
        f"{PACKAGE}.llm._call",
        f"{PACKAGE}.mcp",
        f"{PACKAGE}.mcp._config",
        f"{PACKAGE}.a2a",
        f"{PACKAGE}.a2a._config",
        f"{PACKAGE}.authoring._task",
        f"{PACKAGE}.authoring._agent",
        f"{PACKAGE}.authoring._strategies",
        f"{PACKAGE}.approvals._guard",
        f"{PACKAGE}.approvals._check",
        f"{PACKAGE}._shared._runtime",
        f"{PACKAGE}.memory._api",
        f"{PACKAGE}._shared._lazy",
        f"{PACKAGE}._shared._principal",
        f"{PACKAGE}._shared._observe",
        f"{PACKAGE}._shared._details",
        f"{PACKAGE}.approvals._details",
    }
)


def module_files() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    found: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def workflow_side(modules: dict[str, Path]) -> list[str]:
    """The workflow-side modules: ``_workflow``, ``_types`` and the declared extras."""
    return sorted(
        name
        for name in modules
        if name.rsplit(".", 1)[-1] in {"_workflow", "_types"} or name in WORKFLOW_SIDE_EXTRA
    )


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_nodes(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements executed at import: module level, into if/try/with, not into defs."""
    for node in body:
        if isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _import_time_nodes(node.body)
            yield from _import_time_nodes(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _import_time_nodes(block)
            for handler in node.handlers:
                yield from _import_time_nodes(handler.body)
        elif isinstance(node, ast.With):
            yield from _import_time_nodes(node.body)
        else:
            yield node


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """What importing module ``name`` imports (our modules in full, others by top name)."""
    is_package = path.name == "__init__.py"
    base = name if is_package else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in _import_time_nodes(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                module = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            targets = [module]
            # ``from package import submodule`` imports the submodule.
            targets += [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == PACKAGE:
                if target in modules:
                    found.add(target)
                    # Importing a.b.c runs a/__init__ and a/b/__init__ first.
                    parts = target.split(".")
                    found.update(
                        ".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i])
                    )
            else:
                found.add(target.split(".")[0])
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    """Module -> what importing it imports directly."""
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def package_of(module: str) -> str:
    """``jamjet_temporal.gate._workflow`` -> ``gate``; root modules are their own package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def package_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """Package -> the packages its modules import (ours only, self-edges dropped)."""
    packages: dict[str, set[str]] = {}
    for module, targets in edges.items():
        if module == PACKAGE:
            continue  # the lazy top-level __init__ imports only _shared
        mine = package_of(module)
        packages.setdefault(mine, set())
        for target in targets:
            if target.startswith(PACKAGE + ".") and package_of(target) != mine:
                packages[mine].add(package_of(target))
    return packages


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in edges:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def io_paths(edges: dict[str, set[str]], start: str) -> list[list[str]]:
    """Import chains from ``start`` to an I/O module (shortest per I/O module)."""
    paths: dict[str, list[str]] = {}
    queue = [[start]]
    seen = {start}
    while queue:
        path = queue.pop(0)
        for target in sorted(edges.get(path[-1], ())):
            if target in IO_MODULES and target not in paths:
                paths[target] = [*path, target]
            if target in edges and target not in seen:
                seen.add(target)
                queue.append([*path, target])
    return [paths[name] for name in sorted(paths)]


def main() -> int:
    edges = graph()
    packages = package_graph(edges)
    print("Packages and what they import:")
    for package in sorted(packages):
        print(f"  {package:<11} -> {', '.join(sorted(packages[package])) or '-'}")
    problems = 0
    for component in cycles(packages):
        problems += 1
        print(f"CYCLE between packages: {' <-> '.join(component)}")
    for module in workflow_side(module_files()):
        for path in io_paths(edges, module):
            problems += 1
            print(f"I/O from workflow side: {' -> '.join(path)}")
    print("ok" if not problems else f"{problems} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
