"""Attack: a model call made inside a plain ``@task`` (the README's ``analyze``) used to skip the
gate, the audit trail and the budget. It now passes them as a workflow's own call does.

Also: continue-as-new used to drop the run's budget and user (a call over the cap ran in the
next run).
"""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

from jamjet_temporal import acting_as, run_budget
from jamjet_temporal.budget._tokens import count_message_tokens
from jamjet_temporal.llm._types import ChatRequest
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule, ScriptUsage
from jamjet_temporal.policy import Policy
from tests.identities import PORTAL
from tests.security.conftest import MakeGoverned
from tests.security.security_workflows import (
    continues,
    summarize,
    task_calls_model,
    task_then_model,
)

MINI_ONLY = Policy(model_allowlist=("gpt-4o-mini",))


def projected_tokens(prompt: str, max_tokens: int = 50) -> int:
    request = ChatRequest(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
    return count_message_tokens(request.messages, request.tools) + max_tokens


async def test_a_blocked_model_called_inside_a_task_is_refused_and_recorded(
    governed: MakeGoverned, model_server: ModelServer
) -> None:
    gov = await governed(policy=MINI_ONLY)
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"task-{uuid.uuid4().hex[:8]}"
    marker = uuid.uuid4().hex
    async with Worker(
        gov.client, task_queue=queue, workflows=[task_calls_model], activities=[summarize]
    ):
        with pytest.raises(WorkflowFailureError) as failed:
            await gov.client.execute_workflow(
                task_calls_model.run, args=[marker, "gpt-4o"], id=run_id, task_queue=queue
            )
    cause = failed.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError) and cause.cause.type == "ModelDeniedError"
    assert marker not in str(model_server.calls()), "the blocked model was called"
    inside = [
        e for e in await gov.events(run_id) if e.data.get("tool") == "test-security.summarize"
    ]
    decided = [e.data for e in inside if e.kind == "policy.model_decision"]
    assert [(d["subject"], d["decision"]) for d in decided] == [("gpt-4o", "BLOCKED")]
    assert [e.kind for e in inside if e.kind == "model.call"] == []


async def test_an_allowed_model_call_inside_a_task_is_recorded(
    governed: MakeGoverned, model_server: ModelServer
) -> None:
    gov = await governed(policy=MINI_ONLY)
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"task-{uuid.uuid4().hex[:8]}"
    async with Worker(
        gov.client, task_queue=queue, workflows=[task_calls_model], activities=[summarize]
    ):
        answer = await gov.client.execute_workflow(
            task_calls_model.run, args=["hello", "gpt-4o-mini"], id=run_id, task_queue=queue
        )
    assert answer.startswith("[gpt-4o-mini]")
    kinds = [(e.kind, e.data.get("tool")) for e in await gov.events(run_id)]
    assert kinds == [
        ("policy.decision", "test-security.summarize"),
        ("policy.model_decision", "test-security.summarize"),
        ("model.call", "test-security.summarize"),
        ("tool.call", "test-security.summarize"),
        ("run.closed", None),
    ]


async def test_what_a_task_spends_counts_against_the_runs_budget(
    governed: MakeGoverned, model_server: ModelServer
) -> None:
    gov = await governed()
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"budget-{uuid.uuid4().hex[:8]}"
    marker = uuid.uuid4().hex
    model_server.add_rules(
        [
            ScriptRule(
                marker=f"summarize: {marker}",
                responses=[
                    ScriptResponse(
                        content="short", usage=ScriptUsage(prompt_tokens=10, completion_tokens=30)
                    )
                ],
            )
        ]
    )
    first = projected_tokens(f"summarize: {marker}")
    second = projected_tokens(f"and then: {marker}")
    # Room for either call alone, not for the second once the task's 40 tokens are spent.
    cap = max(first, second) + 20
    async with Worker(
        gov.client, task_queue=queue, workflows=[task_then_model], activities=[summarize]
    ):
        with pytest.raises(WorkflowFailureError) as failed, run_budget(max_tokens=cap):
            await gov.client.execute_workflow(
                task_then_model.run, marker, id=run_id, task_queue=queue
            )
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "BudgetExceededError"
    assert f"and then: {marker}" not in str(model_server.calls())
    budget = [e.data for e in await gov.events(run_id) if e.kind == "budget.decision"]
    assert [(b["decision"], b["scope"]) for b in budget] == [("ALLOWED", "task"), ("HALT", "run")]
    assert budget[1]["spent_tokens"] == 40


async def test_a_task_cannot_spend_more_than_the_budget_left(
    governed: MakeGoverned, model_server: ModelServer
) -> None:
    gov = await governed()
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"budget-{uuid.uuid4().hex[:8]}"
    marker = uuid.uuid4().hex
    async with Worker(
        gov.client, task_queue=queue, workflows=[task_calls_model], activities=[summarize]
    ):
        with pytest.raises(WorkflowFailureError) as failed, run_budget(max_tokens=10):
            await gov.client.execute_workflow(
                task_calls_model.run, args=[marker, "gpt-4o-mini"], id=run_id, task_queue=queue
            )
    cause = failed.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError) and cause.cause.type == "BudgetExceededError"
    assert marker not in str(model_server.calls())
    halted = [e.data for e in await gov.events(run_id) if e.kind == "budget.decision"]
    assert [h["decision"] for h in halted] == ["HALT"]


async def test_continue_as_new_keeps_the_budget_left_and_the_user(
    governed: MakeGoverned, model_server: ModelServer
) -> None:
    gov = await governed()
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"can-{uuid.uuid4().hex[:8]}"
    marker = uuid.uuid4().hex
    model_server.add_rules(
        [
            ScriptRule(
                marker=marker,
                responses=[
                    ScriptResponse(
                        content="ok", usage=ScriptUsage(prompt_tokens=10, completion_tokens=40)
                    )
                ],
            )
        ]
    )
    per_call = projected_tokens(f"{marker} round 3")
    # Two calls fit (each spends 50 of what its projection reserved), a third does not.
    cap = 2 * 50 + per_call - 1
    async with Worker(gov.client, task_queue=queue, workflows=[continues]):
        with (
            pytest.raises(WorkflowFailureError) as failed,
            run_budget(max_tokens=cap),
            acting_as("carol@example.com", signer=PORTAL),
        ):
            await gov.client.execute_workflow(
                continues.run, args=[3, marker], id=run_id, task_queue=queue
            )
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "BudgetExceededError"
    calls = [c for c in model_server.calls() if marker in str(c["messages"])]
    assert len(calls) == 2, "a call over the cap ran in the next run"
    events = await gov.events(run_id)
    assert len({e.workflow_run_id for e in events}) == 3
    assert {e.actor.get("user") for e in events} == {"carol@example.com"}


async def test_a_task_and_a_model_call_in_parallel_share_the_budget(
    governed: MakeGoverned, model_server: ModelServer
) -> None:
    """The task holds the budget while it runs; the model call waits for it, then goes."""
    from tests.security.security_workflows import fan_out, fetch

    gov = await governed()
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"fan-{uuid.uuid4().hex[:8]}"
    marker = uuid.uuid4().hex
    async with Worker(gov.client, task_queue=queue, workflows=[fan_out], activities=[fetch]):
        with run_budget(max_tokens=10_000):
            fetched, answered = await gov.client.execute_workflow(
                fan_out.run, marker, id=run_id, task_queue=queue
            )
    assert fetched == f"fetched {marker}" and answered.startswith("[gpt-4o-mini]")
    budget = [e.data["decision"] for e in await gov.events(run_id) if e.kind == "budget.decision"]
    assert budget == ["ALLOWED"]


async def test_parallel_model_calls_cannot_both_spend_the_last_of_the_budget(
    governed: MakeGoverned, model_server: ModelServer
) -> None:
    from tests.security.security_workflows import two_at_once

    gov = await governed()
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"two-{uuid.uuid4().hex[:8]}"
    marker = uuid.uuid4().hex
    one = projected_tokens(f"first {marker}")
    async with Worker(gov.client, task_queue=queue, workflows=[two_at_once]):
        with run_budget(max_tokens=one + one // 2):
            answers = await gov.client.execute_workflow(
                two_at_once.run, marker, id=run_id, task_queue=queue
            )
    assert sorted(a.startswith("[gpt-4o-mini]") for a in answers) == [False, True], answers
    assert "BudgetExceededError" in answers
    asked = [c for c in model_server.calls() if marker in str(c["messages"])]
    assert len(asked) == 1
