"""A small local MCP server (stdio) with one tool, ``web_search``, over a few bundled pages.

``jamjet.toml`` starts it (``python server.py``); the worker keeps one connection open and
calls the tool as the activity ``jamjet.mcp.call_tool``, decided by the policy as
``search.web_search``. Try it alone with the MCP inspector, or replace it with a real server.
"""

from __future__ import annotations

import re

from mcp.server.mcpserver import MCPServer

server = MCPServer("search")

PAGES = [
    (
        "Durable execution, explained",
        "https://example.com/durable-execution",
        "Durable execution records every step of a program in an event history, so a crash "
        "resumes at the step that was running instead of starting over.",
    ),
    (
        "Why AI agents need durable workflows",
        "https://example.com/agents-durable",
        "Agents make many slow, costly model and tool calls; replaying them after a crash wastes "
        "money and can repeat side effects. Durable workflows run each call once.",
    ),
    (
        "Human approval for agent actions",
        "https://example.com/approvals",
        "Risky actions such as refunds or deployments wait for a signed human decision; the wait "
        "survives restarts and times out safely.",
    ),
    (
        "The Model Context Protocol",
        "https://example.com/mcp",
        "MCP lets an agent call tools served by any process: a local stdio server like this "
        "one, or a remote one over HTTP.",
    ),
    (
        "Audit trails for AI systems",
        "https://example.com/audit",
        "Every tool call and policy decision is recorded in an append-only, hash-chained store "
        "that auditors can verify.",
    ),
]


def _words(text: str) -> set[str]:
    return {word for word in re.findall(r"[a-z0-9]+", text.lower()) if len(word) > 2}


@server.tool(structured_output=False)
def web_search(query: str, count: int = 5) -> str:
    """Search the bundled pages; the best matches first, one per line."""
    wanted = _words(query)
    ranked = sorted(PAGES, key=lambda page: -len(wanted & _words(page[0] + " " + page[2])))
    lines = [f"{title} ({url}): {text}" for title, url, text in ranked[: max(count, 1)]]
    return "\n".join(lines)


if __name__ == "__main__":
    server.run("stdio")
