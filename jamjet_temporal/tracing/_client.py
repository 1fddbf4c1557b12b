"""A run's trace id, read back from its history (client side; no OpenTelemetry needed)."""

from __future__ import annotations

import re
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.converter import PayloadConverter

#: The header in which Temporal's OpenTelemetry interceptor carries the W3C trace context.
TRACE_HEADER = "_tracer-data"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


async def run_trace_id(handle: WorkflowHandle[Any, Any]) -> str | None:
    """The trace id of a run: the 32 hex digits of the trace its start was part of.

    Read from the run's first history event, where Temporal's OpenTelemetry interceptor put
    the trace context it started the run in; the same on every client and for the whole run.

    Args:
        handle: The run (from ``start_workflow`` or ``get_workflow_handle``).

    Returns:
        The trace id, or None when the run was started without tracing.
    """
    async for event in handle.fetch_history_events(page_size=1):
        if not event.HasField("workflow_execution_started_event_attributes"):
            return None
        fields = event.workflow_execution_started_event_attributes.header.fields
        if TRACE_HEADER not in fields:
            return None
        carrier = PayloadConverter.default.from_payloads([fields[TRACE_HEADER]])[0]
        parent = carrier.get("traceparent") if isinstance(carrier, dict) else None
        found = _TRACEPARENT.match(parent) if isinstance(parent, str) else None
        return found.group(1) if found else None
    return None
