"""MCP payloads that cross into workflow history, and the gate's name for a call (pure).

An MCP tool call is the tool ``ALIAS.TOOL`` for the policy gate and the audit trail: the alias
under which the worker's configuration declares the server, a dot, the tool's name as the server
lists it. Aliases carry no dot, so the first dot of a subject always splits it the same way.
Stdlib and pydantic only: workflow code and the gate import this module inside the sandbox.
"""

from __future__ import annotations

import re
from typing import Final

from pydantic import BaseModel, ConfigDict, JsonValue

__all__ = [
    "ALIAS_PATTERN",
    "McpCall",
    "McpToolInfo",
    "alias_problem",
    "call_problem",
]

#: What a server alias may be: ASCII letters, digits, ``_`` and ``-`` (no dot: the gate names a
#: tool ``ALIAS.TOOL``), at most 64 characters.
ALIAS_PATTERN: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
#: What a tool name may be for a call to go ahead: the characters the MCP specification lets tool
#: names use (ASCII letters, digits, ``_``, ``-``, ``.``), 1 to 128 of them. Anything else (a
#: look-alike letter from another script, an invisible character) could spell a blocked tool in a
#: way the policy's globs do not see, so the gate refuses it.
_TOOL_PATTERN: Final = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def alias_problem(alias: object) -> str | None:
    """Why ``alias`` cannot name an MCP server (None when it can)."""
    if not isinstance(alias, str) or ALIAS_PATTERN.fullmatch(alias) is None:
        return (
            f"the MCP server alias {alias!r} is not 1 to 64 ASCII letters, digits, '_' or '-' "
            "(starting with a letter, digit or '_')"
        )
    return None


class McpCall(BaseModel):
    """One call of one MCP server's tool: the argument of ``jamjet.mcp.call_tool``.

    Attributes:
        server: The server's alias in the worker's configuration (``JamJetConfig.mcp_servers``,
            a pipeline's ``mcp:`` block, ``jamjet.toml``). Never its command, URL or
            credentials: those stay on the worker.
        tool: The tool's name, as the server lists it.
        arguments: The tool's arguments, by name.
        idempotency_key: A key for the server to deduplicate the call on; None: the step's
            own key (``idempotency_key()``, the same for every retry of this call). Sent in the
            request's ``_meta`` under ``jamjet.dev/idempotency-key``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    server: str
    tool: str
    arguments: dict[str, JsonValue] = {}
    idempotency_key: str | None = None

    @property
    def subject(self) -> str:
        """The tool's name for policy and audit: ``ALIAS.TOOL``."""
        return f"{self.server}.{self.tool}"


def call_problem(call: McpCall) -> str | None:
    """Why the gate refuses ``call`` whatever the policy says (None when it does not)."""
    problem = alias_problem(call.server)
    if problem is not None:
        return problem
    if _TOOL_PATTERN.fullmatch(call.tool) is None:
        return (
            f"the MCP tool name {call.tool!r} is not 1 to 128 ASCII letters, digits, '_', '-' "
            "or '.' (MCP's tool name characters): a name outside them could spell a blocked "
            "tool in a way policy rules do not match"
        )
    return None


class McpToolInfo(BaseModel):
    """One tool an MCP server lists (the result of ``jamjet.mcp.list_tools``).

    Attributes:
        name: The tool's name (call it as ``ALIAS.NAME`` for policy).
        description: What the server says the tool does.
        input_schema: The JSON Schema of its arguments.
        title: A human-readable title, when the server gives one.
        annotations: The server's hints about the tool (``readOnlyHint``, ``destructiveHint``,
            ``idempotentHint``, ``openWorldHint``), as the server sent them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str | None = None
    input_schema: dict[str, JsonValue] = {}
    title: str | None = None
    annotations: dict[str, JsonValue] | None = None
