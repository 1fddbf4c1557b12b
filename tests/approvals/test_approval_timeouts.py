"""Approval timeouts on a durable timer, with the dev server skipping time (no real waiting)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import temporalio.client
from temporalio.api.common.v1 import TimeSkippingConfig
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin, acting_as
from jamjet_temporal.audit import open_store
from jamjet_temporal.cli._devserver import DevServer, free_port
from jamjet_temporal.plugin import AuditConfig
from tests.approvals.approval_workflows import guarded
from tests.approvals.conftest import Approvals
from tests.identities import PORTAL


class _SkipTime(temporalio.client.Interceptor):
    """Starts every workflow with time skipping on: idle timers fire at once, virtually."""

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return _SkipTimeOutbound(next)


class _SkipTimeOutbound(temporalio.client.OutboundInterceptor):
    async def start_workflow(self, input: temporalio.client.StartWorkflowInput) -> Any:
        input.time_skipping_config = TimeSkippingConfig(enabled=True)
        return await super().start_workflow(input)


@pytest.fixture(scope="module")
async def skipping(approvals: Approvals) -> AsyncIterator[Client]:
    server = DevServer(
        port=free_port(),
        extra_args=("--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true"),
    )
    await server.astart()
    try:
        config = JamJetConfig(
            approvals=approvals.config, audit=AuditConfig(store=approvals.audit_url)
        )
        yield await Client.connect(
            server.address, plugins=[JamJetPlugin(config)], interceptors=[_SkipTime()]
        )
    finally:
        await server.astop()


async def run_guarded(client: Client, action: str) -> tuple[str, BaseException]:
    queue = f"ts-{uuid.uuid4().hex[:6]}"
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[guarded]):
        with pytest.raises(WorkflowFailureError) as info, acting_as("u@example.com", signer=PORTAL):
            await client.execute_workflow(
                guarded.run, args=[action, 10.0], id=run_id, task_queue=queue
            )
    assert info.value.cause is not None
    return run_id, info.value.cause


async def kinds(approvals: Approvals, run_id: str) -> list[str]:
    store = open_store(approvals.audit_url)
    try:
        return [s.event.kind for s in await store.events(run_id)]
    finally:
        await store.close()


async def test_timeout_rejects_fail_closed(skipping: Client, approvals: Approvals) -> None:
    run_id, cause = await run_guarded(skipping, "quick_refund")
    assert isinstance(cause, ApplicationError) and cause.type == "ApprovalTimeoutError"
    assert "3600 s" in cause.message and "primary" in cause.message
    assert await kinds(approvals, run_id) == [
        "approval.requested",
        "approval.timeout",
        "run.closed",
    ]


async def test_timeout_escalates_then_rejects(skipping: Client, approvals: Approvals) -> None:
    run_id, cause = await run_guarded(skipping, "escalating_refund")
    assert isinstance(cause, ApplicationError) and cause.type == "ApprovalTimeoutError"
    assert "7200 s" in cause.message and "escalated" in cause.message
    assert await kinds(approvals, run_id) == [
        "approval.requested",
        "approval.escalated",
        "approval.timeout",
        "run.closed",
    ]


async def test_reminders_are_recorded_while_waiting(skipping: Client, approvals: Approvals) -> None:
    run_id, cause = await run_guarded(skipping, "remind_refund")
    assert isinstance(cause, ApplicationError) and cause.type == "ApprovalTimeoutError"
    assert await kinds(approvals, run_id) == [
        "approval.requested",
        "approval.reminder",
        "approval.reminder",
        "approval.timeout",
        "run.closed",
    ]
