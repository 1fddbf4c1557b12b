"""MCP tools inside the durable runtime: policy-gated, audited, retried by Temporal.

Servers are configuration, declared once by alias (``JamJetConfig(mcp_servers=...)``, a
pipeline's ``mcp:`` block, a ``jamjet.toml``); workflow code calls ``await
mcp.call_tool("files", "read_text_file", {"path": "notes.md"})``, which the policy gate decides
as the tool ``files.read_text_file`` and the worker runs as the ``jamjet.mcp.call_tool``
activity. Commands, URLs and credentials (``${VAR}`` from the worker's environment) stay on the
worker. ``await mcp.call("time.get_current_time", {"timezone": "UTC"})`` is the same call by its
policy name, and ``@task(tools=[mcp_tools("files", only=[...])])`` offers a server's tools to
an agent. A run lists each server's tools once: rules with ``when:`` decide on the annotations
listed there, and a worker refuses a call whose tool changed since (``McpToolDriftError``). The
activities themselves (``McpActivities``, the ``mcp`` SDK client) are loaded only by the plugin,
and need the ``[mcp]`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal.errors import McpServerError, McpToolDriftError, McpToolError
    from jamjet_temporal.mcp._config import McpServer, read_jamjet_toml, servers_from_mapping
    from jamjet_temporal.mcp._types import McpCall, McpListed, McpToolInfo, McpTools
    from jamjet_temporal.mcp._workflow import call, call_tool, list_tools, mcp_tools

__all__ = [
    "McpCall",
    "McpListed",
    "McpServer",
    "McpServerError",
    "McpToolDriftError",
    "McpToolError",
    "McpToolInfo",
    "McpTools",
    "call",
    "call_tool",
    "list_tools",
    "mcp_tools",
    "read_jamjet_toml",
    "servers_from_mapping",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "jamjet_temporal.errors": ["McpServerError", "McpToolDriftError", "McpToolError"],
        "._config": ["McpServer", "read_jamjet_toml", "servers_from_mapping"],
        "._types": ["McpCall", "McpListed", "McpToolInfo", "McpTools"],
        "._workflow": ["call", "call_tool", "list_tools", "mcp_tools"],
    },
)
