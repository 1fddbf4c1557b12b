"""``PipelineWorkflow`` on the real dev server: routing, templating, tools, model nodes."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from jamjet_temporal import task
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule
from jamjet_temporal.pipeline import (
    PIPELINE_WORKFLOW,
    PipelineResult,
    PipelineRun,
    parse_pipeline,
)
from jamjet_temporal.pipeline._workflow import ToolSignature


@task(name="test.bump")
async def bump(n: int, by: int = 1) -> int:
    return n + by


@task(name="test.join")
async def join(items: list[str], sep: str) -> str:
    return sep.join(items)


SIGS = {
    "test.bump": ToolSignature(params=["n", "by"], required=1),
    "test.join": ToolSignature(params=["items", "sep"], required=2),
}

LOOP = """
workflow: {id: loop, start: draft}
nodes:
  draft:
    type: tool
    tool: test.bump
    arguments: {n: "{{ state.n }}"}
    output_key: n
    next: check
  check:
    type: condition
    next:
      - {to: done, when: "state.n >= 3"}
      - {to: draft}
  done: {type: end, output: n}
"""


async def run(
    client: Client, queue: str, yaml_text: str, state: dict[str, object]
) -> PipelineResult:
    spec = parse_pipeline(yaml_text, "test.yaml")
    async with Worker(client, task_queue=queue, activities=[bump, join]):
        return await client.execute_workflow(
            PIPELINE_WORKFLOW,
            PipelineRun(spec=spec, input=state, tool_params=SIGS),  # type: ignore[arg-type]
            id=f"pipe-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
            result_type=PipelineResult,
        )


async def test_condition_loops_until_true_with_one_activity_per_visit(
    client: Client, task_queue: str
) -> None:
    result = await run(client, task_queue, LOOP, {"n": 0})
    assert result.output == 3
    visits = [r.activity_id for r in result.nodes if r.node == "draft"]
    assert visits == ["draft#1", "draft#2", "draft#3"]
    assert [r.node for r in result.nodes][-2:] == ["check", "done"]


async def test_max_steps_stops_a_runaway_loop_with_a_typed_failure(
    client: Client, task_queue: str
) -> None:
    text = LOOP.replace("{id: loop, start: draft}", "{id: loop, start: draft, max_steps: 4}")
    with pytest.raises(WorkflowFailureError) as info:
        await run(client, task_queue, text, {"n": -100})
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "PipelineRuntimeError"
    assert "max_steps=4" in cause.message


async def test_missing_state_key_fails_the_run_naming_node_and_key(
    client: Client, task_queue: str
) -> None:
    with pytest.raises(WorkflowFailureError) as info:
        await run(client, task_queue, LOOP, {"m": 1})
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "TemplateError"
    assert "draft" in cause.message and "n" in cause.message


async def test_tool_arguments_keep_types_and_defaults_apply(
    client: Client, task_queue: str
) -> None:
    text = """
workflow: {id: args, start: a}
nodes:
  a: {type: tool, tool: test.bump, arguments: {n: "{{ state.n }}", by: 10}, output_key: n, next: b}
  b: {type: tool, tool: test.join, arguments: {items: "{{ state.words }}", sep: "-"},
      output_key: joined}
"""
    result = await run(client, task_queue, text, {"n": 1, "words": ["a", "b"]})
    assert result.state["n"] == 11
    assert result.state["joined"] == "a-b"


async def test_model_node_answer_lands_in_state(
    client: Client, task_queue: str, model_server: ModelServer
) -> None:
    marker = uuid.uuid4().hex
    model_server.add_rules(
        [ScriptRule(marker=marker, responses=[ScriptResponse(content="scripted answer")])]
    )
    text = """
workflow: {id: m, start: ask}
nodes:
  ask:
    type: model
    system: "be brief"
    prompt: "question {{ state.marker }}"
    output_key: answer
"""
    result = await run(client, task_queue, text, {"marker": marker})
    assert result.state["answer"] == "scripted answer"
    call = next(c for c in model_server.calls() if marker in str(c["messages"]))
    assert call["model"] == "gpt-4o-mini"
    assert call["messages"][0] == {"role": "system", "content": "be brief"}
