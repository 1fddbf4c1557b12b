"""Workflows for the A2A tests (a module of their own: the sandbox re-imports it).

Plain ``@workflow.defn`` classes: delegations are governed for any workflow on a worker with
``JamJetPlugin``, not only for ``jamjet_temporal.workflow`` ones.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from jamjet_temporal import a2a
from jamjet_temporal.budget._workflow import remaining_budget

ONCE = RetryPolicy(maximum_attempts=1)
#: Retries that come quickly, for the tests where a worker dies.
QUICK = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)


@workflow.defn(name="test-a2a.delegate")
class Delegate:
    """One delegation; its failure left to fail the run.

    ``options``: ``once`` (no retry), ``heartbeat`` (seconds), ``activity_id``, ``quick``
    (quick retries).
    """

    @workflow.run
    async def run(
        self,
        target: str,
        skill: str | None,
        input: Any,
        agents: dict[str, Any] | None,
        options: dict[str, Any],
    ) -> Any:
        extra: dict[str, Any] = {"summary": f"{target}.{skill}"}
        if options.get("once"):
            extra["retry_policy"] = ONCE
        if options.get("quick"):
            extra["retry_policy"] = QUICK
        if options.get("heartbeat"):
            extra["heartbeat_timeout"] = timedelta(seconds=options["heartbeat"])
        if options.get("activity_id"):
            extra["activity_id"] = options["activity_id"]
        return await a2a.delegate(target, skill=skill, input=input, agents=agents, **extra)


@workflow.defn(name="test-a2a.raw")
class Raw:
    """Plain workflow code scheduling an activity by name, with whatever argument it likes."""

    @workflow.run
    async def run(self, activity: str, argument: Any, queue: str | None) -> Any:
        return await workflow.execute_activity(
            activity,
            argument,
            task_queue=queue,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=ONCE,
        )


@workflow.defn(name="test-a2a.budgeted")
class BudgetedDelegate:
    """One delegation with a budget slice; returns its result or error and what is left of the
    run's budget afterwards (started under ``run_budget``)."""

    @workflow.run
    async def run(
        self,
        target: str,
        skill: str | None,
        input: Any,
        max_cost: str | None,
        max_tokens: int | None,
    ) -> dict[str, Any]:
        result: Any = None
        error: dict[str, Any] | None = None
        try:
            result = await a2a.delegate(
                target,
                skill=skill,
                input=input,
                max_cost=max_cost,
                max_tokens=max_tokens,
                retry_policy=ONCE,
            )
        except ActivityError as err:
            cause = err.cause
            assert isinstance(cause, ApplicationError)
            error = {"type": cause.type, "message": cause.message}
        left = remaining_budget()
        return {
            "result": result,
            "error": error,
            "left": None if left is None else left.model_dump(mode="json"),
        }
