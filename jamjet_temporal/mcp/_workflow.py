"""MCP tools from workflow code: each call is the ``jamjet.mcp.call_tool`` activity.

Runs in the workflow sandbox. The call names the server by its alias only; the worker holds the
server's command or URL and its credentials. The policy gate decides the call as the tool
``ALIAS.TOOL`` before it is scheduled, and records it like any other tool.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import JsonValue
from temporalio import workflow

from jamjet_temporal._shared._activity import DEFAULT_RETRY_POLICY
from jamjet_temporal._shared._runtime import runtime_call
from jamjet_temporal._shared._wire import MCP_CALL_ACTIVITY, MCP_LIST_ACTIVITY
from jamjet_temporal.errors import ConfigError
from jamjet_temporal.mcp._types import McpCall, McpToolInfo

__all__ = ["call_tool", "list_tools"]

#: Defaults of an MCP activity; any of them can be overridden per call.
_DEFAULTS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=120),
    "heartbeat_timeout": timedelta(seconds=30),
    "retry_policy": DEFAULT_RETRY_POLICY,
}


def _in_workflow(what: str) -> None:
    if not workflow.in_workflow():
        raise ConfigError(
            f"jamjet_temporal.mcp.{what}() is for workflow code (it schedules an activity); "
            "outside a workflow, use the mcp SDK's client directly"
        )


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
    ``allowed_tools``, ``require_approval_for`` and rules match that name) before it is
    scheduled; the worker then records the decision and the call in the audit trail.

    Args:
        server: The server's alias (``JamJetConfig.mcp_servers``).
        tool: The tool's name.
        arguments: Its arguments, by name.
        idempotency_key: Sent to the server with the call; None: the step's own key.
        **activity_options: Passed to ``workflow.execute_activity`` (``activity_id``,
            ``summary``, ``start_to_close_timeout``, ``heartbeat_timeout``, ``retry_policy``,
            ...); the defaults are 120 s, heartbeats every 30 s, the default retry policy.

    Returns:
        The tool's structured content if it returned any; else its text when it returned one
        text; else its content as a list (texts as strings, other items as MCP sends them);
        None for no content.

    Raises:
        ActivityError: The tool failed: ``cause.type`` is ``McpToolError`` for an error result
            (non-retryable), ``ToolDeniedError`` / ``ApprovalRequiredError`` when the gate
            refused, ``ConfigError`` for an unknown server alias, ``McpServerError`` when the
            server could not be reached or broke the protocol.
        ConfigError: Called outside workflow code.
    """
    _in_workflow("call_tool")
    call = McpCall(
        server=server,
        tool=tool,
        arguments=dict(arguments or {}),
        idempotency_key=idempotency_key,
    )
    options = {**_DEFAULTS, **activity_options}
    result: JsonValue = await workflow.execute_activity(MCP_CALL_ACTIVITY, call, **options)
    return result


async def list_tools(server: str, **activity_options: Any) -> list[McpToolInfo]:
    """The tools MCP server ``server`` lists (names, descriptions, input schemas, annotations).

    A runtime activity (``jamjet.mcp.list_tools``), not a tool call: the gate does not decide
    it. Its result is in the run's history, so a replay does not ask the server again.

    Args:
        server: The server's alias.
        **activity_options: Passed to ``workflow.execute_activity``.

    Raises:
        ConfigError: Called outside workflow code.
    """
    _in_workflow("list_tools")
    options = {**_DEFAULTS, **activity_options}
    with runtime_call():
        handle = workflow.start_activity(
            MCP_LIST_ACTIVITY, server, result_type=list[McpToolInfo], **options
        )
    tools: list[McpToolInfo] = await handle
    return tools
