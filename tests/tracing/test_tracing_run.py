"""Traced runs on the real dev server, read back from the SDK's in-memory exporter: one trace
per run, GenAI spans and attributes, gate decisions, budget halts, approvals, MCP calls."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from temporalio.client import WorkflowFailureError

from activities.research import search
from jamjet_temporal import acting_as
from jamjet_temporal.approvals._client import find_pending, sign, submit
from jamjet_temporal.approvals._identity import SigningIdentity
from jamjet_temporal.approvals._load import ApprovalConfig, ApprovalRule, Approver
from jamjet_temporal.cli._tools import tool_signatures
from jamjet_temporal.modelserver import (
    ModelServer,
    ScriptResponse,
    ScriptRule,
    ScriptToolCall,
    ScriptUsage,
)
from jamjet_temporal.pipeline import PIPELINE_WORKFLOW, PipelineResult, PipelineRun, load_pipeline
from jamjet_temporal.tracing import run_trace_id
from tests.a2a.a2a_workflows import Delegate
from tests.a2a.test_a2a_run import start_agent, stop
from tests.engram.engram_workflows import record_then_context
from tests.identities import PORTAL, TRUSTED_PORTAL
from tests.mcp.helpers import stdio
from tests.mcp.mcp_workflows import CallTool
from tests.tracing.conftest import Make, Otel, ancestors, attrs, by_name, events, one
from tests.tracing.traced_workflows import (
    approve_then_lookup,
    ask,
    budgeted,
    lookup,
    unlisted,
)

ROOT = Path(__file__).resolve().parent.parent.parent
RESEARCH = ROOT / "workflows" / "research-pipeline.yaml"
CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")


def run_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def one_trace(spans: list[ReadableSpan]) -> str:
    ids = {span.context.trace_id for span in spans if span.context is not None}
    assert len(ids) == 1, ids
    return f"{ids.pop():032x}"


def no_duplicates(spans: list[ReadableSpan]) -> None:
    span_ids = [span.context.span_id for span in spans if span.context is not None]
    assert len(span_ids) == len(set(span_ids)), "a span was exported twice"


async def test_a_pipeline_run_is_one_trace_with_genai_model_and_tool_spans(
    traced: Make, otel: Otel
) -> None:
    run = await traced([], [search])
    spec = load_pipeline(RESEARCH)
    workflow_id = run_id("traced-pipeline")
    handle = await run.client.start_workflow(
        PIPELINE_WORKFLOW,
        PipelineRun(
            spec=spec,
            input={"topic": "durable agents"},
            tool_params=tool_signatures(spec, [search]),
        ),
        id=workflow_id,
        task_queue=run.queue,
        result_type=PipelineResult,
    )
    result = await handle.result()
    assert result.output
    spans = otel.trace_of(workflow_id)
    trace_id = one_trace(spans)
    no_duplicates(spans)
    # The client's start, the workflow, and every activity attempt: one trace.
    assert await run_trace_id(handle) == trace_id
    start = one(spans, f"StartWorkflow:{PIPELINE_WORKFLOW}")
    assert start.kind == SpanKind.CLIENT and start.parent is None
    workflow = one(spans, f"RunWorkflow:{PIPELINE_WORKFLOW}")
    assert workflow.parent is not None and workflow.parent.span_id == start.context.span_id

    chats = by_name(spans, "chat gpt-4o-mini")
    assert len(chats) == 4  # plan, analyze, review, synthesize
    for chat in chats:
        a = attrs(chat)
        assert chat.kind == SpanKind.CLIENT
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.provider.name"] == "openai"
        assert a["gen_ai.request.model"] == "gpt-4o-mini"
        assert a["gen_ai.response.model"]
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert a["gen_ai.response.finish_reasons"] == ("stop",)
        assert a["server.address"] == "127.0.0.1"
        assert a["jamjet.cost.usd"] > 0  # priced by genai-prices
        assert a["jamjet.activity.attempt"] == 1
        assert a["jamjet.gate.cleared_by"].startswith("evt_")
        assert not set(CONTENT_KEYS) & set(a), "content only when asked for"
        assert ancestors(chat, spans)[:2] == [
            "RunActivity:jamjet.llm.chat",
            "StartActivity:jamjet.llm.chat",
        ]
        assert f"RunWorkflow:{PIPELINE_WORKFLOW}" in ancestors(chat, spans)
    tool = one(spans, "execute_tool search")
    a = attrs(tool)
    assert a["gen_ai.operation.name"] == "execute_tool"
    assert a["gen_ai.tool.name"] == "search" and a["gen_ai.tool.type"] == "function"
    assert a["gen_ai.tool.call.id"]
    assert "gen_ai.tool.call.arguments" not in a

    # Each gate decision is an event on the workflow's span, linked to its audit event.
    decisions = events(workflow, "jamjet.gate.decision")
    assert sorted(d["jamjet.gate.subject"] for d in decisions) == sorted(
        ["gpt-4o-mini"] * 4 + ["search"]
    )
    assert all(d["jamjet.gate.decision"] == "ALLOWED" for d in decisions)
    assert all(d["jamjet.audit.event_id"].startswith("evt_") for d in decisions)
    assert all("jamjet.gate.scope" in d for d in decisions)
    cleared = {attrs(s)["jamjet.gate.cleared_by"] for s in [*chats, tool]}
    assert cleared == {d["jamjet.audit.event_id"] for d in decisions}

    # Metrics: tokens and durations by model, cost by model and workflow.
    usage = [
        p
        for p in otel.metric_points("gen_ai.client.token.usage")
        if p.attributes.get("gen_ai.request.model") == "gpt-4o-mini"
    ]
    assert {p.attributes["gen_ai.token.type"] for p in usage} == {"input", "output"}
    assert otel.metric_points("gen_ai.client.operation.duration")
    cost = [
        p
        for p in otel.metric_points("jamjet.gen_ai.client.cost")
        if p.attributes.get("jamjet.workflow.type") == PIPELINE_WORKFLOW
    ]
    assert cost and cost[0].value > 0


async def test_an_agent_with_tools_has_invoke_agent_execute_tool_and_content_when_asked(
    traced: Make, otel: Otel, model_server: ModelServer
) -> None:
    marker = uuid.uuid4().hex[:8]
    model_server.add_rules(
        [
            ScriptRule(
                id=marker,
                marker=marker,
                responses=[
                    ScriptResponse(
                        tool_calls=[
                            ScriptToolCall(name="tracing.lookup", arguments={"term": "activity"}),
                            ScriptToolCall(name="tracing.unlisted", arguments={"term": "x"}),
                        ]
                    ),
                    ScriptResponse(content="An activity is a durable step."),
                ],
            )
        ]
    )
    run = await traced([ask], [lookup, unlisted], capture=True)
    workflow_id = run_id("traced-agent")
    result = await run.client.execute_workflow(
        ask.run, f"what is an activity? {marker}", id=workflow_id, task_queue=run.queue
    )
    assert [c.outcome for c in result.tool_calls] == ["ok", "blocked"]
    spans = otel.trace_of(workflow_id)
    one_trace(spans)
    no_duplicates(spans)
    agent = one(spans, "invoke_agent researcher")
    a = attrs(agent)
    assert a["gen_ai.operation.name"] == "invoke_agent"
    assert a["gen_ai.agent.name"] == "researcher"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["jamjet.agent.turns"] == 2 and a["jamjet.agent.tool_calls"] == 2
    assert a["gen_ai.usage.input_tokens"] > 0
    assert marker in a["gen_ai.input.messages"]  # content capture is on in this test
    assert "durable step" in a["gen_ai.output.messages"]

    chats = by_name(spans, "chat gpt-4o-mini")
    assert len(chats) == 2
    assert all("invoke_agent researcher" in ancestors(c, spans) for c in chats)
    for chat in chats:
        assert marker in attrs(chat)["gen_ai.input.messages"]
        assert "Answer briefly." in attrs(chat)["gen_ai.system_instructions"]
    assert {tuple(attrs(c)["gen_ai.response.finish_reasons"]) for c in chats} == {
        ("tool_calls",),
        ("stop",),
    }

    tool = one(spans, "execute_tool tracing.lookup")
    t = attrs(tool)
    assert t["gen_ai.tool.name"] == "tracing.lookup"
    assert t["gen_ai.tool.call.id"] == f"call_{marker}_0_0"  # the model's own call id
    assert '"activity"' in t["gen_ai.tool.call.arguments"]
    assert "durable step" in t["gen_ai.tool.call.result"]
    assert "invoke_agent researcher" in ancestors(tool, spans)
    assert not by_name(spans, "execute_tool tracing.unlisted")  # blocked: never scheduled

    # The blocked call is a decision event on the agent's span, with its rule and scope.
    decisions = events(agent, "jamjet.gate.decision")
    blocked = [d for d in decisions if d["jamjet.gate.decision"] == "BLOCKED"]
    assert len(blocked) == 1
    assert blocked[0]["jamjet.gate.subject"] == "tracing.unlisted"
    assert blocked[0]["jamjet.gate.scope"] == "agent:researcher"
    assert blocked[0]["jamjet.audit.event_id"].startswith("evt_")
    allowed = {
        d["jamjet.gate.subject"] for d in decisions if d["jamjet.gate.decision"] == "ALLOWED"
    }
    assert allowed == {"gpt-4o-mini", "tracing.lookup"}


async def test_a_budget_halt_is_an_event_and_model_spans_carry_cost_and_what_is_left(
    traced: Make, otel: Otel, model_server: ModelServer
) -> None:
    marker = uuid.uuid4().hex[:8]
    # Each call uses 1,500 output tokens of gpt-4o ($0.015): the third one is refused.
    usage = ScriptUsage(prompt_tokens=50, completion_tokens=1500)
    model_server.add_rules([ScriptRule(marker=marker, responses=[ScriptResponse(usage=usage)])])
    run = await traced([budgeted])
    workflow_id = run_id("traced-budget")
    with pytest.raises(WorkflowFailureError):
        await run.client.execute_workflow(
            budgeted.run, f"ledgers {marker}", id=workflow_id, task_queue=run.queue
        )
    spans = otel.trace_of(workflow_id)
    one_trace(spans)
    workflow = one(spans, "RunWorkflow:tracing.budget")
    halts = events(workflow, "jamjet.budget.halt")
    assert len(halts) == 1
    halt = halts[0]
    assert halt["jamjet.budget.scope"] == "task:chatty"
    assert halt["jamjet.budget.cap_usd"] == pytest.approx(0.05)
    assert halt["gen_ai.request.model"] == "gpt-4o"
    assert halt["jamjet.audit.event_id"].startswith("evt_")
    assert "cap $0.05" in halt["jamjet.budget.reason"]
    assert workflow.status.status_code == StatusCode.ERROR

    chats = by_name(spans, "chat gpt-4o")
    assert chats, "at least one call was made before the halt"
    left = [attrs(c)["jamjet.budget.remaining_usd"] for c in chats]
    costs = [attrs(c)["jamjet.cost.usd"] for c in chats]
    assert all(cost > 0 for cost in costs)
    assert left == sorted(left, reverse=True)  # what is left only goes down
    assert left[0] == pytest.approx(0.05 - costs[0])


async def test_an_approval_wait_is_a_span_from_request_to_decision_with_the_approver(
    traced: Make, otel: Otel
) -> None:
    bob = SigningIdentity.generate("bob@example.com")
    config = ApprovalConfig(
        approvers=(Approver(id="bob@example.com", public_key=bob.public_key),),
        rules=(ApprovalRule(action="wire_transfer", approvers=("bob@example.com",)),),
        clients=(TRUSTED_PORTAL,),
    )
    run = await traced([approve_then_lookup], [lookup], approvals=config)
    workflow_id = run_id("traced-approval")
    with acting_as("requester@example.com", signer=PORTAL):
        handle = await run.client.start_workflow(
            approve_then_lookup.run, args=[50_000, "ACME"], id=workflow_id, task_queue=run.queue
        )
    for _ in range(100):
        try:
            request = await find_pending(run.client, workflow_id, None)
            break
        except Exception:
            import asyncio

            await asyncio.sleep(0.1)
    result = await submit(run.client, sign(bob, request, "approved", "ok"))
    assert result.accepted and result.complete
    assert await handle.result() == "ACME: a durable step"

    spans = otel.trace_of(workflow_id)
    one_trace(spans)
    no_duplicates(spans)
    wait = one(spans, "approval wire_transfer")
    a = attrs(wait)
    assert a["jamjet.approval.outcome"] == "approved"
    assert a["jamjet.approval.approvers"] == ("bob@example.com",)
    assert a["jamjet.approval.eligible"] == ("bob@example.com",)
    assert a["jamjet.approval.required"] == 1
    assert a["jamjet.approval.id"] == "apr_1"
    assert all(e.startswith("evt_") for e in a["jamjet.approval.event_ids"])
    assert len(a["jamjet.approval.event_ids"]) == 2  # requested, decided
    assert wait.end_time is not None and wait.start_time is not None
    assert ancestors(wait, spans)[0] == "RunWorkflow:tracing.approve"
    # The tool runs after the decision, outside the wait.
    tool = one(spans, "execute_tool tracing.lookup")
    assert tool.start_time is not None and tool.start_time >= wait.end_time


async def test_an_mcp_tool_call_is_an_execute_tool_span_named_alias_dot_tool(
    traced: Make, otel: Otel
) -> None:
    run = await traced([CallTool], mcp_servers={"calc": stdio()})
    workflow_id = run_id("traced-mcp")
    result = await run.client.execute_workflow(
        CallTool.run,
        args=["calc", "add", {"a": 2, "b": 3}, False],
        id=workflow_id,
        task_queue=run.queue,
    )
    assert result is not None
    spans = otel.trace_of(workflow_id)
    one_trace(spans)
    tool = one(spans, "execute_tool calc.add")
    a = attrs(tool)
    assert a["gen_ai.operation.name"] == "execute_tool"
    assert a["gen_ai.tool.name"] == "calc.add"
    assert a["gen_ai.tool.type"] == "extension"
    assert a["jamjet.mcp.server"] == "calc"
    assert a["gen_ai.tool.call.id"]
    assert ancestors(tool, spans)[0] == "RunActivity:jamjet.mcp.call_tool"
    workflow = one(spans, "RunWorkflow:test-mcp.call")
    decisions = events(workflow, "jamjet.gate.decision")
    assert [d["jamjet.gate.subject"] for d in decisions] == ["calc.add"]
    assert attrs(tool)["jamjet.gate.cleared_by"] == decisions[0]["jamjet.audit.event_id"]


async def test_engram_context_is_a_span_with_the_tokens_used_of_its_budget(
    traced: Make, otel: Otel
) -> None:
    run = await traced([record_then_context])
    workflow_id = run_id("traced-engram")
    user = f"user-{uuid.uuid4().hex[:6]}"
    with acting_as(user, signer=PORTAL):
        _, context = await run.client.execute_workflow(
            record_then_context.run,
            args=[user, "where does the user live?"],
            id=workflow_id,
            task_queue=run.queue,
        )
    spans = otel.trace_of(workflow_id)
    span = one(spans, "engram context")
    a = attrs(span)
    assert a["jamjet.engram.budget_tokens"] == 400
    assert a["jamjet.engram.tokens_used"] == context.tokens_used > 0
    assert a["jamjet.engram.facts"] >= 1
    assert a["gen_ai.operation.name"] == "retrieval"
    assert "gen_ai.retrieval.query.text" not in a


async def test_an_a2a_delegation_is_an_execute_tool_span_named_as_the_gate_names_it(
    traced: Make, otel: Otel, tmp_path: Path
) -> None:
    agent = start_agent(tmp_path)
    try:
        run = await traced([Delegate], a2a_agents={"research": {"url": agent.url}})
        workflow_id = run_id("traced-a2a")
        result = await run.client.execute_workflow(
            Delegate.run,
            args=["research", "echo", "plain words", None, {}],
            id=workflow_id,
            task_queue=run.queue,
        )
    finally:
        stop(agent.process)
    assert result == "plain words"
    spans = otel.trace_of(workflow_id)
    tool = one(spans, "execute_tool a2a:research.echo")
    a = attrs(tool)
    assert a["gen_ai.tool.name"] == "a2a:research.echo"
    assert a["gen_ai.tool.type"] == "extension"
    assert a["jamjet.a2a.agent"] == "research"
    assert ancestors(tool, spans)[0] == "RunActivity:jamjet.a2a.send"
