"""MCP tool integration: an agent reads a folder through the official filesystem MCP server and
stamps its report with the official time server; writing the report waits for a person.

The servers are configuration on the worker (``starters/mcp_tools_worker.py``): this file names
them only by alias. Every MCP call is an activity, decided by the policy gate as
``ALIAS.TOOL``. The worker's policy (``mcp_tools_policy.yaml``) holds every tool its server
marks destructive for approval, so ``filesystem.write_file`` waits for a signed decision, across
worker restarts.
"""

from __future__ import annotations

from jamjet_temporal import agent, mcp, task, workflow
from jamjet_temporal.agent import AgentResult
from jamjet_temporal.mcp import mcp_tools

REPORT = "REPORT.md"


@task(
    tools=[
        mcp_tools("filesystem", only=["list_directory", "read_text_file"]),
        mcp_tools("time", only=["get_current_time"]),
    ]
)
async def reporter(folder: str) -> AgentResult:
    return await agent.run(
        f"Read every note in {folder} and summarise them in a short Markdown report. "
        "Get the current UTC time to stamp it."
    )


@workflow
async def shelf_report(folder: str) -> str:
    result = await reporter(folder)
    stamp = next(
        (call.result for call in result.tool_calls if call.name == "time__get_current_time"),
        None,
    )
    when = stamp.get("datetime") if isinstance(stamp, dict) else "unknown"
    report = f"{result.output}\n\n_Stamped {when} (mcp-server-time)._\n"
    # Destructive by its server's annotations: held for approval by the worker's policy.
    await mcp.call("filesystem.write_file", {"path": f"{folder}/{REPORT}", "content": report})
    return report
