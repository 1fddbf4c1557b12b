"""Pre-call stages: a governed call that must wait for something before it is scheduled.

Runs inside the workflow sandbox. ``start_activity`` and ``start_local_activity`` are
synchronous and return the activity's handle at once, but some calls cannot be scheduled at
once: the run's gate does not exist yet (an update or signal handler delivered with the run's
first task runs before the run's code), a person must approve the call, a budget must quote it
or be free, or a refusal must be recorded before it is raised. :func:`after_precall` turns
"wait for that, then schedule the call and await it" into the handle the caller gets: awaiting
it gives the call's result (or the refusal), cancelling it cancels the wait or the call.

The handle is one task running the stage and the call, created where the caller asked for the
call, so the run's commands come in the same order as when the gate made these tasks itself
(recorded histories replay). A second, registered task only ties the handle to the run: when
the worker evicts the run, Temporal cancels the run's tasks, that one cancels the handle, and
no half-done stage outlives its run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from temporalio import workflow

__all__ = ["after_precall"]

_T = TypeVar("_T")


def after_precall(
    call: str, stage: str, body: Coroutine[Any, Any, _T]
) -> workflow.ActivityHandle[_T]:
    """The handle of a call that is scheduled once a pre-call stage is done.

    Args:
        call: The call's name (activity, tool), for the task's name.
        stage: What it waits for (``approval``, ``budget``, ``gate``, ``refusal``).
        body: Waits for the stage, then schedules the call and returns its result (or raises
            the refusal).

    Returns:
        An activity handle: await it for the result, cancel it to cancel the call.
    """
    handle = workflow.ActivityHandle[_T](body, name=f"jamjet {stage}, then {call}")
    asyncio.get_running_loop().create_task(_tied(handle), name=f"jamjet run tie: {call}")
    return handle


async def _tied(handle: asyncio.Task[Any]) -> None:
    # A registered task of the run (Temporal cancels those on eviction), so the handle is
    # cancelled with the run. The outcome is the caller's: retrieved here, not reported twice.
    with contextlib.suppress(BaseException):
        await handle
