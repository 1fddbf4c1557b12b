"""``jamjet init``: a runnable starter project from one of JamJet's template kinds.

Each template is a folder under ``jamjet_temporal/cli/templates/``: a ``workflow.yaml`` written
the way JamJet's ``jamjet init`` writes it, the tools it calls (``tools.py``), a policy, a
test, and where a template needs one, a local MCP or A2A server. ``__PROJECT__`` in a file is
replaced by the project's name. The files are copied as they are otherwise; nothing downloads.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated

import typer

from jamjet_temporal.cli._format import fail, say

DEFAULT_TEMPLATE = "hello-agent"
_PLACEHOLDER = "__PROJECT__"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_LEFTOVERS = frozenset({"__pycache__", "reviews"})


def templates() -> dict[str, Traversable]:
    """The templates by name."""
    root = resources.files("jamjet_temporal.cli") / "templates"
    return {
        entry.name: entry
        for entry in sorted(root.iterdir(), key=lambda e: e.name)
        if entry.is_dir() and (entry / "workflow.yaml").is_file()
    }


def describe(template: Traversable) -> str:
    """A template's one-line description: the first comment line of its workflow.yaml."""
    for line in (template / "workflow.yaml").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def init(
    directory: Annotated[
        Path | None, typer.Argument(help="Project folder to create (default: the current one).")
    ] = None,
    template: Annotated[
        str, typer.Option("--template", "-t", help="Template name (see --list).")
    ] = DEFAULT_TEMPLATE,
    list_templates: Annotated[
        bool, typer.Option("--list", "--list-templates", help="List the templates.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a folder that already has files.")
    ] = False,
) -> None:
    """Create a runnable starter project: pipeline, tools, policy and a test."""
    found = templates()
    if list_templates:
        width = max(len(name) for name in found)
        for name, entry in found.items():
            say(f"{name:<{width}}  {describe(entry)}")
        raise typer.Exit(0)
    if template not in found:
        raise fail(f"unknown template '{template}'; templates: {', '.join(found)}")
    target = directory or Path.cwd()
    project = target.resolve().name
    if not _NAME_RE.match(project):
        project = re.sub(r"[^A-Za-z0-9_.-]+", "-", project).strip("-") or "my-agent"
    written: list[Path] = []
    plan = list(_files(found[template], Path()))
    clashes = [rel for rel, _ in plan if (target / rel).exists()]
    if clashes and not force:
        shown = ", ".join(str(rel) for rel in clashes[:5])
        raise fail(f"{target} already has {shown}; choose an empty folder or pass --force")
    for rel, entry in plan:
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = entry.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            path.write_bytes(data)
        else:
            path.write_text(text.replace(_PLACEHOLDER, project), encoding="utf-8")
        written.append(rel)
    say(f"▸ Created {template} in {target} ({len(written)} files: {', '.join(map(str, written))})")
    here = "" if directory is None else f"cd {directory} && "
    say(f"▸ Run it:   {here}jamjet run workflow.yaml")
    say(f"▸ Check it: {here}jamjet validate workflow.yaml && python -m pytest -q")
    raise typer.Exit(0)


def _files(entry: Traversable, rel: Path) -> list[tuple[Path, Traversable]]:
    found: list[tuple[Path, Traversable]] = []
    for child in sorted(entry.iterdir(), key=lambda e: e.name):
        # What running a template's own test leaves behind is not part of it.
        if child.name.startswith(".") or child.name in _LEFTOVERS or child.name.endswith(".pyc"):
            continue
        if child.is_dir():
            found.extend(_files(child, rel / child.name))
        else:
            found.append((rel / child.name, child))
    return found
