"""Cost across the wire: the caller sets a slice of its run budget aside for a delegation, the
slice travels in the request's metadata, the served agent runs with it as its run budget (and
halts before crossing it), reports what it spent in the task's metadata, and the caller's
budget is charged with that; a delegation the budget cannot cover is refused before it is sent.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from a2a.types.a2a_pb2 import GetTaskRequest, SendMessageRequest, TaskState
from google.protobuf import json_format
from temporalio.client import Client
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin, run_budget
from jamjet_temporal._shared._wire import A2A_BUDGET_META, A2A_SPEND_META, BUDGET_QUERY
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.modelserver import ModelServer
from jamjet_temporal.plugin import AuditConfig, LLMConfig
from tests.a2a.a2a_workflows import BudgetedDelegate
from tests.a2a.served_workflows import spend
from tests.a2a.serving import Served, audit_events, message, plain_client, send, serving


@pytest.fixture
async def agent(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> AsyncIterator[Served]:
    """The served 'spend' workflow: it calls the (local) model, each call budgeted."""
    config = JamJetConfig(
        audit=AuditConfig(store=f"sqlite:///{tmp_path / 'callee.db'}"),
        llm=LLMConfig(base_url=model_server.base_url),
    )
    async with serving(
        temporal_server.address, [spend], [spend], tmp_path, config=config, allow_anonymous=True
    ) as served:
        yield served


Run = Callable[..., Any]


@pytest.fixture
async def delegate(
    temporal_server: DevServer, agent: Served, tmp_path: Path, task_queue: str
) -> AsyncIterator[Run]:
    """Runs BudgetedDelegate under a run budget of ``cap`` on a governed caller worker."""
    caller_audit = f"sqlite:///{tmp_path / 'caller.db'}"
    config = JamJetConfig(
        audit=AuditConfig(store=caller_audit), a2a_agents={"spender": {"url": agent.url}}
    )
    client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])

    async def run(cap: str, calls: int, max_cost: str | None) -> tuple[str, dict[str, Any]]:
        run_id = f"budgeted-{uuid.uuid4().hex[:8]}"
        with run_budget(max_cost=cap):
            result = await client.execute_workflow(
                BudgetedDelegate.run,
                args=["spender", "test-served.spend", calls, max_cost, None],
                id=run_id,
                task_queue=task_queue,
            )
        return run_id, result

    run.audit = caller_audit  # type: ignore[attr-defined]
    async with Worker(client, task_queue=task_queue, workflows=[BudgetedDelegate]):
        yield run


async def _remote_task(agent: Served, caller_audit: str, run_id: str) -> tuple[str, dict[str, Any]]:
    """The served task the caller's run delegated to, and the spend the caller recorded."""
    events = await audit_events(caller_audit, run_id)
    spent = next(e.data for e in events if e.kind == "a2a.spend")
    return str(spent["task_id"]), spent


async def test_the_slice_is_the_agents_budget_and_its_spend_is_charged_back(
    agent: Served, delegate: Run
) -> None:
    run_id, outcome = await delegate("0.05", 2, "0.01")
    assert outcome["error"] is None and outcome["result"] == 2
    task_id, recorded = await _remote_task(agent, delegate.audit, run_id)  # type: ignore[attr-defined]
    # The served run ran with the slice as its run budget, and says what it spent.
    handle = agent.client.get_workflow_handle(task_id)
    spent = await handle.query(BUDGET_QUERY)
    assert Decimal(spent["budget"]["max_cost"]) == Decimal("0.01")
    cost = Decimal(spent["spent_cost"])
    assert Decimal(0) < cost < Decimal("0.01")
    async with plain_client(agent.url, streaming=False) as client:
        task = await client.get_task(GetTaskRequest(id=task_id))
    report = json_format.MessageToDict(task.metadata)[A2A_SPEND_META]
    assert Decimal(report["cost"]) == cost and report["estimated"] is False
    # The caller's budget was charged exactly what the agent reported.
    assert Decimal(recorded["cost"]) == cost and recorded["charged"] is True
    assert Decimal(outcome["left"]["max_cost"]) == Decimal("0.05") - cost
    # The slice the caller set aside is recorded too.
    decisions = [
        e.data
        for e in await audit_events(delegate.audit, run_id)  # type: ignore[attr-defined]
        if e.kind == "budget.decision"
    ]
    assert [(d["decision"], d["slice"]["max_cost"]) for d in decisions] == [("ALLOWED", "0.01")]


async def test_the_agent_halts_before_crossing_the_slice_and_the_caller_is_charged(
    agent: Served, delegate: Run
) -> None:
    # A slice too small for even one model call (its worst case is about $0.00013).
    run_id, outcome = await delegate("0.05", 2, "0.0001")
    assert outcome["error"]["type"] == "DelegationError"
    assert "ended failed" in outcome["error"]["message"]
    assert "BudgetExceededError" in outcome["error"]["message"]
    assert "over budget" in outcome["error"]["message"]
    task_id, recorded = await _remote_task(agent, delegate.audit, run_id)  # type: ignore[attr-defined]
    assert Decimal(recorded["cost"]) == 0
    assert Decimal(outcome["left"]["max_cost"]) == Decimal("0.05")
    described = await agent.client.get_workflow_handle(task_id).describe()
    assert described.status.name == "FAILED"


async def test_a_delegation_the_budget_cannot_cover_is_refused_before_it_is_sent(
    agent: Served, delegate: Run
) -> None:
    run_id, outcome = await delegate("0.005", 1, "0.01")
    assert outcome["error"]["type"] == "BudgetExceededError"
    assert "refused before it was sent" in outcome["error"]["message"]
    assert "needs $0.01, the run has $0.005 left" in outcome["error"]["message"]
    assert Decimal(outcome["left"]["max_cost"]) == Decimal("0.005")
    events = await audit_events(delegate.audit, run_id)  # type: ignore[attr-defined]
    assert [e.data["decision"] for e in events if e.kind == "budget.decision"] == ["HALT"]
    assert not [e for e in events if e.kind == "a2a.spend"]
    # Nothing reached the agent.
    sent = [e for e in await agent.events() if e.kind == "a2a.identity"]
    assert sent == []


async def test_a_plain_client_can_send_a_budget_and_read_the_spend(agent: Served) -> None:
    """The metadata is plain JSON: any A2A client can give a slice and read the spend."""
    request = SendMessageRequest(message=message(1))
    request.metadata.update({A2A_BUDGET_META: {"max_cost": "0.001"}})
    async with plain_client(agent.url, streaming=False) as client:
        events = await send(client, request)
    task = events[-1].task
    assert TaskState.Name(task.status.state) == "TASK_STATE_COMPLETED"
    report = json_format.MessageToDict(task.metadata)[A2A_SPEND_META]
    assert report["budget"] == {"max_cost": "0.001", "max_tokens": None}
    assert Decimal(0) < Decimal(report["cost"]) <= Decimal("0.001")
