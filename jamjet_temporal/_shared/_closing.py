"""Handing a run's ``run.closed`` event from workflow code to the worker completing the run.

Workflow-side and pure: no I/O. A run's trail ends with ``run.closed``, which must be durable
before Temporal learns the run is over. Recording it with a local activity costs a second
workflow activation per run (the activity's result comes back in one). Instead, the
workflow's last activation hands the event over here, and the worker's runner
(``plugin._closing``) appends it to the audit store after the activation and before the
activation's completion reaches Temporal; when the append fails, the completion is replaced
by a workflow task failure, so Temporal retries the task and the event is handed over again.

The hand-over is a thread-local: an activation runs on one thread from start to end, and the
runner arms it (``activation``) around each activation it runs. Workflow code running on a
worker without the runner (a sandbox-free workflow, a runner of someone else's) sees it
unarmed and records with the local activity.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jamjet_temporal.audit._types import AuditEvent

__all__ = ["activation", "armed", "hand_over"]

_LOCAL = threading.local()


def armed() -> bool:
    """Whether the activation running now is run by a runner that records handed-over events."""
    return getattr(_LOCAL, "events", None) is not None


def hand_over(event: AuditEvent) -> None:
    """Give ``event`` to the runner: it is appended before this activation's completion goes.

    Raises:
        RuntimeError: No runner armed this activation (check ``armed`` first).
    """
    events: list[AuditEvent] | None = getattr(_LOCAL, "events", None)
    if events is None:
        raise RuntimeError("run.closed handed over outside an armed activation")
    events.append(event)


@contextlib.contextmanager
def activation() -> Iterator[list[AuditEvent]]:
    """Arm this thread for one activation; yields the events workflow code hands over."""
    events: list[AuditEvent] = []
    previous = getattr(_LOCAL, "events", None)
    _LOCAL.events = events
    try:
        yield events
    finally:
        _LOCAL.events = previous
