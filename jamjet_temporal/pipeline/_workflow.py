"""``PipelineWorkflow``: interprets a validated ``PipelineSpec``, one activity per working node.

Runs inside the workflow sandbox. Every routing decision is a pure function of the spec, the
input, the events received and the results recorded in history, so a replay takes exactly the
same path. Model, tool, MCP, A2A and judge calls are activities; conditions, waits, approvals
and the scoring arithmetic run in the workflow.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from jamjet_temporal._shared._activity import NON_RETRYABLE_ERROR_TYPES
from jamjet_temporal._shared._details import event_line, show
from jamjet_temporal._shared._wire import (
    CHAT_ACTIVITY,
    PIPELINE_EVENT_SIGNAL,
    PIPELINE_NODES_QUERY,
    PIPELINE_WAITING_QUERY,
    PIPELINE_WORKFLOW,
)
from jamjet_temporal.budget._ledger import Budget
from jamjet_temporal.budget._workflow import budget_scope
from jamjet_temporal.errors import (
    ApprovalRejectedError,
    ApprovalTimeoutError,
    EvalFailedError,
    EventTimeoutError,
    GateError,
    PipelineInputError,
    PipelineRuntimeError,
)
from jamjet_temporal.gate._workflow import named_arguments, policy_scope
from jamjet_temporal.llm._types import ChatRequest, ChatResult
from jamjet_temporal.pipeline._expr import evaluate_condition
from jamjet_temporal.pipeline._nodes import (
    END,
    A2ATaskNode,
    AgentNode,
    AssertionScorer,
    ConditionNode,
    CostScorer,
    Edge,
    EndNode,
    EvalNode,
    HumanApprovalNode,
    JudgeScorer,
    LatencyScorer,
    McpToolNode,
    ModelNode,
    NodeBase,
    ParallelNode,
    RetrySpec,
    ToolNode,
    WaitNode,
)
from jamjet_temporal.pipeline._spec import PipelineSpec
from jamjet_temporal.pipeline._state import (
    apply_defaults,
    input_example,
    missing_required,
    type_problems,
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


class AgentTool(BaseModel):
    """One tool an agent node may call: its activity name, signature and OpenAI schema."""

    model_config = ConfigDict(frozen=True)

    name: str
    signature: ToolSignature
    schema_: dict[str, JsonValue] = Field(alias="schema")


class AgentSpec(BaseModel):
    """An ``@task(tools=...)`` agent as an ``agent`` node runs it: its tools and instructions."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    name: str
    tools: list[AgentTool]
    instructions: str | None = None


class PipelineRun(BaseModel):
    """The input of one pipeline execution.

    Attributes:
        spec: The validated pipeline.
        input: Initial pipeline state (``{{ state.x }}`` reads from it); the state schema's
            defaults fill what it leaves out.
        tool_params: For each tool the pipeline calls, its parameter names in order: tools are
            activities, which take positional arguments, while YAML names them.
        agents: The agents ``agent`` nodes name, with their tools.
    """

    model_config = ConfigDict(frozen=True)

    spec: PipelineSpec
    input: dict[str, JsonValue] = Field(default_factory=dict)
    tool_params: dict[str, ToolSignature] = Field(default_factory=dict)
    agents: dict[str, AgentSpec] = Field(default_factory=dict)


class PipelineEvent(BaseModel):
    """An external event for a ``wait`` node (the ``jamjet.pipeline.event`` signal).

    Attributes:
        event: The event's name (the wait node's ``event``).
        data: JSON object merged into the state.
        sender: Who sent it, as the sender states it (recorded in the audit trail).
    """

    model_config = ConfigDict(frozen=True)

    event: str
    data: dict[str, JsonValue] = Field(default_factory=dict)
    sender: str | None = None


class NodeRecord(BaseModel):
    """One node visit, as the workflow saw it."""

    node: str
    label: str
    type: str
    activity_id: str | None
    started_at: datetime
    finished_at: datetime
    outcome: Literal["ok", "failed", "timed out", "rejected", "retrying", "canceled"] = "ok"
    detail: str | None = None


class PipelineResult(BaseModel):
    """What a pipeline returns."""

    output: JsonValue
    state: dict[str, JsonValue]
    nodes: list[NodeRecord]


def _retry(spec: RetrySpec) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=spec.initial_seconds),
        backoff_coefficient=spec.backoff,
        maximum_interval=timedelta(seconds=spec.max_seconds),
        maximum_attempts=spec.max_attempts,
        non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES),
    )


def next_node(
    node_id: str, target: str | list[Edge] | None, state: dict[str, JsonValue]
) -> str | None:
    """The node that follows ``node_id``: the first edge whose condition holds, in order."""
    if target is None or isinstance(target, str):
        return target  # `end` with no node of that name ends the walk (see _walk)
    return _first_match(node_id, target, state)


def _first_match(node_id: str, edges: list[Edge], state: dict[str, JsonValue]) -> str | None:
    for edge in edges:
        if edge.when is None or evaluate_condition(edge.when, state, node=node_id):
            return edge.to
    raise PipelineRuntimeError(
        "no route matched the state; add a `default:` (or a last edge without `when`)",
        node=node_id,
    )


def _failure_reason(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return f"{cause.type}: {cause.message}"
    return str(cause) if cause is not None else str(err)


_SCORE_RE = re.compile(r"(?i)\bscore\b\W{0,3}(\d+(?:\.\d+)?)")


@workflow.defn(name=PIPELINE_WORKFLOW)
class PipelineWorkflow:
    """Runs a YAML pipeline: JamJet's node types on Temporal."""

    def __init__(self) -> None:
        self._events: list[PipelineEvent] = []
        self._waiting: list[str] = []
        self._feedback: dict[str, str] = {}
        self._steps = 0
        self._visits: dict[str, int] = {}
        self._records: list[NodeRecord] = []
        self._last_work: str | None = None

    @workflow.signal(name=PIPELINE_EVENT_SIGNAL)
    def event(self, event: PipelineEvent) -> None:
        """An external event: kept until a ``wait`` node for it takes it (none is lost)."""
        self._events.append(event)

    @workflow.query(name=PIPELINE_WAITING_QUERY)
    def waiting(self) -> list[str]:
        """The events the run waits for now."""
        return list(self._waiting)

    @workflow.query(name=PIPELINE_NODES_QUERY)
    def visited(self) -> list[NodeRecord]:
        """The node visits so far (also of a failed run: the CLI counts them)."""
        return list(self._records)

    @workflow.run
    async def run(self, request: PipelineRun) -> PipelineResult:
        spec = request.spec
        self._request = request
        state = apply_defaults(spec.workflow.state_schema, request.input)
        self._check_input(state)
        output: JsonValue = None
        with policy_scope("workflow", spec.policy), budget_scope("pipeline", _run_budget(spec)):
            output, state = await self._walk(spec.start, state, stop_at=None)
        return PipelineResult(output=output, state=state, nodes=self._records)

    def _check_input(self, state: dict[str, JsonValue]) -> None:
        schema = self._request.spec.workflow.state_schema
        missing = missing_required(schema, state)
        problems = [f"missing required input '{name}'" for name in missing]
        problems += type_problems(schema, state)
        if problems:
            example = json.dumps(input_example(schema, missing or list(state)))
            raise PipelineInputError("; ".join(problems) + f" (start it with --input '{example}')")

    # ----------------------------------------------------------------------------------------
    # the walk

    async def _walk(
        self, start: str, state: dict[str, JsonValue], *, stop_at: str | None
    ) -> tuple[JsonValue, dict[str, JsonValue]]:
        """Runs nodes from ``start`` until an end (or ``stop_at``, for a parallel branch)."""
        spec = self._request.spec
        node_id: str | None = start
        output: JsonValue = None
        while node_id is not None and node_id != stop_at:
            self._steps += 1
            if self._steps > spec.workflow.max_steps:
                raise PipelineRuntimeError(
                    f"the pipeline took more than workflow.max_steps={spec.workflow.max_steps} "
                    "steps; check the loop's exit condition or raise max_steps",
                    node=node_id,
                )
            if node_id == END and node_id not in spec.nodes:
                break
            node = spec.nodes[node_id]
            self._visits[node_id] = self._visits.get(node_id, 0) + 1
            # Stable and unique per visit: the CLI maps history back to nodes through it, and
            # it feeds the idempotency key, so it depends on nothing but the path taken.
            activity_id = f"{node_id}#{self._visits[node_id]}"
            started = workflow.now()
            if isinstance(node, EndNode):
                output = state if node.output is None else state.get(node.output)
                self._record(node_id, node.label, node.type, None, started)
                return output, state
            try:
                with policy_scope(f"node:{node_id}", node.policy):
                    result, following = await self._step(node_id, node, state, activity_id)
            except ActivityError as err:
                if is_cancelled_exception(err):
                    # The run was cancelled (`jamjet run --cancel-on-interrupt`, `temporal
                    # workflow cancel`): left as it is, Temporal closes it as canceled.
                    self._record(node_id, node.label, node.type, activity_id, started, "canceled")
                    raise
                self._record(node_id, node.label, node.type, activity_id, started, "failed")
                label = node.label or node_id
                raise PipelineRuntimeError(
                    f"{label} failed after retries: {_failure_reason(err)}", node=node_id
                ) from err
            except PipelineRuntimeError as err:
                self._record(node_id, node.label, node.type, None, started, "failed", err.reason)
                raise
            except GateError as err:
                self._record(node_id, node.label, node.type, None, started, "failed", str(err))
                raise
            works = not isinstance(node, ConditionNode | WaitNode | HumanApprovalNode)
            self._record(
                node_id,
                node.label,
                node.type,
                activity_id if works and not isinstance(node, ParallelNode | EvalNode) else None,
                started,
                result.outcome if isinstance(result, _Outcome) else "ok",
                result.detail if isinstance(result, _Outcome) else None,
            )
            if isinstance(result, _Outcome):
                result = result.value
            key = getattr(node, "output_key", None)
            if key and result is not _NOTHING:
                state[key] = cast(JsonValue, result)
            if result is not _NOTHING and not isinstance(node, EvalNode):
                output = cast(JsonValue, result)
            if isinstance(node, ModelNode | AgentNode):
                self._last_work = node_id
            node_id = following(state) if callable(following) else following
        return output, state

    def _record(
        self,
        node_id: str,
        label: str | None,
        kind: str,
        activity_id: str | None,
        started: datetime,
        outcome: Literal["ok", "failed", "timed out", "rejected", "retrying", "canceled"] = "ok",
        detail: str | None = None,
    ) -> None:
        self._records.append(
            NodeRecord(
                node=node_id,
                label=label or node_id,
                type=kind,
                activity_id=activity_id,
                started_at=started,
                finished_at=workflow.now(),
                outcome=outcome,
                detail=detail,
            )
        )

    def _options(self, node_id: str, node: NodeBase, activity_id: str) -> dict[str, Any]:
        spec = self._request.spec
        heartbeat = (
            node.heartbeat_timeout_seconds
            or spec.timeouts.heartbeat_interval
            or spec.workflow.heartbeat_timeout_seconds
        )
        return {
            "activity_id": activity_id,
            "summary": node.label or node_id,
            "start_to_close_timeout": timedelta(
                seconds=node.timeout_seconds or spec.timeouts.node_timeout
            ),
            "heartbeat_timeout": timedelta(seconds=heartbeat),
            "retry_policy": _retry(spec.retry_for(node)),
        }

    async def _step(
        self, node_id: str, node: NodeBase, state: dict[str, JsonValue], activity_id: str
    ) -> tuple[object, Any]:
        """Runs one node: (its result or ``_NOTHING``, the next node id or a router of state)."""
        default_next = node.next

        def follow(current: dict[str, JsonValue]) -> str | None:
            return next_node(node_id, default_next, current)

        if isinstance(node, ModelNode):
            return await self._model(node_id, node, state, activity_id), follow
        if isinstance(node, ToolNode) and node.server is None:
            return await self._tool(node_id, node, state, activity_id), follow
        if isinstance(node, ToolNode | McpToolNode):
            return await self._mcp(node_id, node, state, activity_id), follow
        if isinstance(node, A2ATaskNode):
            return await self._a2a(node_id, node, state, activity_id), follow
        if isinstance(node, AgentNode):
            return await self._agent(node_id, node, state, activity_id), follow
        if isinstance(node, ConditionNode):
            edges = [edge for edge, _ in node.routes()]
            return _NOTHING, _first_match(node_id, edges, state)
        if isinstance(node, ParallelNode):
            return await self._parallel(node_id, node, state)
        if isinstance(node, WaitNode):
            return await self._wait(node_id, node, state, follow)
        if isinstance(node, HumanApprovalNode):
            return await self._approval(node_id, node, state, follow)
        if isinstance(node, EvalNode):
            return await self._eval(node_id, node, state, activity_id, follow)
        raise PipelineRuntimeError(
            f"node type '{getattr(node, 'type', '?')}' cannot run here", node=node_id
        )

    # ----------------------------------------------------------------------------------------
    # working nodes

    async def _model(
        self, node_id: str, node: ModelNode, state: dict[str, JsonValue], activity_id: str
    ) -> JsonValue:
        spec = self._request.spec
        model, alias = spec.model_for(node.model)
        messages: list[dict[str, JsonValue]] = []
        if node.system:
            messages.append({"role": "system", "content": render(node.system, state, node=node_id)})
        messages.append({"role": "user", "content": render(node.prompt, state, node=node_id)})
        feedback = self._feedback.pop(node_id, None)
        if feedback:
            messages.append(
                {
                    "role": "user",
                    "content": "An evaluation of your previous answer found problems; "
                    f"answer again and fix them:\n{feedback}",
                }
            )
        chat: ChatResult = await workflow.execute_activity(
            CHAT_ACTIVITY,
            ChatRequest(
                model=model,
                messages=messages,
                max_tokens=node.max_tokens or (alias.max_tokens if alias else None),
                temperature=node.temperature
                if node.temperature is not None
                else (alias.temperature if alias else None),
                response_schema=node.output_schema,
                response_schema_name=re.sub(r"[^A-Za-z0-9_-]", "_", node_id)[:64],
            ),
            result_type=ChatResult,
            **self._options(node_id, node, activity_id),
        )
        if node.output_schema is None:
            return chat.content
        try:
            return cast(JsonValue, json.loads(chat.content or ""))
        except json.JSONDecodeError:
            raise PipelineRuntimeError(
                f"the model's answer is not the JSON its output_schema asks for: "
                f"{(chat.content or '')[:200]!r}",
                node=node_id,
            ) from None

    async def _tool(
        self, node_id: str, node: ToolNode, state: dict[str, JsonValue], activity_id: str
    ) -> JsonValue:
        args = render_value(dict(node.arguments), state, node=node_id)
        assert isinstance(args, dict)
        with named_arguments(lambda: args):
            handle = workflow.start_activity(
                node.tool,
                args=self._positional(node_id, node.tool, args),
                **self._options(node_id, node, activity_id),
            )
        return cast(JsonValue, await handle)

    async def _mcp(
        self,
        node_id: str,
        node: ToolNode | McpToolNode,
        state: dict[str, JsonValue],
        activity_id: str,
    ) -> JsonValue:
        from jamjet_temporal.mcp._workflow import call_tool

        assert node.server is not None
        args = render_value(dict(node.arguments), state, node=node_id)
        assert isinstance(args, dict)
        return await call_tool(
            node.server, node.tool, args, **self._options(node_id, node, activity_id)
        )

    async def _a2a(
        self, node_id: str, node: A2ATaskNode, state: dict[str, JsonValue], activity_id: str
    ) -> JsonValue:
        from jamjet_temporal.a2a._workflow import delegate

        spec = self._request.spec
        target = render(node.remote_agent, state, node=node_id)
        message = render_value(node.input, state, node=node_id)
        return await delegate(
            target,
            skill=node.skill,
            input=message,
            agents=spec.remote_agents,
            **self._options(node_id, node, activity_id),
        )

    async def _agent(
        self, node_id: str, node: AgentNode, state: dict[str, JsonValue], activity_id: str
    ) -> JsonValue:
        from jamjet_temporal.authoring._agent import run_tools
        from jamjet_temporal.policy import Policy

        agent = self._request.agents.get(node.agent_ref)
        if agent is None:
            raise PipelineRuntimeError(
                f"agent '{node.agent_ref}' was not registered with the run (define it with "
                "@task(tools=[...]) in the tools module)",
                node=node_id,
            )
        if node.prompt is not None:
            prompt = render(node.prompt, state, node=node_id)
        else:
            given = render_value(node.input, state, node=node_id) if node.input else state
            prompt = given if isinstance(given, str) else json.dumps(given, sort_keys=True)
        feedback = self._feedback.pop(node_id, None)
        if feedback:
            prompt += f"\n\nAn evaluation of your previous answer found problems:\n{feedback}"
        system = render(node.system, state, node=node_id) if node.system else agent.instructions
        model, _ = self._request.spec.model_for(node.model)
        allow = Policy.allow_list(
            [tool.name for tool in agent.tools], source=f"@task(tools=...) of '{agent.name}'"
        )
        with policy_scope(f"agent:{agent.name}", allow, agent=agent.name):
            result = await run_tools(
                prompt,
                [(t.name, t.schema_, t.signature.params) for t in agent.tools],
                model=model,
                system=system,
                max_turns=node.max_turns,
                options=self._options(node_id, node, activity_id),
            )
        return result.output

    def _positional(self, node_id: str, tool: str, args: dict[str, JsonValue]) -> list[JsonValue]:
        signature = self._request.tool_params.get(tool)
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

    # ----------------------------------------------------------------------------------------
    # parallel

    async def _parallel(
        self, node_id: str, node: ParallelNode, state: dict[str, JsonValue]
    ) -> tuple[object, str | None]:
        join = node.join or (node.next if isinstance(node.next, str) else None)
        fork = dict(state)

        async def branch(start: str) -> dict[str, JsonValue]:
            _, final = await self._walk(start, dict(fork), stop_at=join)
            return final

        outcomes = await asyncio.gather(
            *(branch(start) for start in node.branches), return_exceptions=True
        )
        report: dict[str, JsonValue] = {}
        failures: list[tuple[str, BaseException]] = []
        for start, outcome in zip(node.branches, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome  # cancellation: never swallowed
                failures.append((start, outcome))
                report[start] = f"failed: {outcome}"
                continue
            report[start] = "ok"
            for key, value in outcome.items():
                if key not in fork or fork[key] != value:
                    state[key] = value
        if failures and node.on_branch_failure == "fail":
            start, error = failures[0]
            if isinstance(error, PipelineRuntimeError | GateError):
                raise error
            raise PipelineRuntimeError(f"branch '{start}' failed: {error}", node=node_id)
        detail = None if not failures else f"{len(failures)} branch(es) failed, continuing"
        written: object = report if node.output_key else _NOTHING
        return _Outcome(written, "ok", detail), join

    # ----------------------------------------------------------------------------------------
    # waiting for people and events

    async def _wait(
        self, node_id: str, node: WaitNode, state: dict[str, JsonValue], follow: Any
    ) -> tuple[object, Any]:
        def arrived() -> PipelineEvent | None:
            for index, event in enumerate(self._events):
                if event.event == node.event:
                    return self._events.pop(index)
            return None

        found: list[PipelineEvent] = []

        def ready() -> bool:
            event = arrived()
            if event is not None:
                found.append(event)
            return bool(found)

        self._waiting.append(node.event)
        seconds = node.deadline_seconds
        until = None if seconds is None else workflow.now() + timedelta(seconds=seconds)
        shown = show(event_line(node_id, node.event, until))  # the run's Web UI says what it awaits
        try:
            deadline = node.deadline_seconds
            try:
                await workflow.wait_condition(
                    ready,
                    timeout=None if deadline is None else timedelta(seconds=deadline),
                    timeout_summary=f"wait for event '{node.event}'",
                )
            except TimeoutError:
                await self._record_event(node_id, node.event, None, timed_out=True)
                if node.on_timeout is None:
                    raise EventTimeoutError(
                        f"no '{node.event}' event within {deadline:g} s and no on_timeout",
                        node=node_id,
                    ) from None
                target = node.on_timeout
                return _Outcome(_NOTHING, "timed out", f"no '{node.event}' event"), target
        finally:
            self._waiting.remove(node.event)
            show(None, instead_of=shown)
        event = found[0]
        await self._record_event(node_id, node.event, event, timed_out=False)
        if node.output_key:
            return dict(event.data), follow
        state.update(event.data)
        return _Outcome(_NOTHING, "ok", f"'{node.event}' from {event.sender or '?'}"), follow

    async def _record_event(
        self, node_id: str, name: str, event: PipelineEvent | None, *, timed_out: bool
    ) -> None:
        from jamjet_temporal.audit._types import AuditEvent, event_id
        from jamjet_temporal.gate._workflow import current_gate

        gate = current_gate()
        if gate is None:
            return
        info = workflow.info()
        visit = str(self._visits.get(node_id, 0))
        kind = "pipeline.event_timeout" if timed_out else "pipeline.event"
        data: dict[str, JsonValue] = {"node": node_id, "event": name}
        if event is not None:
            data["sender"] = event.sender
            data["data"] = event.data
        await gate.record(
            [
                AuditEvent(
                    id=event_id(info.workflow_id, info.run_id, kind, node_id, visit),
                    run_id=info.workflow_id,
                    workflow_run_id=info.run_id,
                    kind=kind,
                    at=workflow.now(),
                    actor={**gate.actor(), "sender": event.sender if event else None},
                    data=data,
                )
            ]
        )

    async def _approval(
        self, node_id: str, node: HumanApprovalNode, state: dict[str, JsonValue], follow: Any
    ) -> tuple[object, Any]:
        from jamjet_temporal.authoring._guard import requires_approval

        spec = self._request.spec
        shown = render_value(dict(node.arguments), state, node=node_id)
        assert isinstance(shown, dict)
        if node.description:
            shown = {"description": render(node.description, state, node=node_id), **shown}
        seconds = node.timeout_seconds or spec.timeouts.approval_timeout
        try:
            decision = await requires_approval(
                node.action or node_id,
                timeout=None if seconds is None else timedelta(seconds=seconds),
                **shown,
            )
        except ApprovalRejectedError as err:
            if node.on_reject is None:
                raise
            value = {"approved": False, "reason": err.reason}
            target = node.on_reject
            return _Outcome(value if node.output_key else _NOTHING, "rejected", err.reason), target
        except ApprovalTimeoutError as err:
            if node.fallback is None:
                raise
            value = {"approved": False, "reason": err.reason}
            target = node.fallback
            outcome = _Outcome(value if node.output_key else _NOTHING, "timed out", err.reason)
            return outcome, target
        value = {
            "approved": True,
            "approved_by": list(decision.approved_by),
            "comments": list(decision.comments),
            "approval_id": decision.approval_id,
        }
        detail = f"approved by {', '.join(decision.approved_by)}"
        if node.on_approve is not None:
            target = node.on_approve
            return _Outcome(value if node.output_key else _NOTHING, "ok", detail), target
        return _Outcome(value if node.output_key else _NOTHING, "ok", detail), follow

    # ----------------------------------------------------------------------------------------
    # evaluation

    async def _eval(
        self,
        node_id: str,
        node: EvalNode,
        state: dict[str, JsonValue],
        activity_id: str,
        follow: Any,
    ) -> tuple[object, Any]:
        target = node.retry_node or self._last_work
        if node.input is not None:
            output: JsonValue = _value_of(node.input, state, node_id)
        elif target is not None and self._key_of(target) in state:
            output = state[self._key_of(target)]
        else:
            output = None
        results: list[dict[str, JsonValue]] = []
        judge_scores: list[float] = []
        for index, scorer in enumerate(node.scorers):
            passed, score, note = await self._score(
                node_id, node, index, scorer, state, output, activity_id, target
            )
            if isinstance(scorer, JudgeScorer) and score is not None:
                judge_scores.append(score)
            results.append({"scorer": scorer.type, "passed": passed, "score": score, "note": note})
        failed = [r for r in results if not r["passed"]]
        mean = sum(judge_scores) / len(judge_scores) if judge_scores else None
        if node.fail_under is not None and mean is not None and mean < node.fail_under:
            failed.append(
                {
                    "scorer": "fail_under",
                    "passed": False,
                    "score": mean,
                    "note": f"mean judge score {mean:g} is under {node.fail_under:g}",
                }
            )
        attempts = self._visits.get(node_id, 1)
        summary: dict[str, JsonValue] = {
            "passed": not failed,
            "scores": cast(JsonValue, results),
            "mean_score": mean,
            "attempt": attempts,
        }
        value: object = summary if node.output_key else _NOTHING
        if not failed:
            return _Outcome(value, "ok", None), follow
        feedback = "\n".join(f"- {r['scorer']}: {r['note']}" for r in failed)
        if node.on_fail == "log_and_continue":
            return _Outcome(value, "failed", f"continuing: {feedback}"), follow
        if node.on_fail == "escalate":
            escalate = node.escalate_to or self._request.spec.workflow.escalate
            return _Outcome(value, "failed", f"escalated: {feedback}"), escalate
        if node.on_fail == "retry_with_feedback" and target is not None:
            if attempts <= node.max_retries:
                self._feedback[target] = feedback
                state["feedback"] = feedback
                return _Outcome(value, "retrying", feedback), target
        raise EvalFailedError(
            f"evaluation failed after {attempts} attempt(s):\n{feedback}", node=node_id
        )

    def _key_of(self, node_id: str) -> str:
        node = self._request.spec.nodes.get(node_id)
        key = getattr(node, "output_key", None)
        return key if isinstance(key, str) else node_id

    async def _score(
        self,
        node_id: str,
        node: EvalNode,
        index: int,
        scorer: object,
        state: dict[str, JsonValue],
        output: JsonValue,
        activity_id: str,
        target: str | None,
    ) -> tuple[bool, float | None, str]:
        if isinstance(scorer, AssertionScorer):
            context = {**state, "output": output}
            failing = [
                check
                for check in scorer.checks
                if not evaluate_condition(check, context, node=node_id, names={"output": output})
            ]
            if failing:
                return False, 0.0, f"assertion failed: {', '.join(failing)}"
            return True, 1.0, "assertions hold"
        if isinstance(scorer, LatencyScorer):
            took = self._latency_ms(target)
            ok = took is not None and took <= scorer.max_ms
            return (
                ok,
                took,
                f"took {took:g} ms (max {scorer.max_ms:g})"
                if took is not None
                else ("no node to time"),
            )
        if isinstance(scorer, CostScorer):
            spent = _run_cost()
            if spent is None:
                return False, None, "no cost is known for this run (declare a cost budget)"
            return spent <= scorer.max_usd, spent, f"spent ${spent:.4f} (max ${scorer.max_usd:g})"
        assert isinstance(scorer, JudgeScorer)
        model, _ = self._request.spec.model_for(scorer.model)
        text = output if isinstance(output, str) else json.dumps(output, sort_keys=True)
        chat: ChatResult = await workflow.execute_activity(
            CHAT_ACTIVITY,
            ChatRequest(
                model=model,
                messages=[
                    {
                        "role": "system",
                        "content": "You are a strict evaluator. Score the answer against the "
                        f"rubric from 1 to {scorer.scale}. Reply with JSON: "
                        '{"score": <number>, "reason": "<one sentence>"}',
                    },
                    {"role": "user", "content": f"Rubric:\n{scorer.rubric}\n\nAnswer:\n{text}"},
                ],
                response_schema={
                    "type": "object",
                    "properties": {
                        "score": {"type": "number", "minimum": 1, "maximum": scorer.scale},
                        "reason": {"type": "string"},
                    },
                    "required": ["score", "reason"],
                    "additionalProperties": False,
                },
                response_schema_name="evaluation",
            ),
            result_type=ChatResult,
            **{
                **self._options(node_id, node, f"{activity_id}.judge{index + 1}"),
                "summary": f"{node.label or node_id}: judge",
            },
        )
        score, reason = _judge_score(chat.content or "")
        if score is None:
            return False, None, f"the judge gave no score: {(chat.content or '')[:200]!r}"
        passed = score >= scorer.min_score
        return (
            passed,
            score,
            f"judge scored {score:g}/{scorer.scale} (min {scorer.min_score:g})"
            + (f": {reason}" if reason else ""),
        )

    def _latency_ms(self, target: str | None) -> float | None:
        for record in reversed(self._records):
            if record.node == target:
                return (record.finished_at - record.started_at).total_seconds() * 1000
        return None


class _Nothing:
    """No result: the node writes nothing to the state."""


_NOTHING = _Nothing()


class _Outcome:
    """A node's result with how it went, for the node records."""

    def __init__(
        self,
        value: object,
        outcome: Literal["ok", "failed", "timed out", "rejected", "retrying", "canceled"],
        detail: str | None,
    ) -> None:
        self.value = value
        self.outcome = outcome
        self.detail = detail


def _value_of(expression: str, state: dict[str, JsonValue], node: str) -> JsonValue:
    return render_value("{{ " + expression + " }}", state, node=node)


def _judge_score(content: str) -> tuple[float | None, str | None]:
    try:
        data = json.loads(content)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        score = data.get("score")
        reason = data.get("reason")
        if isinstance(score, int | float) and not isinstance(score, bool):
            return float(score), reason if isinstance(reason, str) else None
    # A model that ignored the schema may still say "Score: 4"; any other number is not a score.
    match = _SCORE_RE.search(content)
    if match is None:
        return None, None
    return float(match.group(1)), None


def _run_budget(spec: PipelineSpec) -> Budget | None:
    """The run's budget: ``cost_budget_usd`` / ``token_budget``, or an uncapped ledger when a
    ``cost`` scorer needs the run's spend."""
    meta = spec.workflow
    tokens = meta.token_budget.total_tokens if meta.token_budget else None
    if meta.cost_budget_usd is not None or tokens is not None:
        return Budget(
            max_cost=None if meta.cost_budget_usd is None else Decimal(str(meta.cost_budget_usd)),
            max_tokens=tokens,
        )
    scores_cost = any(
        isinstance(scorer, CostScorer)
        for node in spec.nodes.values()
        if isinstance(node, EvalNode)
        for scorer in node.scorers
    )
    return Budget() if scores_cost else None


def _run_cost() -> float | None:
    from jamjet_temporal.budget._workflow import active_scopes

    scopes = active_scopes()
    if not scopes:
        return None
    return float(scopes[0].ledger.spent_cost)
