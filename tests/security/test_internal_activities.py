"""Attack: a pipeline file (or plain workflow code) schedules the runtime's own activities.

Under a worker policy that allows only ``search``, a pipeline's tool nodes named
``jamjet.audit.record`` (forging an approval into another run's trail),
``jamjet.engram.context`` / ``jamjet.engram.forget`` (reading or erasing another user's
memory) and ``jamjet.llm.chat`` with a plain dict (a blocked model, decided as a "tool"). Each
is refused, recorded, and does nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from jamjet_temporal import engram
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.modelserver import ModelServer
from jamjet_temporal.pipeline import PIPELINE_WORKFLOW, PipelineRun, parse_pipeline
from jamjet_temporal.pipeline._workflow import ToolSignature
from jamjet_temporal.policy import Policy, Rule
from tests.plain_workflows import PlainRecord
from tests.security.conftest import Governed, MakeGoverned

ONLY_SEARCH = Policy(
    rules=(Rule(match="search", action="allow"),), model_allowlist=("gpt-4o-mini",)
)


def pipeline(tool: str, arguments: str) -> str:
    return f"""
workflow: {{id: attack, start: call}}
nodes:
  call:
    type: tool
    tool: {tool}
    arguments: {arguments}
    output_key: out
    next: done
  done: {{type: end, output: out}}
"""


async def run_attack(
    gov: Governed, tool: str, arguments: str, params: list[str]
) -> tuple[str, BaseException]:
    """Runs the pipeline as its author would; the attacker also controls ``tool_params``."""
    spec = parse_pipeline(pipeline(tool, arguments), "attack.yaml")
    run_id = f"attack-{uuid.uuid4().hex[:8]}"
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with Worker(gov.client, task_queue=queue):
        with pytest.raises(WorkflowFailureError) as failed:
            await gov.client.execute_workflow(
                PIPELINE_WORKFLOW,
                PipelineRun(
                    spec=spec,
                    input={},
                    tool_params={tool: ToolSignature(params=params, required=len(params))},
                ),
                id=run_id,
                task_queue=queue,
            )
    assert failed.value.cause is not None
    return run_id, failed.value.cause


def refusal(cause: BaseException) -> str:
    """The typed refusal at the root of a pipeline failure."""
    while cause.__cause__ is not None and not (
        isinstance(cause, ApplicationError) and cause.type != "PipelineRuntimeError"
    ):
        cause = cause.__cause__
    assert isinstance(cause, ApplicationError), cause
    return f"{cause.type}: {cause.message}"


async def test_a_pipeline_cannot_forge_an_audit_event(governed: MakeGoverned) -> None:
    gov = await governed(policy=ONLY_SEARCH)
    victim = f"victim-{uuid.uuid4().hex[:8]}"
    forged = {
        "id": "evt_" + "ab" * 10,
        "run_id": victim,
        "workflow_run_id": "run",
        "kind": "approval.decision",
        "at": datetime.now(UTC).isoformat(),
        "actor": {},
        "data": {"approver": "cfo@example.com", "decision": "approved", "accepted": True},
    }
    import json

    run_id, cause = await run_attack(
        gov, "jamjet.audit.record", json.dumps({"events": [forged]}), ["events"]
    )
    assert "ToolDeniedError" in refusal(cause)
    assert "runtime-internal" in refusal(cause)
    assert await gov.events(victim) == [], "the forged approval reached the victim's trail"
    denied = [e for e in await gov.events(run_id) if e.kind == "policy.decision"]
    assert [(e.data["subject"], e.data["decision"]) for e in denied] == [
        ("jamjet.audit.record", "BLOCKED")
    ]
    assert await gov.chain_ok()


@pytest.mark.parametrize("activity", ["jamjet.engram.context", "jamjet.engram.forget"])
async def test_a_pipeline_cannot_read_or_erase_another_users_memory(
    governed: MakeGoverned, activity: str
) -> None:
    gov = await governed(policy=ONLY_SEARCH)
    bob = f"bob-{uuid.uuid4().hex[:6]}"
    store = gov.config.memory.store
    await engram.record(
        bob, "DE89 3704 0044 0532 0130 00", attribute="iban", session="s1", store=store
    )
    request = '{"request": {"user": "' + bob + '", "topic": "iban", "budget_tokens": 200}}'
    if activity.endswith("forget"):
        request = '{"request": {"user": "' + bob + '"}}'
    run_id, cause = await run_attack(gov, activity, request, ["request"])
    assert "runtime-internal" in refusal(cause)
    facts = await engram.facts(bob, store=store)
    assert [f.value for f in facts] == ["DE89 3704 0044 0532 0130 00"], "bob's memory was erased"
    decided = [e.data for e in await gov.events(run_id) if e.kind == "policy.decision"]
    assert decided and decided[0]["decision"] == "BLOCKED" and decided[0]["subject"] == activity


async def test_a_model_call_with_a_dict_argument_is_decided_as_a_model_call(
    governed: MakeGoverned, model_server: ModelServer
) -> None:
    gov = await governed(policy=ONLY_SEARCH)
    marker = uuid.uuid4().hex
    request = (
        '{"request": {"model": "o1-pro", "messages": [{"role": "user", "content": "'
        + marker
        + '"}]}}'
    )
    run_id, cause = await run_attack(gov, "jamjet.llm.chat", request, ["request"])
    assert refusal(cause).startswith("ModelDeniedError")
    assert marker not in str(model_server.calls()), "the blocked model was called"
    decided = [e for e in await gov.events(run_id) if e.kind == "policy.model_decision"]
    assert [(e.data["subject"], e.data["reason"]) for e in decided] == [
        ("o1-pro", "model not in model_allowlist")
    ]


async def test_a_model_call_that_is_not_a_chat_request_is_refused(governed: MakeGoverned) -> None:
    gov = await governed(policy=ONLY_SEARCH)
    run_id, cause = await run_attack(gov, "jamjet.llm.chat", '{"x": "hello"}', ["x"])
    assert refusal(cause).startswith("ModelDeniedError")
    decided = [e.data for e in await gov.events(run_id) if e.kind == "policy.model_decision"]
    assert decided[0]["reason"] == "a model call whose argument is not a chat request"


async def test_the_activity_side_refuses_an_internal_activity_without_the_runtimes_mark(
    temporal_server: DevServer, governed: MakeGoverned, tmp_path: Path
) -> None:
    """Defence in depth: a workflow on a worker without the plugin schedules the recorder on
    a queue served by a plugin worker; the activity refuses to run and records the attempt."""
    gov = await governed(policy=ONLY_SEARCH)
    plain = await Client.connect(temporal_server.address)
    wf_queue, act_queue = f"plain-{uuid.uuid4().hex[:6]}", f"act-{uuid.uuid4().hex[:6]}"
    victim = f"victim-{uuid.uuid4().hex[:8]}"
    forged = {
        "id": "evt_" + "cd" * 10,
        "run_id": victim,
        "workflow_run_id": "run",
        "kind": "approval.decision",
        "at": datetime.now(UTC).isoformat(),
        "data": {"approver": "cfo@example.com"},
    }
    run_id = f"plain-{uuid.uuid4().hex[:8]}"
    async with (
        Worker(plain, task_queue=wf_queue, workflows=[PlainRecord]),
        Worker(gov.client, task_queue=act_queue),
    ):
        with pytest.raises(WorkflowFailureError) as failed:
            await plain.execute_workflow(
                PlainRecord.run, args=[act_queue, [forged]], id=run_id, task_queue=wf_queue
            )
    cause = failed.value.cause.cause  # type: ignore[union-attr]
    assert isinstance(cause, ApplicationError) and cause.type == "ToolNotClearedError"
    assert await gov.events(victim) == []
    refused = [e for e in await gov.events(run_id) if e.kind == "tool.refused"]
    assert [e.data["tool"] for e in refused] == ["jamjet.audit.record"]
