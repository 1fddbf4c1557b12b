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

__all__ = [
    "INTERNAL_HEADER",
    "is_reserved",
    "mark_plugin_built",
    "require_plugin",
    "runtime_call",
    "scheduled_by_runtime",
]

#: Whether a JamJetPlugin was built in this process. Workflows of the plugin's workers see this
#: module as the worker imported it (the plugin's sandbox passes jamjet_temporal through), so
#: True; a worker without the plugin re-imports it for every run, so its workflows see False.
_PLUGIN_BUILT = False


def mark_plugin_built() -> None:
    """Called by ``JamJetPlugin()``."""
    global _PLUGIN_BUILT
    _PLUGIN_BUILT = True


def require_plugin(what: str, why: str) -> None:
    """In workflow code on a worker without JamJetPlugin, say so instead of failing obscurely.

    Raises:
        ConfigError: ``what`` runs where only the plugin can serve it. Without the plugin our
            errors are not workflow failure types: the workflow task fails with this message
            (Temporal's UI shows it) and is retried until a worker with the plugin takes it.
    """
    from temporalio import workflow

    from jamjet_temporal.errors import ConfigError

    if workflow.in_workflow() and not _PLUGIN_BUILT:
        raise ConfigError(
            f"{what} needs JamJetPlugin on the worker running this workflow: {why}; add "
            "plugins=[JamJetPlugin(...)] to the Worker (or to the Client it is built on)"
        )


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
