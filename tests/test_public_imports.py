"""Examples, benchmarks and docs import jamjet_temporal's public names only.

A user copies what the examples (``workflows/``, ``activities/``, ``starters/``), ``bench/`` and
the ```` ```python ```` blocks of ``README.md`` and ``docs/*.md`` import, so none of them may import
a private module: one with a dotted component after ``jamjet_temporal`` that starts with ``_``
(``jamjet_temporal.audit._export``). Tests of internals (``tests/``) may.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE_FOLDERS = ("workflows", "activities", "starters", "bench")
PACKAGE = "jamjet_temporal"

_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def private_module(module: str) -> bool:
    """``jamjet_temporal.x._y`` (any component after the package starting with ``_``)."""
    parts = module.split(".")
    return parts[0] == PACKAGE and any(part.startswith("_") for part in parts[1:])


def private_imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) of every import of a private jamjet_temporal module in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if private_module(alias.name):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if private_module(node.module):
                yield node.lineno, node.module
            else:
                # `from jamjet_temporal.audit import _export` imports a private module too.
                for alias in node.names:
                    if alias.name != "*" and private_module(f"{node.module}.{alias.name}"):
                        yield node.lineno, f"{node.module}.{alias.name}"


def sources() -> Iterator[tuple[str, int, str]]:
    """(file relative to the root, line offset, Python source) of everything checked."""
    for folder in CODE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), 0, path.read_text()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for block in _FENCE.finditer(text):
            yield path.relative_to(ROOT).as_posix(), text.count("\n", 0, block.start(1)), block[1]


def violations() -> list[str]:
    """The offending ``file:line`` lines."""
    found: list[str] = []
    for name, offset, source in sources():
        try:
            tree = ast.parse(source, filename=name)
        except SyntaxError as exc:
            found.append(f"{name}:{offset + (exc.lineno or 0)}: not valid Python: {exc.msg}")
            continue
        for line, module in private_imports(tree):
            found.append(f"{name}:{offset + line}: imports private module {module}")
    return found


def test_examples_bench_and_docs_import_public_names_only() -> None:
    found = violations()
    assert not found, "import the public name instead (see each package's __init__):\n" + (
        "\n".join(found)
    )


def test_every_place_is_checked() -> None:
    names = {name for name, _, _ in sources()}
    for folder in CODE_FOLDERS:
        assert any(n.startswith(f"{folder}/") for n in names), f"no Python found in {folder}/"
    assert "README.md" in names and any(n.startswith("docs/") for n in names)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "from jamjet_temporal.audit._export import export_bundle",
            ["jamjet_temporal.audit._export"],
        ),
        ("import jamjet_temporal._shared._lazy as lazy", ["jamjet_temporal._shared._lazy"]),
        ("from jamjet_temporal.audit import _export", ["jamjet_temporal.audit._export"]),
        ("def f():\n    from jamjet_temporal.cli._app import main", ["jamjet_temporal.cli._app"]),
        ("from jamjet_temporal.audit import open_store, export", []),
        ("from jamjet_temporal import llm, task\nimport jamjet_temporal.budget", []),
        ("from other._private import x\nfrom . import _sibling", []),
    ],
)
def test_what_counts_as_private(source: str, expected: list[str]) -> None:
    assert [module for _, module in private_imports(ast.parse(source))] == expected
