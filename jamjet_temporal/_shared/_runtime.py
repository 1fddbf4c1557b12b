"""Runtime-internal activities: only the JamJet runtime schedules them (pure, workflow-safe).

The runtime's own bookkeeping (``jamjet.audit.record``, ``jamjet.budget.quote``,
``jamjet.engram.*``, ``jamjet.mcp.list_tools``) and every other name in the reserved ``jamjet.``
namespace, except the governed calls (the model call ``jamjet.llm.chat``, decided as a model
call, the MCP tool call ``jamjet.mcp.call_tool``, decided as the tool ``ALIAS.TOOL``, and the A2A
delegation ``jamjet.a2a.send``, decided as the tool ``a2a:ALIAS.SKILL``), run
only when the runtime itself scheduled them: it marks its calls with :func:`runtime_call`, the
gate refuses a reserved name scheduled without the mark (a pipeline's tool node, plain workflow
code) and puts the ``JamJetInternal`` header on those with it, and the activity side refuses a
reserved activity that arrives without that header.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from jamjet_temporal._shared._wire import (
    GOVERNED_ACTIVITIES,
    INTERNAL_HEADER,
    RESERVED_PREFIX,
    fold_name,
)

__all__ = ["INTERNAL_HEADER", "is_reserved", "runtime_call", "scheduled_by_runtime"]


_RUNTIME: ContextVar[bool] = ContextVar("jamjet_runtime_call", default=False)


def is_reserved(activity: str) -> bool:
    """Whether only the runtime may schedule ``activity`` (``jamjet.*`` but the governed calls:
    the model call, the MCP tool call and the A2A delegation)."""
    folded = fold_name(activity)
    return folded.startswith(RESERVED_PREFIX) and folded not in GOVERNED_ACTIVITIES


@contextlib.contextmanager
def runtime_call() -> Iterator[None]:
    """Marks the activities scheduled inside the block as the runtime's own."""
    token = _RUNTIME.set(True)
    try:
        yield
    finally:
        _RUNTIME.reset(token)


def scheduled_by_runtime() -> bool:
    """Whether the code running now is the runtime scheduling one of its own activities."""
    return _RUNTIME.get()
