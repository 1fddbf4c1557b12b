"""Agent workflows for the MCP tests (a module of their own: the sandbox re-imports it).

``library`` is also the workflow of the committed history ``tests/histories/mcp/library.json``:
changing what it schedules makes ``test_mcp_replay`` fail, as it should.
"""

from __future__ import annotations

from typing import Any

from jamjet_temporal import agent, mcp, task, workflow
from jamjet_temporal.agent import AgentResult
from jamjet_temporal.mcp import mcp_tools


@task
async def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


@task(
    tools=[
        shout,
        mcp_tools("filesystem", only=["read_text_file", "list_directory"]),
        mcp_tools("time", only=["get_current_time"]),
    ]
)
async def librarian(question: str) -> AgentResult:
    return await agent.run(question)


@workflow
async def library(question: str) -> dict[str, Any]:
    """The agent answers, then plain code stamps the answer with the time server."""
    answer = await librarian(question)
    now = await mcp.call("time.get_current_time", {"timezone": "UTC"})
    return {"answer": answer.model_dump(mode="json"), "now": now}
