"""MCP payloads that cross into workflow history, and the gate's name for a call (pure).

An MCP tool call is the tool ``ALIAS.TOOL`` for the policy gate and the audit trail: the alias
under which the worker's configuration declares the server, a dot, the tool's name as the server
lists it. Aliases carry no dot, so the first dot of a subject always splits it the same way.
Stdlib and pydantic only: workflow code and the gate import this module inside the sandbox.

What a run decides on and what a worker checks again before the call: the tool's input schema
and annotations as the run listed them (:class:`McpListed`), and the conditions those
annotations make true for the policy's ``when:`` rules (:func:`conditions_of`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, JsonValue

from jamjet_temporal._shared._canonical import digest

__all__ = [
    "ALIAS_PATTERN",
    "McpCall",
    "McpListed",
    "McpToolInfo",
    "McpTools",
    "alias_problem",
    "call_problem",
    "conditions_of",
    "split_subject",
]

#: What a server alias may be: ASCII letters, digits, ``_`` and ``-`` (no dot: the gate names a
#: tool ``ALIAS.TOOL``), at most 64 characters.
ALIAS_PATTERN: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
#: What a tool name may be for a call to go ahead: the characters the MCP specification lets tool
#: names use (ASCII letters, digits, ``_``, ``-``, ``.``), 1 to 128 of them. Anything else (a
#: look-alike letter from another script, an invisible character) could spell a blocked tool in a
#: way the policy's globs do not see, so the gate refuses it.
_TOOL_PATTERN: Final = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def tool_problem(tool: object) -> str | None:
    """Why ``tool`` cannot be an MCP tool's name for a call (None when it can)."""
    if not isinstance(tool, str) or _TOOL_PATTERN.fullmatch(tool) is None:
        return (
            f"the MCP tool name {tool!r} is not 1 to 128 ASCII letters, digits, '_', '-' "
            "or '.' (MCP's tool name characters): a name outside them could spell a blocked "
            "tool in a way policy rules do not match"
        )
    return None


def split_subject(subject: str) -> tuple[str, str]:
    """``ALIAS.TOOL`` as (alias, tool): split at the first dot (aliases have none).

    Raises:
        ValueError: ``subject`` has no dot, or nothing on one side of it.
    """
    alias, dot, tool = subject.partition(".")
    if not dot or not alias or not tool:
        raise ValueError(
            f"{subject!r} is not ALIAS.TOOL: name the server's alias and the tool, e.g. "
            "'time.get_current_time'"
        )
    return alias, tool


def alias_problem(alias: object) -> str | None:
    """Why ``alias`` cannot name an MCP server (None when it can)."""
    if not isinstance(alias, str) or ALIAS_PATTERN.fullmatch(alias) is None:
        return (
            f"the MCP server alias {alias!r} is not 1 to 64 ASCII letters, digits, '_' or '-' "
            "(starting with a letter, digit or '_')"
        )
    return None


class McpListed(BaseModel):
    """What a run recorded about a tool when it listed its server's tools.

    Set on every call by the run's gate, from the list in the run's history (never by the
    caller); the worker lists the server's tools again right before the call and refuses it
    (``McpToolDriftError``) when the tool's input schema or annotations are not these any more.

    Attributes:
        found: Whether the server listed the tool at all.
        schema_digest: ``sha256:`` digest of the canonical JSON of its input schema.
        annotations: Its annotations as the server sent them (what ``when:`` rules decided on).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    found: bool
    schema_digest: str | None = None
    annotations: dict[str, JsonValue] | None = None


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
        listed: The tool as the run listed it: set by the gate, checked by the worker.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    server: str
    tool: str
    arguments: dict[str, JsonValue] = {}
    idempotency_key: str | None = None
    listed: McpListed | None = None

    @property
    def subject(self) -> str:
        """The tool's name for policy and audit: ``ALIAS.TOOL``."""
        return f"{self.server}.{self.tool}"


def call_problem(call: McpCall) -> str | None:
    """Why the gate refuses ``call`` whatever the policy says (None when it does not)."""
    return alias_problem(call.server) or tool_problem(call.tool)


def conditions_of(annotations: Mapping[str, JsonValue] | None) -> frozenset[str]:
    """The ``when:`` conditions an MCP tool's annotations make true.

    Read with the MCP specification's defaults, so a server that says nothing gets the careful
    reading: ``readOnlyHint`` false, ``destructiveHint`` true (for a tool that is not read-only),
    ``idempotentHint`` false, ``openWorldHint`` true. A value that is not a boolean counts as
    not given.

    Args:
        annotations: The tool's annotations as the server listed them (camelCase keys).

    Returns:
        Some of ``destructive``, ``read_only``, ``idempotent``, ``open_world``.
    """
    given = annotations or {}

    def hint(name: str, default: bool) -> bool:
        value = given.get(name)
        return value if isinstance(value, bool) else default

    read_only = hint("readOnlyHint", False)
    holds = set()
    if read_only:
        holds.add("read_only")
    elif hint("destructiveHint", True):
        holds.add("destructive")
    if hint("idempotentHint", False):
        holds.add("idempotent")
    if hint("openWorldHint", True):
        holds.add("open_world")
    return frozenset(holds)


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

    def listed(self) -> McpListed:
        """What a call of this tool carries for the worker to check (drift)."""
        return McpListed(
            found=True,
            schema_digest=digest(self.input_schema),
            annotations=self.annotations,
        )


@dataclass(frozen=True)
class McpTools:
    """An MCP server's tools, offered to an agent: ``@task(tools=[mcp_tools("files")])``.

    Made by :func:`jamjet_temporal.mcp.mcp_tools`. The agent's allow-list gets ``ALIAS.TOOL``
    for each tool in ``only`` (``ALIAS.*`` without it); ``agent.run`` lists the server's tools
    once per run and offers them to the model with their JSON schemas.

    Attributes:
        server: The server's alias.
        only: The tools offered, by name; None: every tool the server lists.
        options: Activity options of each call (and of the listing).
    """

    server: str
    only: tuple[str, ...] | None = None
    options: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def globs(self) -> tuple[str, ...]:
        """The allow-list entries: ``ALIAS.TOOL`` each, or ``ALIAS.*``."""
        if self.only is None:
            return (f"{self.server}.*",)
        return tuple(f"{self.server}.{tool}" for tool in self.only)

    def pick(self, tools: Sequence[McpToolInfo]) -> list[McpToolInfo]:
        """The listed tools this set offers, in ``only``'s order (else the server's).

        Raises:
            LookupError: A tool of ``only`` is not among ``tools`` (the message names it and
                the tools the server lists).
        """
        if self.only is None:
            return [tool for tool in tools if tool_problem(tool.name) is None]
        by_name = {tool.name: tool for tool in tools}
        missing = [name for name in self.only if name not in by_name]
        if missing:
            listed = ", ".join(sorted(by_name)) or "none"
            raise LookupError(
                f"mcp_tools('{self.server}', only=[...]): the server lists no tool "
                f"{', '.join(repr(name) for name in missing)} (it lists: {listed})"
            )
        return [by_name[name] for name in self.only]
