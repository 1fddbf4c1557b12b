"""Tools for ``workflows/research-pipeline.yaml`` (``jamjet run`` finds them through the
``workflows/tools.py`` beside the YAML, which re-exports this module)."""

from __future__ import annotations

from jamjet_temporal import task

_NOTES = [
    "Durable execution records every step in an event history, so a crashed run resumes "
    "from the last completed step instead of starting over.",
    "Temporal activities are retried at least once; side effects need an idempotency key.",
    "Heartbeats let the server notice a dead worker quickly and hand the task to another one.",
    "Agent loops that resend the whole conversation grow history quadratically.",
    "Human approvals are signals or updates that a durable workflow waits for.",
    "Cost caps must be enforced before a model call, from a projection, not after the spend.",
]


@task
async def search(query: str, limit: int = 3) -> list[str]:
    """Rank local notes by words shared with the query (deterministic, offline)."""
    words = {w.lower().strip(".,") for w in query.split()}
    scored = sorted(
        _NOTES, key=lambda note: -len(words & {w.lower().strip(".,;") for w in note.split()})
    )
    return scored[:limit]
