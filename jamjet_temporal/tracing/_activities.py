"""Tracing, activity side: model calls, tools and Engram context as GenAI spans, and metrics.

Runs on the worker, inside Temporal's ``RunActivity`` span of each attempt (so a retried
attempt is a span of its own, numbered ``jamjet.activity.attempt``):

* every model call (the ``jamjet.llm.chat`` activity, and ``llm.call`` inside a task) is a
  ``chat {model}`` CLIENT span with the GenAI attributes, its cost in USD and what is left of
  the budget that cleared it, and is measured (``gen_ai.client.token.usage``,
  ``gen_ai.client.operation.duration``, the cost counter);
* every tool activity (a ``@task``, an MCP tool ``ALIAS.TOOL``, an A2A delegation
  ``a2a:ALIAS.SKILL``) is an ``execute_tool {name}`` span, with the model's tool call id when
  an agent called it;
* ``engram.context_for`` is an ``engram context`` span with the tokens used of its budget.

Prompts, completions, tool arguments and results go on spans only when content capture is on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.metrics import Counter, Histogram, MeterProvider
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.attributes import error_attributes, server_attributes
from opentelemetry.trace import SpanKind, Tracer, get_current_span
from opentelemetry.util.types import AttributeValue
from pydantic_core import to_jsonable_python
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from jamjet_temporal._shared._observe import observing
from jamjet_temporal._shared._runtime import is_reserved
from jamjet_temporal._shared._wire import (
    CHAT_ACTIVITY,
    CONTEXT_ACTIVITY,
    GATE_HEADER,
    TOOL_CALL_HEADER,
)
from jamjet_temporal.budget._ledger import billed_tokens, cost_of
from jamjet_temporal.budget._prices import ModelPrice, PriceTable
from jamjet_temporal.errors import UnknownModelPriceError
from jamjet_temporal.gate._activities import current_activity_gate
from jamjet_temporal.gate._workflow import Clearance, a2a_call, is_a2a_call, is_mcp_call, mcp_call
from jamjet_temporal.llm._types import ChatRequest, ChatResult
from jamjet_temporal.memory._types import Context
from jamjet_temporal.tracing import _names as names
from jamjet_temporal.tracing._workflow import Settings, SpanNotes, error_type

_CHAT = gen_ai.GenAiOperationNameValues.CHAT.value
_EXECUTE_TOOL = gen_ai.GenAiOperationNameValues.EXECUTE_TOOL.value
_RETRIEVAL = gen_ai.GenAiOperationNameValues.RETRIEVAL.value
# The conventions' advised histogram buckets for token counts and durations (seconds).
_TOKEN_BUCKETS = [4.0**i for i in range(14)]
_DURATION_BUCKETS = [0.01 * 2**i for i in range(14)]


class Telemetry:
    """One plugin's tracer, metric instruments, price table and settings (made once)."""

    def __init__(
        self,
        settings: Settings,
        tracer: Tracer,
        prices: PriceTable,
        meter_provider: MeterProvider | None,
    ) -> None:
        self.settings = settings
        self.tracer = tracer
        self._prices = prices
        self._quoted: dict[str, ModelPrice | None] = {}
        self.token_usage: Histogram | None = None
        self.duration: Histogram | None = None
        self.cost: Counter | None = None
        if meter_provider is not None:
            meter = meter_provider.get_meter(names.SCOPE)
            self.token_usage = meter.create_histogram(
                gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE,
                unit="{token}",
                description="Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
            )
            self.duration = meter.create_histogram(
                gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION,
                unit="s",
                description="GenAI operation duration.",
                explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
            )
            self.cost = meter.create_counter(
                names.COST_METRIC,
                unit="USD",
                description="Cost of model calls in US dollars, by model and workflow type.",
            )

    def price(self, model: str) -> ModelPrice | None:
        """The model's price (looked up once per model), None when no price is known."""
        if model not in self._quoted:
            try:
                self._quoted[model] = self._prices.price(model)
            except UnknownModelPriceError:
                self._quoted[model] = None
        return self._quoted[model]


class ActivityNotes(SpanNotes):
    """The observer of one activity attempt: its model calls, its gate's decisions."""

    def __init__(
        self, telemetry: Telemetry, info: activity.Info, clearance: Clearance | None
    ) -> None:
        super().__init__(telemetry.settings, telemetry.tracer)
        self._telemetry = telemetry
        self._info = info
        self._clearance = clearance

    async def chat(
        self,
        request: ChatRequest,
        call: Callable[[], Awaitable[ChatResult]],
        endpoint: str | None,
    ) -> ChatResult:
        settings = self.settings
        attributes: dict[str, AttributeValue] = {
            gen_ai.GEN_AI_OPERATION_NAME: _CHAT,
            gen_ai.GEN_AI_PROVIDER_NAME: settings.provider_name,
            gen_ai.GEN_AI_REQUEST_MODEL: request.model,
            gen_ai.GEN_AI_OUTPUT_TYPE: "json"
            if request.json_output or request.response_schema is not None
            else "text",
            names.ATTEMPT: self._info.attempt,
        }
        if request.max_tokens is not None:
            attributes[gen_ai.GEN_AI_REQUEST_MAX_TOKENS] = request.max_tokens
        if request.temperature is not None:
            attributes[gen_ai.GEN_AI_REQUEST_TEMPERATURE] = request.temperature
        attributes.update(_server(endpoint))
        if self._clearance is not None and self._info.activity_type == CHAT_ACTIVITY:
            attributes[names.CLEARED_BY] = self._clearance.event_id
        if settings.capture_content:
            system, messages = _input_messages(request.messages)
            attributes[gen_ai.GEN_AI_INPUT_MESSAGES] = json.dumps(messages)
            if system:
                attributes[gen_ai.GEN_AI_SYSTEM_INSTRUCTIONS] = json.dumps(system)
        started = time.perf_counter()
        with self.span(f"{_CHAT} {request.model}", attributes, SpanKind.CLIENT) as span:
            try:
                result = await call()
            except Exception as error:
                self._measure(request, None, None, time.perf_counter() - started, error)
                raise
            seconds = time.perf_counter() - started
            usage = result.usage
            found: dict[str, AttributeValue] = {
                gen_ai.GEN_AI_RESPONSE_MODEL: result.model,
                gen_ai.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens,
                gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
            }
            if usage.cached_input_tokens:
                found[gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cached_input_tokens
            if usage.reasoning_tokens:
                found[gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
            if result.finish_reason is not None:
                found[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] = [result.finish_reason]
            price = self._telemetry.price(request.model)
            cost = cost_of(price, usage) if price is not None else None
            if cost is not None:
                found[names.COST_USD] = float(cost)
            found.update(self._remaining(cost, result))
            if settings.capture_content:
                found[gen_ai.GEN_AI_OUTPUT_MESSAGES] = json.dumps([_output_message(result)])
            span.set_attributes(found)
            self._measure(request, result, cost, seconds, None)
            return result

    def _remaining(self, cost: Decimal | None, result: ChatResult) -> dict[str, AttributeValue]:
        """What is left of the budget that cleared this call, once it is paid for."""
        clearance = self._clearance
        if clearance is None:
            return {}
        tokens = billed_tokens(result.usage)
        cap_cost: Decimal | None = None
        cap_tokens: int | None = None
        spent_cost, spent_tokens = Decimal(0), 0
        if clearance.budget is not None and self._info.activity_type == CHAT_ACTIVITY:
            # A model call from workflow code: the run's budget check that let it go ahead.
            check = clearance.budget
            cap_cost, cap_tokens = check.cap_cost, check.cap_tokens
            spent_cost, spent_tokens = check.spent_cost, check.spent_tokens
        elif clearance.allowance is not None:
            # A task's own model call: what was set aside for the task, less its calls so far.
            cap_cost, cap_tokens = clearance.allowance.max_cost, clearance.allowance.max_tokens
            gate = current_activity_gate()
            for made in gate.calls if gate is not None else ():
                spent_cost += made.cost
                spent_tokens += billed_tokens(made.usage)
        found: dict[str, AttributeValue] = {}
        if cap_cost is not None and cost is not None:
            found[names.BUDGET_REMAINING_USD] = float(max(cap_cost - spent_cost - cost, Decimal(0)))
        if cap_tokens is not None:
            found[names.BUDGET_REMAINING_TOKENS] = max(cap_tokens - spent_tokens - tokens, 0)
        return found

    def _measure(
        self,
        request: ChatRequest,
        result: ChatResult | None,
        cost: Decimal | None,
        seconds: float,
        error: BaseException | None,
    ) -> None:
        telemetry = self._telemetry
        if telemetry.duration is None:
            return
        attributes: dict[str, AttributeValue] = {
            gen_ai.GEN_AI_OPERATION_NAME: _CHAT,
            gen_ai.GEN_AI_PROVIDER_NAME: self.settings.provider_name,
            gen_ai.GEN_AI_REQUEST_MODEL: request.model,
        }
        if result is not None:
            attributes[gen_ai.GEN_AI_RESPONSE_MODEL] = result.model
        if error is not None:
            attributes[error_attributes.ERROR_TYPE] = error_type(error)
        telemetry.duration.record(seconds, attributes)
        if result is None or telemetry.token_usage is None:
            return
        for kind, count in (
            (gen_ai.GenAiTokenTypeValues.INPUT.value, result.usage.input_tokens),
            (gen_ai.GenAiTokenTypeValues.OUTPUT.value, result.usage.output_tokens),
        ):
            telemetry.token_usage.record(count, {**attributes, gen_ai.GEN_AI_TOKEN_TYPE: kind})
        if cost is not None and telemetry.cost is not None:
            telemetry.cost.add(
                float(cost),
                {
                    gen_ai.GEN_AI_REQUEST_MODEL: request.model,
                    gen_ai.GEN_AI_PROVIDER_NAME: self.settings.provider_name,
                    names.WORKFLOW_TYPE: self._info.workflow_type or "",
                },
            )


class TracingActivityInbound(ActivityInboundInterceptor):
    """Puts an attempt's spans around it and its observer in force inside it."""

    def __init__(self, next: ActivityInboundInterceptor, telemetry: Telemetry) -> None:
        super().__init__(next)
        self._telemetry = telemetry

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        # Temporal's RunActivity span of this attempt.
        get_current_span().set_attribute(names.ATTEMPT, info.attempt)
        kind = info.activity_type
        if kind == CONTEXT_ACTIVITY:
            return await self._engram(input, info)
        if is_reserved(kind):
            return await super().execute_activity(input)  # the runtime's own bookkeeping
        clearance = _clearance(input)
        with observing(ActivityNotes(self._telemetry, info, clearance)):
            if kind == CHAT_ACTIVITY:
                return await super().execute_activity(input)  # the model call's own span
            return await self._tool(input, info, clearance)

    async def _tool(
        self, input: ExecuteActivityInput, info: activity.Info, clearance: Clearance | None
    ) -> Any:
        name, tool_type, arguments, extra = _tool_of(info.activity_type, input.args)
        call_id = info.activity_id
        header = input.headers.get(TOOL_CALL_HEADER)
        if header is not None:
            call_id = activity.payload_converter().from_payloads([header], [str])[0]
        attributes: dict[str, AttributeValue] = {
            gen_ai.GEN_AI_OPERATION_NAME: _EXECUTE_TOOL,
            gen_ai.GEN_AI_TOOL_NAME: name,
            gen_ai.GEN_AI_TOOL_CALL_ID: call_id,
            gen_ai.GEN_AI_TOOL_TYPE: tool_type,
            names.ATTEMPT: info.attempt,
            **extra,
        }
        if clearance is not None:
            attributes[names.CLEARED_BY] = clearance.event_id
        capture = self._telemetry.settings.capture_content
        if capture:
            attributes[gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS] = _json(arguments)
        notes = SpanNotes(self._telemetry.settings, self._telemetry.tracer)
        with notes.span(f"{_EXECUTE_TOOL} {name}", attributes) as span:
            result = await super().execute_activity(input)
            if capture:
                span.set_attribute(gen_ai.GEN_AI_TOOL_CALL_RESULT, _json(result))
            return result

    async def _engram(self, input: ExecuteActivityInput, info: activity.Info) -> Any:
        request = input.args[0] if len(input.args) == 1 else None
        attributes: dict[str, AttributeValue] = {
            gen_ai.GEN_AI_OPERATION_NAME: _RETRIEVAL,
            gen_ai.GEN_AI_DATA_SOURCE_ID: "engram",
            names.ATTEMPT: info.attempt,
        }
        budget = getattr(request, "budget_tokens", None)
        if isinstance(budget, int):
            attributes[names.ENGRAM_BUDGET_TOKENS] = budget
        topic = getattr(request, "topic", None)
        if self._telemetry.settings.capture_content and isinstance(topic, str):
            attributes[gen_ai.GEN_AI_RETRIEVAL_QUERY_TEXT] = topic
        notes = SpanNotes(self._telemetry.settings, self._telemetry.tracer)
        with notes.span("engram context", attributes) as span:
            result = await super().execute_activity(input)
            if isinstance(result, Context):
                span.set_attributes(
                    {
                        names.ENGRAM_TOKENS_USED: result.tokens_used,
                        names.ENGRAM_BUDGET_TOKENS: result.budget_tokens,
                        names.ENGRAM_FACTS: len(result.facts),
                        names.ENGRAM_EPISODES: len(result.items) - len(result.facts),
                    }
                )
            return result


def _clearance(input: ExecuteActivityInput) -> Clearance | None:
    payload = input.headers.get(GATE_HEADER)
    if payload is None:
        return None
    try:
        found = activity.payload_converter().from_payloads([payload], [Clearance])[0]
    except Exception:  # the gate refuses the attempt; tracing says nothing more
        return None
    return found if isinstance(found, Clearance) else None


def _tool_of(
    activity_type: str, args: Sequence[Any]
) -> tuple[str, str, object, dict[str, AttributeValue]]:
    """The tool an activity is: its name, ``gen_ai.tool.type``, arguments and own attributes."""
    if is_mcp_call(activity_type):
        call = mcp_call(args)
        if call is not None:
            return call.subject, "extension", call.arguments, {names.MCP_SERVER: call.server}
    if is_a2a_call(activity_type):
        delegation = a2a_call(args)
        if delegation is not None:
            extra: dict[str, AttributeValue] = {names.A2A_AGENT: delegation.agent}
            return delegation.subject, "extension", {"input": delegation.input}, extra
    return activity_type, "function", list(args), {}


def _json(value: object) -> str:
    return json.dumps(to_jsonable_python(value, fallback=repr))


def _server(endpoint: str | None) -> dict[str, AttributeValue]:
    if not endpoint:
        return {}
    parts = urlsplit(endpoint)
    found: dict[str, AttributeValue] = {}
    if parts.hostname:
        found[server_attributes.SERVER_ADDRESS] = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return found
    found[server_attributes.SERVER_PORT] = port
    return found


def _parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    """An OpenAI-format message's content as the GenAI conventions' parts."""
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if message.get("role") == "tool":
        response = {"type": "tool_call_response", "id": message.get("tool_call_id")}
        return [{**response, "response": content}]
    if isinstance(content, str):
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        for item in content:
            if isinstance(item, dict) and item.get("type") == "text":
                parts.append({"type": "text", "content": item.get("text")})
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                pass
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": function.get("name"),
                "arguments": arguments,
            }
        )
    return parts


def _input_messages(
    messages: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system instructions, the other messages), in the GenAI conventions' JSON form."""
    system: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for message in messages:
        if message.get("role") == "system":
            system += _parts(message)
        else:
            rest.append({"role": message.get("role"), "parts": _parts(message)})
    return system, rest


def _output_message(result: ChatResult) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if result.content is not None:
        parts.append({"type": "text", "content": result.content})
    for call in result.tool_calls:
        parts.append(
            {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}
        )
    return {"role": "assistant", "parts": parts, "finish_reason": result.finish_reason or ""}
