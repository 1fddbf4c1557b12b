"""MCP tools inside the durable runtime: policy-gated, audited, retried by Temporal.

Servers are configuration, declared once by alias (``JamJetConfig(mcp_servers=...)``, a
pipeline's ``mcp:`` block, a ``jamjet.toml``); workflow code calls ``await
mcp.call_tool("files", "read_text_file", {"path": "notes.md"})``, which the policy gate decides
as the tool ``files.read_text_file`` and the worker runs as the ``jamjet.mcp.call_tool``
activity. Commands, URLs and credentials (``${VAR}`` from the worker's environment) stay on the
worker. The activities themselves (``McpActivities``, the ``mcp`` SDK client) are loaded only by
the plugin, and need the ``[mcp]`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal.errors import McpServerError, McpToolError
    from jamjet_temporal.mcp._config import McpServer, read_jamjet_toml, servers_from_mapping
    from jamjet_temporal.mcp._types import McpCall, McpToolInfo
    from jamjet_temporal.mcp._workflow import call_tool, list_tools

__all__ = [
    "McpCall",
    "McpServer",
    "McpServerError",
    "McpToolError",
    "McpToolInfo",
    "call_tool",
    "list_tools",
    "read_jamjet_toml",
    "servers_from_mapping",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "jamjet_temporal.errors": ["McpServerError", "McpToolError"],
        "._config": ["McpServer", "read_jamjet_toml", "servers_from_mapping"],
        "._types": ["McpCall", "McpToolInfo"],
        "._workflow": ["call_tool", "list_tools"],
    },
)
