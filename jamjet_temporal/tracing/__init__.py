"""OpenTelemetry traces and metrics for governed runs (docs/observability.md).

``JamJetConfig(tracing=TracingConfig())`` adds Temporal's OpenTelemetry interceptor and ours:
one trace runs from the client's start through the workflow to every activity attempt on any
worker, with GenAI spans (``chat {model}``, ``execute_tool {name}``, ``invoke_agent {name}``),
gate decisions and budget halts as span events, approval waits and Engram context as spans,
and the GenAI metrics. ``run_trace_id(handle)`` is a run's trace id. Off costs nothing: the
OpenTelemetry side (the ``[otel]`` extra) is imported only by a plugin with tracing on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal.errors import TracingConfigError
    from jamjet_temporal.tracing._client import run_trace_id
    from jamjet_temporal.tracing._config import TracingConfig

__all__ = ["TracingConfig", "TracingConfigError", "run_trace_id"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "jamjet_temporal.errors": ["TracingConfigError"],
        "._client": ["run_trace_id"],
        "._config": ["TracingConfig"],
    },
)
