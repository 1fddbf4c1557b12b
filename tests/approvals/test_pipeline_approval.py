"""A pipeline's ``human_approval`` node: a signed approval through the approvals feature,
routed on the decision, surviving a worker restart while it waits."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from jamjet_temporal import acting_as, task
from jamjet_temporal.approvals import find_pending, sign, submit
from jamjet_temporal.approvals._workflow import PendingApproval
from jamjet_temporal.pipeline import PIPELINE_WORKFLOW, PipelineResult, PipelineRun
from jamjet_temporal.pipeline._spec import parse_pipeline
from jamjet_temporal.pipeline._workflow import ToolSignature
from tests.approvals.conftest import Approvals
from tests.identities import PORTAL

RELEASED: list[str] = []


@task(name="pipe.release")
async def release(what: str) -> str:
    RELEASED.append(what)
    return f"released {what}"


PIPELINE = """
workflow: {id: gated, start: ask}
nodes:
  ask:
    type: human_approval
    action: bank.release
    description: "Release {{ state.what }}?"
    arguments: {what: "{{ state.what }}", amount: "{{ state.amount }}"}
    timeout: 1h
    on_reject: refused
    fallback: expired
    output_key: decision
    next: go
  go: {type: tool, tool: pipe.release, arguments: {what: "{{ state.what }}"}, output_key: out}
  refused: {type: end, output: decision}
  expired: {type: end, output: decision}
"""


async def start(client: Client, queue: str, what: str) -> Any:
    spec = parse_pipeline(PIPELINE, "gated.yaml")
    # Four-eyes needs the run's proven user (the requester, who may not approve).
    with acting_as("requester@example.com", signer=PORTAL):
        return await client.start_workflow(
            PIPELINE_WORKFLOW,
            PipelineRun(
                spec=spec,
                input={"what": what, "amount": 1200},
                tool_params={"pipe.release": ToolSignature(params=["what"], required=1)},
            ),
            id=f"gated-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
            result_type=PipelineResult,
        )


async def pending(client: Client, run_id: str) -> PendingApproval:
    for _ in range(100):
        try:
            return await find_pending(client, run_id, None)
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{run_id} never asked for approval")


async def test_approved_after_a_worker_restart_runs_the_next_node_once(
    approval_client: Client, task_queue: str, approvals: Approvals
) -> None:
    what = uuid.uuid4().hex[:6]
    async with Worker(approval_client, task_queue=task_queue, activities=[release]):
        handle = await start(approval_client, task_queue, what)
        request = await pending(approval_client, handle.id)
    assert request.action == "bank.release"
    assert request.args == {"description": f"Release {what}?", "what": what, "amount": 1200}
    async with Worker(approval_client, task_queue=task_queue, activities=[release]):
        done = await submit(
            approval_client, sign(approvals.who["alice"], request, "approved", "ok")
        )
        assert done.accepted and done.complete
        result: PipelineResult = await handle.result()
    assert result.state["out"] == f"released {what}"
    assert result.state["decision"]["approved_by"] == ["alice@example.com"]  # type: ignore[index]
    assert RELEASED.count(what) == 1


async def test_rejected_routes_to_on_reject_and_nothing_is_released(
    approval_client: Client, task_queue: str, approvals: Approvals
) -> None:
    what = uuid.uuid4().hex[:6]
    async with Worker(approval_client, task_queue=task_queue, activities=[release]):
        handle = await start(approval_client, task_queue, what)
        request = await pending(approval_client, handle.id)
        await submit(approval_client, sign(approvals.who["alice"], request, "rejected", "no"))
        result: PipelineResult = await handle.result()
    assert result.output == {"approved": False, "reason": "rejected by alice@example.com: no"}
    assert [r.node for r in result.nodes] == ["ask", "refused"]
    assert result.nodes[0].outcome == "rejected"
    assert what not in RELEASED


async def test_a_forged_decision_does_not_release(
    approval_client: Client, task_queue: str, approvals: Approvals
) -> None:
    what = uuid.uuid4().hex[:6]
    async with Worker(approval_client, task_queue=task_queue, activities=[release]):
        handle = await start(approval_client, task_queue, what)
        request = await pending(approval_client, handle.id)
        # mallory's key is not an approver's: the decision is refused and the run keeps waiting.
        forged = sign(approvals.who["mallory"], request, "approved", "trust me")
        answer = await submit(approval_client, forged)
        assert not answer.accepted
        assert (await find_pending(approval_client, handle.id, None)).approval_id == (
            request.approval_id
        )
        await handle.terminate("test over")
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert what not in RELEASED


async def test_no_approvals_config_fails_closed(client: Client, task_queue: str) -> None:
    # The session client's config has no rule for bank.release: rejected at once, and with no
    # on_reject the run fails rather than release.
    text = PIPELINE.replace("    on_reject: refused\n", "").replace(
        "  refused: {type: end, output: decision}\n", ""
    )
    spec = parse_pipeline(text, "gated.yaml")
    async with Worker(client, task_queue=task_queue, activities=[release]):
        with pytest.raises(WorkflowFailureError) as info:
            await client.execute_workflow(
                PIPELINE_WORKFLOW,
                PipelineRun(spec=spec, input={"what": "x", "amount": 1}, tool_params={}),
                id=f"gated-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ApprovalRejectedError"
