"""Reading a run's history for the failure of a workflow task (Temporal retries such tasks)."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import WorkflowHandle


async def first_task_failure(handle: WorkflowHandle[Any, Any], *, tries: int = 200) -> str:
    """The message of the run's first failed workflow task, polled every 0.1 s ("" if none
    appeared within ``tries`` polls)."""
    for _ in range(tries):
        async for event in handle.fetch_history_events():
            if event.HasField("workflow_task_failed_event_attributes"):
                return event.workflow_task_failed_event_attributes.failure.message
        await asyncio.sleep(0.1)
    return ""
