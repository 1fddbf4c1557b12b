"""Tracing, workflow side: gate decisions and budget halts as span events, approval waits and
agent loops as spans, and the model's tool call id carried to the tool's activity.

Runs inside the workflow sandbox (and on the worker, for what activities report). Spans come
from the global tracer provider, which the plugin made sure is Temporal's replay-safe one:
inside a workflow its span ids are drawn from the run's deterministic randomness, a span ended
while history replays is not exported, and one that replay reopens (started before a worker
was lost) is exported once, by the worker that ends it. Events added while replaying carry the
workflow time of the task that first added them.

Imported only when tracing is on (``JamJetConfig(tracing=...)``): it imports OpenTelemetry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue
from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleSignalInput,
    HandleUpdateInput,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowOutboundInterceptor,
)

from jamjet_temporal._shared._observe import (
    ApprovalOutcome,
    Observer,
    current_tool_call,
    observing,
)
from jamjet_temporal._shared._wire import TOOL_CALL_HEADER
from jamjet_temporal.authoring._agent import AgentResult
from jamjet_temporal.budget._ledger import BudgetDecision
from jamjet_temporal.gate._workflow import current_gate
from jamjet_temporal.policy import Decision
from jamjet_temporal.tracing import _names as names

_T = TypeVar("_T")
_INVOKE_AGENT = gen_ai.GenAiOperationNameValues.INVOKE_AGENT.value


@dataclass(frozen=True)
class Settings:
    """What every span we make needs to know.

    Attributes:
        capture_content: Put prompts, completions, tool arguments and results on spans.
        provider_name: ``gen_ai.provider.name`` of model calls.
    """

    capture_content: bool = False
    provider_name: str = "openai"


def event_time() -> int | None:
    """The timestamp of a span event: while history replays, the workflow time of the task
    that first made it (None: now)."""
    if workflow.in_workflow() and workflow.unsafe.is_replaying_history_events():
        return workflow.time_ns()
    return None


def text_messages(role: str, text: str | None) -> str:
    """One message in the GenAI conventions' JSON form (``gen_ai.input.messages``)."""
    parts = [] if text is None else [{"type": "text", "content": text}]
    return json.dumps([{"role": role, "parts": parts}])


def error_type(error: BaseException) -> str:
    """``error.type`` of a failure: an ApplicationError's type, else the exception's class."""
    if isinstance(error, ApplicationError) and error.type:
        return error.type
    return type(error).__qualname__


def failed(span: Span, error: BaseException) -> None:
    """Mark ``span`` as failed by ``error``, unless that failure is not the run's own.

    A workflow task that fails (a bug, a nondeterminism error) is retried by Temporal, and the
    retry's replay reopens the span: it is left unended here (the replay-safe span does that
    for a recorded exception that is not a workflow failure) and ended once by the retry.
    """
    if isinstance(error, asyncio.CancelledError):
        span.set_attribute(error_attributes.ERROR_TYPE, "cancelled")
        return
    if workflow.in_workflow() and not workflow.is_failure_exception(error):
        span.record_exception(error)
        return
    span.set_attribute(error_attributes.ERROR_TYPE, error_type(error))
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:500]))
    span.record_exception(error)


class SpanNotes(Observer):
    """The observer: what the gate, approvals and agents report, written into spans."""

    def __init__(self, settings: Settings, tracer: trace.Tracer | None = None) -> None:
        self.settings = settings
        self.tracer = tracer or trace.get_tracer(names.SCOPE)

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue],
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> Iterator[Span]:
        """A span current for the block, marked failed by what escapes it (see ``failed``)."""
        with self.tracer.start_as_current_span(
            name,
            kind=kind,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as error:
                failed(span, error)
                raise

    def gate_decision(self, kind: str, decision: Decision, event_id: str | None) -> None:
        span = trace.get_current_span()
        if not span.is_recording():
            return
        attributes: dict[str, AttributeValue] = {
            names.DECISION: decision.decision,
            names.DECISION_KIND: kind,
            names.DECISION_SUBJECT: decision.subject,
            names.DECISION_SCOPE: decision.scope,
            names.POLICY_VERSION: decision.policy_version,
            names.DECISION_REASON: decision.reason,
        }
        if decision.rule is not None:
            attributes[names.DECISION_RULE] = decision.rule
        if event_id is not None:
            attributes[names.AUDIT_EVENT_ID] = event_id
        span.add_event(names.GATE_DECISION_EVENT, attributes, timestamp=event_time())

    def budget_halt(self, check: BudgetDecision, scope: str, event_id: str | None) -> None:
        span = trace.get_current_span()
        if not span.is_recording():
            return
        attributes: dict[str, AttributeValue] = {
            names.BUDGET_SCOPE: scope,
            names.BUDGET_REASON: check.reason,
            names.BUDGET_SPENT_USD: float(check.spent_cost),
            names.BUDGET_PROJECTED_USD: float(check.projected.cost),
            gen_ai.GEN_AI_REQUEST_MODEL: check.projected.model,
        }
        if check.cap_cost is not None:
            attributes[names.BUDGET_CAP_USD] = float(check.cap_cost)
        if check.cap_tokens is not None:
            attributes[names.BUDGET_CAP_TOKENS] = check.cap_tokens
        if event_id is not None:
            attributes[names.AUDIT_EVENT_ID] = event_id
        span.add_event(names.BUDGET_HALT_EVENT, attributes, timestamp=event_time())

    async def approval(
        self,
        action: str,
        approval_id: str,
        waiting: Awaitable[_T],
        outcome: Callable[[], ApprovalOutcome],
    ) -> _T:
        attributes = {names.APPROVAL_ID: approval_id, names.APPROVAL_ACTION: action}
        with self.span(f"approval {action}", attributes) as span:
            try:
                return await waiting
            finally:
                _describe_approval(span, outcome())

    async def agent(self, model: str, prompt: str, turns: Awaitable[_T]) -> _T:
        name = _agent_name()
        attributes: dict[str, AttributeValue] = {
            gen_ai.GEN_AI_OPERATION_NAME: _INVOKE_AGENT,
            gen_ai.GEN_AI_AGENT_NAME: name,
            gen_ai.GEN_AI_REQUEST_MODEL: model,
            gen_ai.GEN_AI_PROVIDER_NAME: self.settings.provider_name,
        }
        if self.settings.capture_content:
            attributes[gen_ai.GEN_AI_INPUT_MESSAGES] = text_messages("user", prompt)
        with self.span(f"{_INVOKE_AGENT} {name}", attributes) as span:
            result = await turns
            _describe_agent(span, result, self.settings.capture_content)
            return result


def _describe_approval(span: Span, outcome: ApprovalOutcome) -> None:
    attributes: dict[str, AttributeValue] = {
        names.APPROVAL_APPROVERS: list(outcome.approvers),
        names.APPROVAL_EVENT_IDS: list(outcome.event_ids),
        names.APPROVAL_ELIGIBLE: list(outcome.eligible),
        names.APPROVAL_REQUIRED: outcome.required,
    }
    if outcome.outcome is not None:
        attributes[names.APPROVAL_OUTCOME] = outcome.outcome
    span.set_attributes(attributes)


def _describe_agent(span: Span, result: object, capture: bool) -> None:
    if not isinstance(result, AgentResult):
        return
    span.set_attributes(
        {
            gen_ai.GEN_AI_USAGE_INPUT_TOKENS: result.usage.input_tokens,
            gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: result.usage.output_tokens,
            names.AGENT_TURNS: result.turns,
            names.AGENT_STOPPED: result.stopped,
            names.AGENT_TOOL_CALLS: len(result.tool_calls),
        }
    )
    if capture:
        span.set_attribute(gen_ai.GEN_AI_OUTPUT_MESSAGES, text_messages("assistant", result.output))


def _agent_name() -> str:
    """The agent running now, as the gate names it (its task or pipeline node)."""
    if workflow.in_workflow():
        gate = current_gate()
        if gate is not None:
            name = gate.actor().get("agent")
            if isinstance(name, str) and name:
                return name
    return "agent"


def workflow_interceptor_class(notes: SpanNotes) -> type[WorkflowInboundInterceptor]:
    """The inbound interceptor class that puts ``notes`` in force for a run and its handlers."""

    def tag(input: StartActivityInput | StartLocalActivityInput) -> None:
        call = current_tool_call()
        if call is not None:
            payload = workflow.payload_converter().to_payloads([call])[0]
            input.headers = {**input.headers, TOOL_CALL_HEADER: payload}

    class _Outbound(WorkflowOutboundInterceptor):
        def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
            tag(input)
            return super().start_activity(input)

        def start_local_activity(
            self, input: StartLocalActivityInput
        ) -> workflow.ActivityHandle[Any]:
            tag(input)
            return super().start_local_activity(input)

    class _Inbound(WorkflowInboundInterceptor):
        def init(self, outbound: WorkflowOutboundInterceptor) -> None:
            super().init(_Outbound(outbound))

        async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
            with observing(notes):
                return await super().execute_workflow(input)

        async def handle_signal(self, input: HandleSignalInput) -> None:
            with observing(notes):
                await super().handle_signal(input)

        async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
            with observing(notes):
                return await super().handle_update_handler(input)

    return _Inbound
