"""Calls that wait before they are scheduled (the gate's pre-call stages), on the real dev server.

A call waits when the run's gate does not exist yet (a handler that came with the run's start),
for a budget, for an approval, or to record its refusal. The caller still gets an activity
handle, the call is still decided by the policy, and the workers here keep no run in their
cache (every task replays the run from its history, and every run is evicted between tasks).
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from temporalio import workflow
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin, run_budget
from jamjet_temporal.audit import open_store
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.plugin import AuditConfig
from jamjet_temporal.policy import Policy
from tests.plain_temporal_samples import (
    ComposeGreetingInput,
    FirstTaskHandlersWorkflow,
    compose_greeting,
    compose_greeting_sync,
    never_complete,
)


@workflow.defn(name="test-precall.handles")
class WaitingHandles:
    """Under a budget every call waits for its turn with the budget before it is scheduled."""

    @workflow.run
    async def run(self) -> list[object]:
        first = workflow.start_activity(
            compose_greeting,
            ComposeGreetingInput("Hello", "Ann"),
            start_to_close_timeout=timedelta(seconds=10),
        )
        slow = workflow.start_activity(
            never_complete,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=2),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        seen: list[object] = [
            isinstance(first, workflow.ActivityHandle),
            isinstance(slow, workflow.ActivityHandle),
            await first,
        ]
        await workflow.sleep(timedelta(seconds=1))
        slow.cancel()
        try:
            await slow
        except ActivityError as err:
            seen.append(type(err.cause).__name__)
        return seen


async def _decisions(url: str, run_id: str) -> list[tuple[str, object, object]]:
    store = open_store(url)
    try:
        return [
            (s.event.kind, s.event.data.get("subject"), s.event.data.get("decision"))
            for s in await store.events(run_id)
            if s.event.kind == "policy.decision"
        ]
    finally:
        await store.close()


async def test_a_call_from_a_handler_that_came_with_the_start_is_decided(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    """The handler runs before the run's code has made its gate: its calls wait for the gate
    and are decided like any other (not scheduled undecided, nor let through)."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    policy = Policy(blocked_tools=("compose_greeting",))
    plugin = JamJetPlugin(JamJetConfig(audit=AuditConfig(store=url), policy=policy))
    client = await Client.connect(temporal_server.address, plugins=[plugin])
    queue, run_id = f"precall-{uuid.uuid4().hex[:8]}", f"precall-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[FirstTaskHandlersWorkflow],
        activities=[compose_greeting, compose_greeting_sync],
        activity_executor=ThreadPoolExecutor(2),
        max_cached_workflows=0,
    ):
        start = WithStartWorkflowOperation(
            FirstTaskHandlersWorkflow.run,
            id=run_id,
            task_queue=queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        try:
            await client.execute_update_with_start_workflow(
                FirstTaskHandlersWorkflow.greet_now, "Bo", start_workflow_operation=start
            )
        except WorkflowUpdateFailedError as err:
            refusal = err.cause
        handle = await start.workflow_handle()
        await handle.signal(FirstTaskHandlersWorkflow.finish)
        assert await handle.result() == []
    assert isinstance(refusal, ApplicationError) and refusal.type == "ToolDeniedError"
    assert await _decisions(url, run_id) == [("policy.decision", "compose_greeting", "BLOCKED")]


async def test_a_waiting_call_is_an_activity_handle_that_cancels(
    client: Client, audit_url: str, task_queue: str
) -> None:
    run_id = f"precall-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[WaitingHandles],
        activities=[compose_greeting, never_complete],
        max_cached_workflows=0,
    ):
        with run_budget(max_cost=1):
            result = await client.execute_workflow(
                WaitingHandles.run, id=run_id, task_queue=task_queue
            )
    assert result == [True, True, "Hello, Ann!", "CancelledError"]
    assert await _decisions(audit_url, run_id) == [
        ("policy.decision", "compose_greeting", "ALLOWED"),
        ("policy.decision", "never_complete", "ALLOWED"),
    ]
