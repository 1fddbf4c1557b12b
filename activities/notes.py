"""The team's notes, as the policy-gate example's tools (used by ``workflows/policy_gate.py``).

``search`` and ``read_files`` are on the assistant's allow-list; ``delete_database`` is
registered on the worker too, but no agent there may call it.
"""

from __future__ import annotations

from jamjet_temporal import task

DOCS = {
    "notes/release.md": "v2.3 ships the policy violations panel.",
    "notes/oncall.md": "Page the database team for schema changes.",
}


@task
async def search(query: str) -> list[str]:
    """Search the team's notes; returns matching file paths."""
    words = set(query.lower().split())
    return [path for path, text in DOCS.items() if words & set(text.lower().split())]


@task
async def read_files(paths: list[str]) -> dict[str, str]:
    """Read notes by path."""
    return {path: DOCS.get(path, "") for path in paths}


@task
async def delete_database(name: str) -> str:
    """Drop a database. Registered on the worker, but no agent here may use it."""
    raise RuntimeError(f"delete_database({name!r}) must never run")
