"""Agents with tools, durably: the model proposes tool calls, tools run, results go back.

In workflow code every model call and every tool call is its own activity, so a crash mid-loop
resumes at the exact call, and every tool call passes the policy gate first. A blocked call is
not an error for the agent: the model is told ``"tool unavailable; pick another"`` and carries
on. Outside a workflow (unit tests) the same loop calls the model and the tools directly, with
the same allow-list but no audit trail.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, create_model
from pydantic_core import to_jsonable_python
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from jamjet_temporal import llm
from jamjet_temporal._shared._observe import observer, tool_call
from jamjet_temporal._shared._wire import MCP_CALL_ACTIVITY
from jamjet_temporal.authoring._task import AGENT_TOOLS, AgentTool, TaskDefinition, task_definition
from jamjet_temporal.errors import ConfigError, GateError
from jamjet_temporal.llm._types import ChatRequest, ToolCall, Usage
from jamjet_temporal.mcp._types import McpTools

__all__ = ["TOOL_UNAVAILABLE", "AgentResult", "AgentToolCall", "run", "run_tools"]

#: What the model is told when the gate blocks a tool call.
TOOL_UNAVAILABLE = "tool unavailable; pick another"


class AgentToolCall(BaseModel):
    """One tool call the model proposed, and what became of it."""

    model_config = ConfigDict(frozen=True)

    name: str
    arguments: dict[str, JsonValue] = Field(default_factory=dict)
    outcome: Literal["ok", "blocked", "error"]
    result: JsonValue = None
    reason: str | None = None
    event_id: str | None = None


class AgentResult(BaseModel):
    """An agent run's answer with what it did on the way."""

    model_config = ConfigDict(frozen=True)

    output: str | None
    turns: int
    stopped: Literal["answer", "max_turns"]
    tool_calls: list[AgentToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)


def tool_schema(defn: TaskDefinition) -> dict[str, JsonValue]:
    """The OpenAI tool schema of a ``@task`` tool, from its signature and docstring."""
    fields: dict[str, tuple[object, object]] = {}
    for param in inspect.signature(defn.fn).parameters.values():
        annotation = param.annotation if param.annotation is not inspect.Parameter.empty else str
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    model = create_model(f"{defn.name}_args", **fields)  # type: ignore[call-overload]
    return {
        "type": "function",
        "function": {
            "name": defn.name,
            "description": inspect.getdoc(defn.fn) or defn.name,
            "parameters": model.model_json_schema(),
        },
    }


def _positional(defn: TaskDefinition, arguments: dict[str, JsonValue]) -> list[JsonValue]:
    bound = inspect.signature(defn.fn).bind(**arguments)
    return list(bound.args)


@dataclass(frozen=True)
class _Tool:
    """A tool the loop may call: by activity name, with how to bind the model's arguments."""

    name: str
    schema: dict[str, JsonValue]
    bind: Callable[[dict[str, JsonValue]], Sequence[object]]
    options: Mapping[str, Any]
    fn: Callable[..., Awaitable[object]] | None = None


def _from_definition(defn: TaskDefinition) -> _Tool:
    return _Tool(
        name=defn.name,
        schema=tool_schema(defn),
        bind=lambda arguments: _positional(defn, arguments),
        options=defn.config,
        fn=defn.fn,
    )


def _binder(params: Sequence[str]) -> Callable[[dict[str, JsonValue]], list[JsonValue]]:
    def bind(arguments: dict[str, JsonValue]) -> list[JsonValue]:
        unknown = sorted(set(arguments) - set(params))
        if unknown:
            raise TypeError(f"unexpected argument(s) {unknown}; the tool takes {list(params)}")
        given = [index for index, name in enumerate(params) if name in arguments]
        upto = (max(given) + 1) if given else 0
        missing = [name for name in params[:upto] if name not in arguments]
        if missing:
            raise TypeError(f"missing argument(s) {missing}")
        return [arguments[name] for name in params[:upto]]

    return bind


async def run_tools(
    prompt: str,
    tools: Sequence[tuple[str, dict[str, JsonValue], Sequence[str]]],
    *,
    model: str,
    system: str | None = None,
    max_turns: int = 8,
    options: Mapping[str, Any],
) -> AgentResult:
    """The loop of :func:`run` over tools known by name (a pipeline's ``agent`` node).

    Args:
        prompt: The user's request.
        tools: Each tool's activity name, OpenAI tool schema and parameter names in order.
        model: Model id.
        system: Optional system message.
        max_turns: Model calls at most.
        options: Activity options for every tool call (timeouts, retry policy).

    Returns:
        As :func:`run`.
    """
    if max_turns < 1:
        raise ConfigError(f"agent: max_turns must be at least 1, got {max_turns}")
    named = {
        name: _Tool(name=name, schema=schema, bind=_binder(params), options=options)
        for name, schema, params in tools
    }
    return await _loop(prompt, named, model=model, system=system, max_turns=max_turns)


async def run(
    prompt: str,
    *,
    tools: Sequence[AgentTool] | None = None,
    model: str = llm.DEFAULT_MODEL,
    system: str | None = None,
    max_turns: int = 8,
) -> AgentResult:
    """Run the tool-calling loop until the model answers without calling a tool.

    Args:
        prompt: The user's request.
        tools: ``@task`` tools offered to the model, and MCP servers' tools
            (``mcp_tools(...)``: listed once per run, offered as ``ALIAS__TOOL`` with their
            JSON schemas, each call decided as ``ALIAS.TOOL``; an error result goes back to the
            model as a tool error). Default: the tools of the agent task
            (``@task(tools=[...])``) this runs in.
        model: Model id.
        system: Optional system message.
        max_turns: Model calls at most; the loop stops there with ``stopped="max_turns"``.

    Returns:
        The final answer, the tool calls with their outcomes, and summed token usage.

    Raises:
        ConfigError: A tool is not a ``@task`` function, or ``max_turns`` < 1.
    """
    if max_turns < 1:
        raise ConfigError(f"agent.run: max_turns must be at least 1, got {max_turns}")
    offered = tuple(tools) if tools is not None else (AGENT_TOOLS.get() or ())
    defs: dict[str, _Tool] = {}
    for tool in offered:
        if isinstance(tool, McpTools):
            from jamjet_temporal.mcp._workflow import agent_tools

            for name, schema, bind, options in await agent_tools(tool):
                defs[name] = _Tool(MCP_CALL_ACTIVITY, schema, bind, options)
            continue
        defn = task_definition(tool)
        if defn is None or defn.inline:
            raise ConfigError(f"agent.run: {tool!r} is not a @task tool")
        defs[defn.name] = _from_definition(defn)
    return await _loop(prompt, defs, model=model, system=system, max_turns=max_turns)


async def _loop(
    prompt: str, defs: Mapping[str, _Tool], *, model: str, system: str | None, max_turns: int
) -> AgentResult:
    turns = _turns(prompt, defs, model=model, system=system, max_turns=max_turns)
    watch = observer()  # tracing: an `invoke_agent {name}` span around the loop (None when off)
    return await (turns if watch is None else watch.agent(model, prompt, turns))


async def _turns(
    prompt: str, defs: Mapping[str, _Tool], *, model: str, system: str | None, max_turns: int
) -> AgentResult:
    schemas = [tool.schema for tool in defs.values()]
    messages: list[dict[str, JsonValue]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    calls: list[AgentToolCall] = []
    usage = Usage()
    content: str | None = None
    for turn in range(1, max_turns + 1):
        answer = await llm.chat(ChatRequest(model=model, messages=messages, tools=schemas))
        usage = Usage(
            input_tokens=usage.input_tokens + answer.usage.input_tokens,
            cached_input_tokens=usage.cached_input_tokens + answer.usage.cached_input_tokens,
            output_tokens=usage.output_tokens + answer.usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens + answer.usage.reasoning_tokens,
        )
        content = answer.content
        if not answer.tool_calls:
            return AgentResult(
                output=content, turns=turn, stopped="answer", tool_calls=calls, usage=usage
            )
        messages.append(
            {
                "role": "assistant",
                "content": content,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                    }
                    for call in answer.tool_calls
                ],
            }
        )
        for call in answer.tool_calls:
            record = await _call(call, defs)
            calls.append(record)
            if record.outcome == "ok":
                reply = json.dumps(record.result)
            elif record.outcome == "blocked":
                reply = TOOL_UNAVAILABLE
            else:
                reply = f"tool error: {record.reason}"
            messages.append({"role": "tool", "tool_call_id": call.id, "content": reply})
    return AgentResult(
        output=content, turns=max_turns, stopped="max_turns", tool_calls=calls, usage=usage
    )


def _outcome(
    call: ToolCall,
    outcome: Literal["ok", "blocked", "error"],
    *,
    result: object = None,
    reason: str | None = None,
    event_id: str | None = None,
) -> AgentToolCall:
    return AgentToolCall(
        name=call.name,
        arguments=call.arguments,
        outcome=outcome,
        result=to_jsonable_python(result),
        reason=reason,
        event_id=event_id,
    )


async def _call(call: ToolCall, defs: Mapping[str, _Tool]) -> AgentToolCall:
    defn = defs.get(call.name)
    if not workflow.in_workflow():
        return await _call_directly(call, defn)
    # Imported on use: a worker without the plugin can still load a workflow module that
    # imports the authoring API (the gate pulls in signature checks and token counting).
    from jamjet_temporal.gate._workflow import current_gate, named_arguments

    if defn is None:
        reason, event = "tool not in allow-list", None
        gate = current_gate()
        if gate is not None:
            err = await gate.refuse_unknown(call.name, call.arguments, reason)
            reason, event = err.reason, err.event_id
        return _outcome(call, "blocked", reason=reason, event_id=event)
    try:
        args = defn.bind(call.arguments)
    except TypeError as err:
        return _outcome(call, "error", reason=f"invalid arguments: {err}")
    try:
        with named_arguments(lambda: dict(call.arguments)), tool_call(call.id):
            # Temporal numbers each call; a node's own activity id belongs to its model call.
            options = {k: v for k, v in defn.options.items() if k != "activity_id"}
            options.setdefault("summary", f"tool {call.name}")
            handle = workflow.start_activity(defn.name, args=args, **options)
        result = await handle
    except GateError as err:
        return _outcome(call, "blocked", reason=err.reason, event_id=err.event_id)
    except ActivityError as err:
        cause = err.cause
        reason = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
        return _outcome(call, "error", reason=reason)
    return _outcome(call, "ok", result=result)


async def _call_directly(call: ToolCall, defn: _Tool | None) -> AgentToolCall:
    if defn is None or defn.fn is None:
        return _outcome(call, "blocked", reason="tool not in allow-list")
    try:
        result = await defn.fn(*defn.bind(call.arguments))
    except Exception as err:
        return _outcome(call, "error", reason=f"{type(err).__name__}: {err}")
    return _outcome(call, "ok", result=result)
