"""``PipelineWorkflow``: interprets a validated ``PipelineSpec``, one activity per node.

Runs inside the workflow sandbox. Every routing decision is a pure function of the spec, the
input and the results recorded in history, so a replay takes exactly the same path.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from jamjet_temporal._shared._activity import NON_RETRYABLE_ERROR_TYPES
from jamjet_temporal._shared._wire import CHAT_ACTIVITY, PIPELINE_WORKFLOW
from jamjet_temporal.errors import PipelineRuntimeError
from jamjet_temporal.gate._workflow import named_arguments, policy_scope
from jamjet_temporal.llm._types import ChatRequest, ChatResult
from jamjet_temporal.pipeline._expr import evaluate_condition
from jamjet_temporal.pipeline._spec import (
    ConditionNode,
    Edge,
    EndNode,
    ModelNode,
    PipelineSpec,
    RetrySpec,
    ToolNode,
)
from jamjet_temporal.pipeline._template import render, render_value


class ToolSignature(BaseModel):
    """How a tool (an activity) takes its arguments: positionally, in this order.

    Attributes:
        params: Parameter names in order.
        required: How many leading parameters have no default.
    """

    model_config = ConfigDict(frozen=True)

    params: list[str]
    required: int


class PipelineRun(BaseModel):
    """The input of one pipeline execution.

    Attributes:
        spec: The validated pipeline.
        input: Initial pipeline state (``{{ state.x }}`` reads from it).
        tool_params: For each tool the pipeline calls, its parameter names in order: tools are
            activities, which take positional arguments, while YAML names them.
    """

    model_config = ConfigDict(frozen=True)

    spec: PipelineSpec
    input: dict[str, JsonValue] = Field(default_factory=dict)
    tool_params: dict[str, ToolSignature] = Field(default_factory=dict)


class NodeRecord(BaseModel):
    """One node visit, as the workflow saw it."""

    node: str
    label: str
    type: str
    activity_id: str | None
    started_at: datetime
    finished_at: datetime


class PipelineResult(BaseModel):
    """What a pipeline returns."""

    output: JsonValue
    state: dict[str, JsonValue]
    nodes: list[NodeRecord]


def _retry(spec: RetrySpec) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=spec.initial_interval_seconds),
        backoff_coefficient=spec.backoff,
        maximum_interval=timedelta(seconds=spec.max_interval_seconds),
        maximum_attempts=spec.max_attempts,
        non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES),
    )


def next_node(
    node_id: str, target: str | list[Edge] | None, state: dict[str, JsonValue]
) -> str | None:
    """The node that follows ``node_id``: the first edge whose condition holds, in order."""
    if target is None or isinstance(target, str):
        return target
    for edge in target:
        if edge.when is None or evaluate_condition(edge.when, state):
            return edge.to
    raise PipelineRuntimeError(
        "no outgoing edge matched the state; add a final edge without 'when' as the default",
        node=node_id,
    )


@workflow.defn(name=PIPELINE_WORKFLOW)
class PipelineWorkflow:
    """Runs a YAML pipeline: model and tool nodes as activities, conditions in the workflow."""

    @workflow.run
    async def run(self, request: PipelineRun) -> PipelineResult:
        spec = request.spec
        meta = spec.workflow
        state: dict[str, JsonValue] = dict(request.input)
        records: list[NodeRecord] = []
        visits: dict[str, int] = {}
        node_id: str | None = meta.start
        output: JsonValue = None
        while node_id is not None:
            if len(records) >= meta.max_steps:
                raise PipelineRuntimeError(
                    f"the pipeline took more than workflow.max_steps={meta.max_steps} steps; "
                    "check the loop's exit condition or raise max_steps",
                    node=node_id,
                )
            node = spec.nodes[node_id]
            visits[node_id] = visits.get(node_id, 0) + 1
            # Stable and unique per visit: the CLI maps history back to nodes through it, and it
            # feeds the idempotency key, so it must not depend on anything but the path taken.
            activity_id = f"{node_id}#{visits[node_id]}"
            label = node.label or node_id
            started = workflow.now()
            if isinstance(node, EndNode):
                output = state if node.output is None else state.get(node.output)
                records.append(
                    NodeRecord(
                        node=node_id,
                        label=label,
                        type=node.type,
                        activity_id=None,
                        started_at=started,
                        finished_at=started,
                    )
                )
                break
            options: dict[str, Any] = {
                "activity_id": activity_id,
                "summary": label,
                "start_to_close_timeout": timedelta(seconds=node.timeout_seconds),
                "heartbeat_timeout": timedelta(
                    seconds=node.heartbeat_timeout_seconds or meta.heartbeat_timeout_seconds
                ),
                "retry_policy": _retry(node.retry or meta.retry),
            }
            try:
                with (
                    policy_scope("workflow", spec.policy),
                    policy_scope(f"node:{node_id}", getattr(node, "policy", None)),
                ):
                    result = await self._execute(node_id, node, state, options, request)
            except ActivityError as err:
                cause = err.cause
                reason = str(cause) if cause is not None else str(err)
                if isinstance(cause, ApplicationError) and cause.type:
                    reason = f"{cause.type}: {cause.message}"
                raise PipelineRuntimeError(
                    f"{label} failed after retries: {reason}", node=node_id
                ) from err
            if not isinstance(node, ConditionNode):
                if node.output_key:
                    state[node.output_key] = result
                output = result
            records.append(
                NodeRecord(
                    node=node_id,
                    label=label,
                    type=node.type,
                    activity_id=None if isinstance(node, ConditionNode) else activity_id,
                    started_at=started,
                    finished_at=workflow.now(),
                )
            )
            node_id = next_node(node_id, node.next, state)
        return PipelineResult(output=output, state=state, nodes=records)

    async def _execute(
        self,
        node_id: str,
        node: ModelNode | ToolNode | ConditionNode,
        state: dict[str, JsonValue],
        options: dict[str, Any],
        request: PipelineRun,
    ) -> JsonValue:
        if isinstance(node, ModelNode):
            messages: list[dict[str, JsonValue]] = []
            if node.system:
                messages.append(
                    {"role": "system", "content": render(node.system, state, node=node_id)}
                )
            messages.append({"role": "user", "content": render(node.prompt, state, node=node_id)})
            chat: ChatResult = await workflow.execute_activity(
                CHAT_ACTIVITY,
                ChatRequest(
                    model=node.model or request.spec.workflow.model,
                    messages=messages,
                    max_tokens=node.max_tokens,
                ),
                result_type=ChatResult,
                **options,
            )
            return chat.content
        if isinstance(node, ToolNode):
            args = render_value(dict(node.arguments), state, node=node_id)
            assert isinstance(args, dict)
            with named_arguments(args):
                handle = workflow.start_activity(
                    node.tool,
                    args=self._positional(node_id, node.tool, args, request.tool_params),
                    **options,
                )
            return cast(JsonValue, await handle)
        return None

    @staticmethod
    def _positional(
        node_id: str, tool: str, args: dict[str, JsonValue], params: dict[str, ToolSignature]
    ) -> list[JsonValue]:
        signature = params.get(tool)
        if signature is None:
            raise PipelineRuntimeError(
                f"tool '{tool}' has no registered signature; start the run with the tool "
                "registered (jamjet run --tools MODULE)",
                node=node_id,
            )
        names = signature.params
        unknown = sorted(set(args) - set(names))
        if unknown:
            raise PipelineRuntimeError(
                f"tool '{tool}' takes arguments {names}; it has no {unknown}", node=node_id
            )
        # Positional: every parameter up to the last one given must be given.
        given = max([names.index(name) + 1 for name in args] + [signature.required])
        missing = [name for name in names[:given] if name not in args]
        if missing:
            raise PipelineRuntimeError(f"tool '{tool}' needs arguments {missing}", node=node_id)
        return [args[name] for name in names[:given]]
