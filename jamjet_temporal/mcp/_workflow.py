"""MCP tools from workflow code: each call is the ``jamjet.mcp.call_tool`` activity.

Runs in the workflow sandbox. The call names the server by its alias only; the worker holds the
server's command or URL and its credentials. The policy gate decides the call as the tool
``ALIAS.TOOL`` before it is scheduled, and records it like any other tool.

A run lists each server's tools once (:class:`ToolCatalog`, the ``jamjet.mcp.list_tools``
activity, its result in the run's history): the gate decides calls on the annotations listed
there, stamps each call with the tool as listed, and the worker refuses a call whose tool
changed since. Agents offer the listed tools to the model (:func:`agent_tools`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from pydantic import JsonValue
from temporalio import workflow

from jamjet_temporal._shared._activity import DEFAULT_RETRY_POLICY
from jamjet_temporal._shared._runtime import runtime_call
from jamjet_temporal._shared._wire import MCP_CALL_ACTIVITY, MCP_LIST_ACTIVITY
from jamjet_temporal.errors import ConfigError
from jamjet_temporal.mcp._types import (
    McpCall,
    McpListed,
    McpToolInfo,
    McpTools,
    alias_problem,
    call_problem,
    conditions_of,
    split_subject,
    tool_problem,
)
from jamjet_temporal.policy import Decision, PolicyScopes, decide_tool

__all__ = [
    "ToolCatalog",
    "agent_tools",
    "call",
    "call_tool",
    "list_tools",
    "mcp_tools",
]

#: Defaults of an MCP activity; any of them can be overridden per call.
_DEFAULTS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=120),
    "heartbeat_timeout": timedelta(seconds=30),
    "retry_policy": DEFAULT_RETRY_POLICY,
}
#: The options of a call that its server's listing takes too (where it runs, how long it may
#: take, how it is retried); its id and summary are the call's own.
_LIST_OPTIONS = (
    "task_queue",
    "schedule_to_close_timeout",
    "schedule_to_start_timeout",
    "start_to_close_timeout",
    "heartbeat_timeout",
    "retry_policy",
)
#: Every combination of the conditions (for "blocked whatever the server says").
_EVERY_READING = tuple(
    frozenset(name for bit, name in enumerate(_names) if mask >> bit & 1)
    for _names in [("destructive", "read_only", "idempotent", "open_world")]
    for mask in range(16)
)


def _in_workflow(what: str) -> None:
    if not workflow.in_workflow():
        raise ConfigError(
            f"jamjet_temporal.mcp.{what}() is for workflow code (it schedules an activity); "
            "outside a workflow, use the mcp SDK's client directly"
        )


class ToolCatalog:
    """One run's MCP tool lists, by server alias: listed once, from the run's history after.

    Owned by the run's gate. The first call of a server's tool (or :func:`list_tools`, or an
    agent offering the server's tools) runs ``jamjet.mcp.list_tools``; calls made meanwhile
    wait for the same listing.
    """

    def __init__(self) -> None:
        self._lists: dict[str, list[McpToolInfo]] = {}
        self._pending: dict[str, asyncio.Task[list[McpToolInfo]]] = {}

    def tools(self, server: str) -> list[McpToolInfo] | None:
        """The tools ``server`` listed in this run (None: not listed yet)."""
        return self._lists.get(server)

    async def ensure(self, server: str, options: Mapping[str, Any]) -> list[McpToolInfo]:
        """The tools ``server`` lists, listing them (once per run) if not done yet.

        Args:
            server: The server's alias.
            options: Activity options of the listing (timeouts, retry policy, task queue).

        Raises:
            ActivityError: The listing failed (the server could not be started or reached,
                an unknown alias): the cause is the worker's typed failure.
        """
        listed = self._lists.get(server)
        if listed is not None:
            return listed
        pending = self._pending.get(server)
        if pending is None:
            with runtime_call():
                pending = workflow.start_activity(
                    MCP_LIST_ACTIVITY,
                    server,
                    result_type=list[McpToolInfo],
                    **{"summary": f"list the tools of '{server}'", **_DEFAULTS, **options},
                )
            self._pending[server] = pending
        try:
            # Shielded: a caller that gives up does not cancel the listing others wait for.
            tools: list[McpToolInfo] = await asyncio.shield(pending)
        except BaseException:
            if self._pending.get(server) is pending and pending.done():
                del self._pending[server]  # a later call lists again
            raise
        self._pending.pop(server, None)
        self._lists[server] = tools
        return tools

    def needs_listing(self, call: McpCall, scopes: PolicyScopes) -> bool:
        """Whether ``call`` must wait for its server's listing before the gate decides it.

        Not when the listing is in already, when the gate refuses the call's name whatever
        (look-alike characters), or when the policy blocks the tool whatever its server says
        about it (no server is started for a call that cannot go ahead).
        """
        if call.server in self._lists or call_problem(call) is not None:
            return False
        return not blocked_whatever(scopes, call.subject)

    def stamp(self, call: McpCall) -> McpCall:
        """``call`` with the tool as this run listed it (``listed``), replacing whatever the
        caller put there: None when the server was not listed (the call is refused)."""
        tools = self._lists.get(call.server)
        listed: McpListed | None = None
        if tools is not None:
            found = next((tool for tool in tools if tool.name == call.tool), None)
            listed = McpListed(found=False) if found is None else found.listed()
        if call.listed == listed:
            return call
        return call.model_copy(update={"listed": listed})


def blocked_whatever(scopes: PolicyScopes, subject: str) -> bool:
    """Whether the policy blocks ``subject`` whatever annotations its server gives it."""
    if not scopes.has_conditions:
        return decide_tool(scopes, subject, holds=frozenset()).decision == "BLOCKED"
    return all(
        decide_tool(scopes, subject, holds=holds).decision == "BLOCKED" for holds in _EVERY_READING
    )


def decide_call(scopes: PolicyScopes, call: McpCall) -> Decision:
    """The policy's decision on ``call`` (stamped by the gate), its annotations as listed.

    A tool the server did not list, or a call whose server was not listed, is read as the MCP
    specification reads a tool that says nothing: destructive and open-world.
    """
    listed = call.listed
    annotations = listed.annotations if listed is not None else None
    return decide_tool(scopes, call.subject, holds=conditions_of(annotations))


def list_options(input: object) -> dict[str, Any]:
    """The options of a scheduled call (``StartActivityInput``) its server's listing takes."""
    options: dict[str, Any] = {}
    for name in _LIST_OPTIONS:
        value = getattr(input, name, None)
        if value is not None:
            options[name] = value
    return options


def _catalog() -> ToolCatalog | None:
    # Imported on use: the gate imports this module.
    from jamjet_temporal.gate._workflow import current_gate

    gate = current_gate()
    return None if gate is None else gate.mcp


async def call_tool(
    server: str,
    tool: str,
    arguments: Mapping[str, JsonValue] | None = None,
    *,
    idempotency_key: str | None = None,
    **activity_options: Any,
) -> JsonValue:
    """Call tool ``tool`` of the MCP server declared as ``server``, durably.

    The policy gate decides it as the tool ``server.tool`` (``blocked_tools``,
    ``allowed_tools``, ``require_approval_for`` and rules match that name; rules with
    ``when:`` test the annotations the server listed) before it is scheduled; the worker then
    records the decision and the call in the audit trail. The run's first call of a server
    lists its tools first (once per run, recorded in history).

    Args:
        server: The server's alias (``JamJetConfig.mcp_servers``).
        tool: The tool's name.
        arguments: Its arguments, by name.
        idempotency_key: Sent to the server with the call; None: the step's own key.
        **activity_options: Passed to ``workflow.execute_activity`` (``activity_id``,
            ``summary``, ``start_to_close_timeout``, ``heartbeat_timeout``, ``retry_policy``,
            ...); the defaults are 120 s, heartbeats every 30 s, the default retry policy. The
            server's listing, when this call makes it, takes the same timeouts and retries.

    Returns:
        The tool's structured content if it returned any; else its text when it returned one
        text; else its content as a list (texts as strings, other items as MCP sends them);
        None for no content.

    Raises:
        ActivityError: The tool failed: ``cause.type`` is ``McpToolError`` for an error result
            or a tool the server does not list (non-retryable), ``McpToolDriftError`` when the
            tool changed since the run listed it, ``ToolDeniedError`` /
            ``ApprovalRequiredError`` when the gate refused, ``ConfigError`` for an unknown
            server alias, ``McpServerError`` when the server could not be reached, did not
            answer in time, or broke the protocol.
        ConfigError: Called outside workflow code.
    """
    _in_workflow("call_tool")
    call = McpCall(
        server=server,
        tool=tool,
        arguments=dict(arguments or {}),
        idempotency_key=idempotency_key,
    )
    options = {"summary": f"tool {server}.{tool}", **_DEFAULTS, **activity_options}
    result: JsonValue = await workflow.execute_activity(MCP_CALL_ACTIVITY, call, **options)
    return result


async def call(
    tool: str,
    arguments: Mapping[str, JsonValue] | None = None,
    *,
    idempotency_key: str | None = None,
    **activity_options: Any,
) -> JsonValue:
    """Call an MCP tool by its policy name, ``ALIAS.TOOL``: ``await mcp.call(
    "time.get_current_time", {"timezone": "UTC"})``.

    The same as :func:`call_tool` with the name split at its first dot (aliases have none).

    Raises:
        ConfigError: ``tool`` is not ``ALIAS.TOOL``, or this is not workflow code.
        ActivityError: As for :func:`call_tool`.
    """
    _in_workflow("call")
    try:
        server, name = split_subject(tool)
    except ValueError as err:
        raise ConfigError(f"mcp.call: {err}") from None
    return await call_tool(
        server, name, arguments, idempotency_key=idempotency_key, **activity_options
    )


async def list_tools(server: str, **activity_options: Any) -> list[McpToolInfo]:
    """The tools MCP server ``server`` lists (names, descriptions, input schemas, annotations).

    A runtime activity (``jamjet.mcp.list_tools``), not a tool call: the gate does not decide
    it. It runs once per run and server (later calls, and the gate deciding tool calls, use the
    same list); its result is in the run's history, so a replay does not ask the server again.

    Args:
        server: The server's alias.
        **activity_options: Passed to ``workflow.execute_activity``.

    Raises:
        ConfigError: Called outside workflow code.
    """
    _in_workflow("list_tools")
    catalog = _catalog()
    if catalog is not None:
        return list(await catalog.ensure(server, activity_options))
    options = {**_DEFAULTS, **activity_options}
    with runtime_call():
        handle = workflow.start_activity(
            MCP_LIST_ACTIVITY, server, result_type=list[McpToolInfo], **options
        )
    tools: list[McpToolInfo] = await handle
    return tools


def mcp_tools(server: str, only: Sequence[str] | None = None, **activity_options: Any) -> McpTools:
    """An MCP server's tools for an agent: ``@task(tools=[search, mcp_tools("files",
    only=["read_text_file", "list_directory"])])``.

    The agent's allow-list gets ``ALIAS.TOOL`` for each tool of ``only`` (``ALIAS.*`` without
    it); ``agent.run`` lists the server's tools once per run and offers these to the model, as
    ``ALIAS__TOOL`` functions with the server's descriptions and input schemas. Each call is
    decided by the gate as ``ALIAS.TOOL``, like any MCP call; an error result goes back to the
    model as a tool error.

    Args:
        server: The server's alias.
        only: The tools to offer, by name; None: every tool the server lists.
        **activity_options: For each call (``start_to_close_timeout``, ``retry_policy``, ...);
            the defaults are those of :func:`call_tool`.

    Raises:
        ConfigError: The alias or a tool name is not valid, or ``only`` is one string.
    """
    problem = alias_problem(server)
    if problem is not None:
        raise ConfigError(f"mcp_tools: {problem}")
    names: tuple[str, ...] | None = None
    if only is not None:
        if isinstance(only, str):
            raise ConfigError(f"mcp_tools('{server}', only=...): give a list of tool names")
        names = tuple(only)
        for name in names:
            problem = tool_problem(name)
            if problem is not None:
                raise ConfigError(f"mcp_tools('{server}', only=...): {problem}")
    return McpTools(server=server, only=names, options=dict(activity_options))


def model_name(server: str, tool: str) -> str:
    """The function name a model sees for an MCP tool: ``ALIAS__TOOL`` (dots as ``_``), as
    model APIs allow (letters, digits, ``_``, ``-``; at most 64)."""
    name = f"{server}__{tool.replace('.', '_')}"
    if len(name) <= 64:
        return name
    suffix = hashlib.sha256(f"{server}.{tool}".encode()).hexdigest()[:8]
    return f"{name[:55]}_{suffix}"


AgentTool = tuple[
    str, dict[str, JsonValue], Callable[[dict[str, JsonValue]], list[McpCall]], dict[str, Any]
]
"""An MCP tool as an agent offers it: the name the model sees, its function schema, how the
model's arguments become the call, and the call's activity options."""


async def agent_tools(toolset: McpTools) -> list[AgentTool]:
    """The tools ``toolset`` offers an agent in this run, as the agent loop calls them.

    Raises:
        ConfigError: Outside a workflow on a worker with ``JamJetPlugin`` (the tools are
            listed and called through its activities), or a tool of ``only`` is not listed.
    """
    catalog = _catalog() if workflow.in_workflow() else None
    if catalog is None:
        raise ConfigError(
            f"agent.run: the MCP tools of '{toolset.server}' are listed and called through "
            "activities: run the agent in a workflow on a worker with JamJetPlugin (outside "
            "one, offer it @task tools only)"
        )
    options = {k: v for k, v in toolset.options.items() if k in _LIST_OPTIONS}
    listed = await catalog.ensure(toolset.server, options)
    try:
        picked = toolset.pick(listed)
    except LookupError as err:
        raise ConfigError(str(err)) from None
    options = {**_DEFAULTS, **toolset.options}
    offered: list[AgentTool] = []
    for tool in picked:
        name = model_name(toolset.server, tool.name)
        parameters = {k: v for k, v in tool.input_schema.items() if k != "$schema"}
        schema: dict[str, JsonValue] = {
            "type": "function",
            "function": {
                "name": name,
                "description": tool.description or tool.title or tool.name,
                "parameters": parameters or {"type": "object", "properties": {}},
            },
        }
        summary = {"summary": f"tool {toolset.server}.{tool.name}"}  # unless the caller gave one
        offered.append((name, schema, _binder(toolset.server, tool.name), {**summary, **options}))
    return offered


def _binder(server: str, tool: str) -> Callable[[dict[str, JsonValue]], list[McpCall]]:
    def bind(arguments: dict[str, JsonValue]) -> list[McpCall]:
        return [McpCall(server=server, tool=tool, arguments=arguments)]

    return bind
