"""Every node type and accepted spelling, run by ``PipelineWorkflow`` on the real dev server.

Model calls go to the local model server (scripted per test by a marker); tools are ``@task``
activities. Approvals live in tests/approvals/test_pipeline_approval.py, the parallel crash in
test_parallel_crash.py, the template corpus in test_corpus.py.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from jamjet_temporal import agent, task
from jamjet_temporal._shared._wire import PIPELINE_EVENT_SIGNAL, PIPELINE_WAITING_QUERY
from jamjet_temporal.audit import open_store
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule, ScriptToolCall
from jamjet_temporal.pipeline import PIPELINE_WORKFLOW, PipelineResult, PipelineRun
from jamjet_temporal.pipeline._spec import parse_pipeline
from jamjet_temporal.pipeline._workflow import (
    AgentSpec,
    AgentTool,
    PipelineEvent,
    ToolSignature,
)

CALLS: list[tuple[str, int]] = []


@task(name="nodes.bump")
async def bump(n: int, by: int = 1) -> int:
    CALLS.append(("bump", n))
    return n + by


@task(name="nodes.note")
async def note(text: str) -> str:
    CALLS.append(("note", len(text)))
    return f"noted: {text}"


@task(name="nodes.researcher", tools=[bump])
async def researcher(question: str) -> str:
    """You are a careful researcher: use nodes.bump to count."""
    return (await agent.run(question)).output or ""


SIGS = {
    "nodes.bump": ToolSignature(params=["n", "by"], required=1),
    "nodes.note": ToolSignature(params=["text"], required=1),
}
AGENTS = {
    "nodes.researcher": AgentSpec(
        name="nodes.researcher",
        tools=[
            AgentTool(
                name="nodes.bump",
                signature=ToolSignature(params=["n", "by"], required=1),
                schema={
                    "type": "function",
                    "function": {
                        "name": "nodes.bump",
                        "description": "Add by to n.",
                        "parameters": {
                            "type": "object",
                            "properties": {"n": {"type": "integer"}, "by": {"type": "integer"}},
                            "required": ["n"],
                        },
                    },
                },
            )
        ],
        instructions="You are a careful researcher.",
    )
}


def start(
    client: Client,
    queue: str,
    text: str,
    state: dict[str, Any],
    *,
    base_dir: Path | None = None,
) -> Any:
    spec = parse_pipeline(text, "nodes.yaml", base_dir=base_dir)
    return client.start_workflow(
        PIPELINE_WORKFLOW,
        PipelineRun(spec=spec, input=state, tool_params=SIGS, agents=AGENTS),
        id=f"nodes-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        result_type=PipelineResult,
    )


async def run(
    client: Client, queue: str, text: str, state: dict[str, Any], **kw: Any
) -> PipelineResult:
    async with Worker(client, task_queue=queue, activities=[bump, note]):
        handle = await start(client, queue, text, state, **kw)
        result: PipelineResult = await handle.result()
        return result


async def failure(client: Client, queue: str, text: str, state: dict[str, Any]) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as info:
        await run(client, queue, text, state)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


def script(model_server: ModelServer, marker: str, *answers: str) -> None:
    model_server.add_rules(
        [ScriptRule(marker=marker, responses=[ScriptResponse(content=a) for a in answers])]
    )


def calls_with(model_server: ModelServer, marker: str) -> list[dict[str, Any]]:
    return [c for c in model_server.calls() if marker in str(c["messages"])]


# ------------------------------------------------------------------------------------------
# model and tool nodes, in JamJet's spellings


async def test_model_node_with_jamjet_spellings_prompt_file_and_structured_output(
    client: Client, task_queue: str, model_server: ModelServer, tmp_path: Path
) -> None:
    marker = uuid.uuid4().hex
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "judge.md").write_text("Judge {{ state.claim }} ({{ state.m }})\n")
    script(model_server, marker, '{"verdict": "true", "confidence": 0.9}')
    text = """
workflow: {id: m, version: 0.1.0, name: Judge, labels: {team: qa}}
models:
  fast: {model: gpt-4o-mini, temperature: 0.1, max_tokens: 99}
nodes:
  judge:
    type: model
    model: fast
    system_prompt: You judge claims.
    prompt: prompts/judge.md
    output_schema:
      type: object
      properties: {verdict: {type: string}, confidence: {type: number}}
      required: [verdict, confidence]
    output_to_state: ruling
    next: end
"""
    result = await run(
        client, task_queue, text, {"claim": "water is wet", "m": marker}, base_dir=tmp_path
    )
    assert result.state["ruling"] == {"verdict": "true", "confidence": 0.9}
    call = calls_with(model_server, marker)[0]
    assert call["messages"][0] == {"role": "system", "content": "You judge claims."}
    assert call["messages"][1]["content"] == f"Judge water is wet ({marker})\n"
    assert call["model"] == "gpt-4o-mini" and call["max_tokens"] == 99
    assert call["temperature"] == 0.1
    assert call["response_format"]["type"] == "json_schema"
    # `next: end` with no node named end ends the run: one node ran.
    assert [r.node for r in result.nodes] == ["judge"]


async def test_tool_node_with_tool_ref_and_input_keeps_types(
    client: Client, task_queue: str
) -> None:
    text = """
workflow: {id: t}
nodes:
  add:
    type: tool
    tool_ref: nodes.bump
    input: {n: "{{ state.n }}", by: "{{ state.step * 2 }}"}
    output_to_state: n
    retry: {max_attempts: 2, backoff: constant, delay_ms: 100}
    timeout: 30s
"""
    result = await run(client, task_queue, text, {"n": 1, "step": 5})
    assert result.state["n"] == 11


async def test_jinja_filters_and_blocks_render_in_prompts(
    client: Client, task_queue: str, model_server: ModelServer
) -> None:
    marker = uuid.uuid4().hex
    text = """
workflow: {id: j}
nodes:
  ask:
    type: model
    prompt: |
      {{ state.m }} topics: {{ state.topics | join(', ') }} ({{ state.topics | length }})
      {% for t in state.topics %}- {{ t | upper }}
      {% endfor %}{% if state.extra %}extra{% endif %}{{ state.missing | default('none') }}
    output_key: a
"""
    await run(client, task_queue, text, {"m": marker, "topics": ["a", "b"], "extra": False})
    content = calls_with(model_server, marker)[0]["messages"][-1]["content"]
    assert content == f"{marker} topics: a, b (2)\n- A\n- B\nnone\n"


# ------------------------------------------------------------------------------------------
# routing: condition / branch in all three spellings


BRANCH = """
workflow: {id: b, start: route}
nodes:
  route:
    type: branch
    conditions:
      - if: "state.kind == 'big' and state.size >= 10"
        next: big
      - when: "state.kind in ['small', 'tiny']"
        to: small
    default: other
  big: {type: tool, tool: nodes.note, arguments: {text: big}, output_key: went, next: end}
  small: {type: tool, tool: nodes.note, arguments: {text: small}, output_key: went, next: end}
  other: {type: tool, tool: nodes.note, arguments: {text: other}, output_key: went}
"""


@pytest.mark.parametrize(
    ("state", "went"),
    [
        ({"kind": "big", "size": 12}, "noted: big"),
        ({"kind": "big", "size": 2}, "noted: other"),
        ({"kind": "tiny"}, "noted: small"),
        ({}, "noted: other"),
    ],
)
async def test_branch_conditions_first_match_then_default(
    client: Client, task_queue: str, state: dict[str, Any], went: str
) -> None:
    result = await run(client, task_queue, BRANCH, state)
    assert result.state["went"] == went


@pytest.mark.parametrize(("flag", "went"), [(True, "noted: yes"), (False, "noted: no")])
async def test_condition_expression_if_true_if_false(
    client: Client, task_queue: str, flag: bool, went: str
) -> None:
    text = """
workflow: {id: e, start: check}
nodes:
  check: {type: condition, expression: "state.flag == true", if_true: go, if_false: stop}
  go: {type: tool, tool: nodes.note, arguments: {text: "yes"}, output_key: went}
  stop: {type: tool, tool: nodes.note, arguments: {text: "no"}, output_key: went}
"""
    result = await run(client, task_queue, text, {"flag": flag})
    assert result.state["went"] == went


# ------------------------------------------------------------------------------------------
# parallel


async def test_parallel_branches_run_concurrently_and_merge_at_the_join(
    client: Client, task_queue: str
) -> None:
    text = """
workflow: {id: p, start: fan}
nodes:
  fan: {type: parallel, branches: [left, right], join: after, output_key: branches}
  left: {type: tool, tool: nodes.bump, arguments: {n: 1}, output_key: l, next: left2}
  left2: {type: tool, tool: nodes.bump, arguments: {n: "{{ state.l }}"}, output_key: l, next: after}
  right: {type: tool, tool: nodes.bump, arguments: {n: 100}, output_key: r, next: after}
  after: {type: tool, tool: nodes.bump, arguments: {n: "{{ state.l + state.r }}"}, output_key: sum}
"""
    result = await run(client, task_queue, text, {})
    assert (result.state["l"], result.state["r"], result.state["sum"]) == (3, 101, 105)
    assert result.state["branches"] == {"left": "ok", "right": "ok"}
    ids = [r.activity_id for r in result.nodes if r.activity_id]
    assert sorted(ids) == sorted(["left#1", "left2#1", "right#1", "after#1"])
    # Both branches started before either finished: they ran concurrently.
    left = next(r for r in result.nodes if r.node == "left")
    right = next(r for r in result.nodes if r.node == "right")
    assert left.started_at < right.finished_at and right.started_at < left.finished_at


async def test_parallel_failed_branch_follows_the_nodes_policy(
    client: Client, task_queue: str
) -> None:
    text = """
workflow: {id: pf, start: fan}
nodes:
  fan: {type: parallel, branches: [ok, bad], join: after, on_branch_failure: continue,
        output_key: branches}
  ok: {type: tool, tool: nodes.bump, arguments: {n: 1}, output_key: a, next: after}
  bad: {type: tool, tool: nodes.bump, arguments: {n: "{{ state.nope }}"}, next: after}
  after: {type: end}
"""
    result = await run(client, task_queue, text, {})
    assert result.state["a"] == 2
    assert result.state["branches"]["ok"] == "ok"  # type: ignore[index]
    assert "nope" in str(result.state["branches"]["bad"])  # type: ignore[index]
    cause = await failure(client, task_queue, text.replace("continue", "fail"), {})
    assert cause.type == "TemplateError" and "nope" in cause.message


# ------------------------------------------------------------------------------------------
# wait


WAIT = """
workflow: {id: w, start: draft}
nodes:
  draft: {type: tool, tool: nodes.note, arguments: {text: draft}, output_key: draft, next: review}
  review:
    type: wait
    event: reviewed
    timeout_hours: 8
    on_timeout: auto
    next: route
  route:
    type: branch
    conditions:
      - if: "state.approved == true"
        next: execute
      - if: "state.approved == false"
        next: revise
    default: execute
  execute: {type: tool, tool: nodes.note, arguments: {text: "go {{ state.draft }}"},
            output_key: out}
  revise: {type: tool, tool: nodes.note, arguments: {text: "fix {{ state.feedback }}"},
           output_key: out}
  auto: {type: tool, tool: nodes.note, arguments: {text: auto}, output_key: out}
"""


async def waiting_for(handle: WorkflowHandle[Any, Any], event: str) -> None:
    for _ in range(200):
        if event in await handle.query(PIPELINE_WAITING_QUERY):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never waited for {event}")


@pytest.mark.parametrize(
    ("data", "out"),
    [
        ({"approved": True}, "noted: go noted: draft"),
        ({"approved": False, "feedback": "too long"}, "noted: fix too long"),
    ],
)
async def test_wait_survives_a_worker_restart_and_routes_on_the_events_data(
    client: Client, task_queue: str, data: dict[str, Any], out: str, audit_url: str
) -> None:
    async with Worker(client, task_queue=task_queue, activities=[bump, note]):
        handle = await start(client, task_queue, WAIT, {})
        await waiting_for(handle, "reviewed")
    # No worker holds the run now; a new one replays it to the same wait.
    await handle.signal(
        PIPELINE_EVENT_SIGNAL, PipelineEvent(event="unrelated", data={"approved": "x"})
    )
    await handle.signal(
        PIPELINE_EVENT_SIGNAL, PipelineEvent(event="reviewed", data=data, sender="rita")
    )
    async with Worker(client, task_queue=task_queue, activities=[bump, note]):
        result: PipelineResult = await handle.result()
    assert result.state["out"] == out
    assert result.state["approved"] is data["approved"]  # the data merged into the state
    review = next(r for r in result.nodes if r.node == "review")
    assert review.detail == "'reviewed' from rita"
    # The audit trail records the event, its data and who sent it.
    store = open_store(audit_url)
    try:
        events = [s.event for s in await store.events(handle.id)]
    finally:
        await store.close()
    received = [e for e in events if e.kind == "pipeline.event"]
    assert len(received) == 1
    assert received[0].data == {
        "node": "review",
        "event": "reviewed",
        "sender": "rita",
        "data": data,
    }
    assert received[0].actor["sender"] == "rita"


async def test_wait_times_out_to_on_timeout(client: Client, task_queue: str) -> None:
    text = WAIT.replace("timeout_hours: 8", "timeout: 1s")
    result = await run(client, task_queue, text, {})
    assert result.state["out"] == "noted: auto"
    assert next(r for r in result.nodes if r.node == "review").outcome == "timed out"
    strict = text.replace("    on_timeout: auto\n", "").split("  auto:")[0]
    cause = await failure(client, task_queue, strict, {})
    assert cause.type == "EventTimeoutError" and "reviewed" in cause.message


async def test_an_event_sent_before_the_wait_is_kept_for_it(
    client: Client, task_queue: str
) -> None:
    text = WAIT.replace("arguments: {text: draft}", "arguments: {text: draft}, timeout: 60s")
    handle = await start(client, task_queue, text, {})
    # The run has not started a single task yet: the event waits for the node.
    await handle.signal(
        PIPELINE_EVENT_SIGNAL, PipelineEvent(event="reviewed", data={"approved": True})
    )
    async with Worker(client, task_queue=task_queue, activities=[bump, note]):
        result: PipelineResult = await handle.result()
    assert result.state["out"] == "noted: go noted: draft"


# ------------------------------------------------------------------------------------------
# eval


EVAL = """
workflow: {id: ev, start: write}
nodes:
  write:
    type: model
    prompt: "write about {{ state.m }}"
    output_key: draft
    next: check
  check:
    type: eval
    scorers:
      - type: assertion
        check: "'GOOD' in output"
      - type: llm_judge
        rubric: Is it good?
        min_score: 3
    on_fail: retry_with_feedback
    max_retries: 2
    output_key: verdict
    next: done
  done: {type: end, output: draft}
"""


async def test_eval_retry_with_feedback_converges(
    client: Client, task_queue: str, model_server: ModelServer
) -> None:
    marker = uuid.uuid4().hex
    model_server.add_rules(
        [
            ScriptRule(
                marker=marker,
                match="Rubric",
                responses=[ScriptResponse(content='{"score": 4, "reason": "fine"}')],
            ),
            ScriptRule(
                marker=marker,
                responses=[
                    ScriptResponse(content=f"meh {marker}"),
                    ScriptResponse(content=f"GOOD text {marker}"),
                ],
            ),
        ]
    )
    result = await run(client, task_queue, EVAL, {"m": marker})
    assert result.output == f"GOOD text {marker}"
    assert result.state["verdict"]["passed"] is True  # type: ignore[index]
    assert result.state["verdict"]["attempt"] == 2  # type: ignore[index]
    writes = [c for c in calls_with(model_server, marker) if "Rubric" not in str(c["messages"])]
    assert len(writes) == 2
    # The second attempt was told what failed.
    assert "assertion failed" in writes[1]["messages"][-1]["content"]
    outcomes = [r.outcome for r in result.nodes if r.node == "check"]
    assert outcomes == ["retrying", "ok"]


async def test_eval_halts_when_retries_run_out(
    client: Client, task_queue: str, model_server: ModelServer
) -> None:
    marker = uuid.uuid4().hex
    model_server.add_rules(
        [
            ScriptRule(
                marker=marker,
                match="Rubric",
                responses=[ScriptResponse(content='{"score": 2, "reason": "thin"}')],
            ),
            ScriptRule(marker=marker, responses=[ScriptResponse(content=f"GOOD, weak {marker}")]),
        ]
    )
    cause = await failure(client, task_queue, EVAL, {"m": marker})
    assert cause.type == "EvalFailedError"
    assert (
        "after 3 attempt(s)" in cause.message and "judge scored 2/5 (min 3): thin" in cause.message
    )


@pytest.mark.parametrize(
    ("on_fail", "went"), [("log_and_continue", "draft"), ("escalate", "escalated")]
)
async def test_eval_log_and_continue_and_escalate(
    client: Client, task_queue: str, model_server: ModelServer, on_fail: str, went: str
) -> None:
    marker = uuid.uuid4().hex
    script(model_server, marker, "bad")
    text = EVAL.replace("on_fail: retry_with_feedback", f"on_fail: {on_fail}\n    escalate_to: up")
    text = text.replace(
        "      - type: llm_judge\n        rubric: Is it good?\n        min_score: 3\n", ""
    )
    text += "  up: {type: tool, tool: nodes.note, arguments: {text: x}, output_key: escalated}\n"
    result = await run(client, task_queue, text, {"m": marker})
    assert went in result.state
    assert result.state["verdict"]["passed"] is False  # type: ignore[index]


async def test_eval_fail_under_fails_on_the_judges_mean_score(
    client: Client, task_queue: str, model_server: ModelServer
) -> None:
    marker = uuid.uuid4().hex
    model_server.add_rules(
        [
            ScriptRule(
                marker=marker,
                match="Rubric",
                responses=[ScriptResponse(content='{"score": 4, "reason": "decent"}')],
            ),
            ScriptRule(marker=marker, responses=[ScriptResponse(content=f"GOOD {marker}")]),
        ]
    )
    # Every scorer passes on its own (4 >= min_score 3), but the mean is under fail_under.
    text = EVAL.replace("    max_retries: 2\n", "    max_retries: 2\n    fail_under: 4.5\n")
    text = text.replace("on_fail: retry_with_feedback", "on_fail: log_and_continue")
    result = await run(client, task_queue, text, {"m": marker})
    verdict = result.state["verdict"]
    assert isinstance(verdict, dict) and verdict["passed"] is False
    assert verdict["mean_score"] == 4.0
    check = next(r for r in result.nodes if r.node == "check")
    assert check.outcome == "failed" and "under 4.5" in (check.detail or "")


async def test_eval_latency_and_cost_scorers(
    client: Client, task_queue: str, model_server: ModelServer
) -> None:
    marker = uuid.uuid4().hex
    model_server.add_rules(
        [ScriptRule(marker=marker, responses=[ScriptResponse(content="ok", delay_ms=300)])]
    )
    text = """
workflow: {id: lc, start: write}
nodes:
  write: {type: model, prompt: "go {{ state.m }}", output_key: draft, next: fast}
  fast:
    type: eval
    scorers: [{type: latency, max_ms: 50}, {type: cost, max_usd: 0.000001}]
    on_fail: log_and_continue
    output_key: fast_verdict
    next: slow
  slow:
    type: eval
    scorers: [{type: latency, threshold_ms: 60000}, {type: cost, threshold_usd: 5}]
    output_key: slow_verdict
"""
    result = await run(client, task_queue, text, {"m": marker})
    fast = result.state["fast_verdict"]
    slow = result.state["slow_verdict"]
    assert isinstance(fast, dict) and isinstance(slow, dict)
    assert fast["passed"] is False and slow["passed"] is True
    latency, cost = fast["scores"]  # type: ignore[misc]
    assert latency["passed"] is False and latency["score"] >= 300
    # The run's model spend, priced like budgets: above a millionth of a dollar, under $5.
    assert cost["passed"] is False and 0.000001 < cost["score"] < 5


# ------------------------------------------------------------------------------------------
# agent


async def test_agent_node_runs_the_agents_tools_under_its_allow_list(
    client: Client, task_queue: str, model_server: ModelServer
) -> None:
    marker = uuid.uuid4().hex
    model_server.add_rules(
        [
            ScriptRule(
                marker=marker,
                responses=[
                    ScriptResponse(
                        tool_calls=[
                            ScriptToolCall(name="nodes.bump", arguments={"n": 40, "by": 2}),
                            ScriptToolCall(name="nodes.note", arguments={"text": "sneaky"}),
                        ]
                    ),
                    ScriptResponse(content="the answer is 42"),
                ],
            )
        ]
    )
    text = """
workflow: {id: ag}
nodes:
  ask:
    type: agent
    agent_ref: nodes.researcher
    prompt: "count for {{ state.m }}"
    output_key: answer
"""
    CALLS.clear()
    result = await run(client, task_queue, text, {"m": marker})
    assert result.state["answer"] == "the answer is 42"
    assert ("bump", 40) in CALLS
    assert not any(name == "note" for name, _ in CALLS)  # not in the agent's allow-list
    first = calls_with(model_server, marker)[0]
    assert first["messages"][0] == {"role": "system", "content": "You are a careful researcher."}
    assert [t["function"]["name"] for t in first["tools"]] == ["nodes.bump"]
    replies = [m for m in calls_with(model_server, marker)[1]["messages"] if m["role"] == "tool"]
    assert replies[1]["content"] == "tool unavailable; pick another"


# ------------------------------------------------------------------------------------------
# state schema


async def test_state_schema_defaults_fill_the_state_and_required_input_is_enforced_in_the_run(
    client: Client, task_queue: str
) -> None:
    text = """
workflow:
  id: s
  state_schema:
    type: object
    properties:
      n: {type: integer, default: 4}
      who: {type: string}
    required: [who]
nodes:
  add: {type: tool, tool: nodes.bump, arguments: {n: "{{ state.n }}"}, output_key: n}
"""
    result = await run(client, task_queue, text, {"who": "me"})
    assert result.state == {"who": "me", "n": 5}
    # A client that skipped jamjet run's check is refused by the run itself, before any node.
    cause = await failure(client, task_queue, text, {"n": "x"})
    assert cause.type == "PipelineInputError"
    assert (
        "missing required input 'who'" in cause.message and "'n' must be integer" in cause.message
    )
    assert '--input \'{"who": "..."}\'' in cause.message
