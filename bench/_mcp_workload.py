"""The workflows of bench/mcp_overhead.py: the same MCP tool calls, through our gate and through
Temporal's own MCP integration (``temporalio-mcp``, when it is installed)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from jamjet_temporal import mcp

ARGUMENTS = {"timezone": "UTC"}


@workflow.defn(name="bench-mcp.ours")
class Ours:
    """Lists the time server's tools once (the gate does, on the first call), then calls."""

    @workflow.run
    async def run(self, calls: int) -> int:
        for _ in range(calls):
            await mcp.call("time.get_current_time", ARGUMENTS)
        return calls


try:
    from temporalio.mcp import TemporalMCPClient
except ImportError:  # temporalio-mcp is in the [dev] extra only
    TemporalMCPClient = None  # type: ignore[assignment,misc]


@workflow.defn(name="bench-mcp.temporalio-mcp")
class Theirs:
    """The same through ``TemporalMCPClient``: list once, then call."""

    @workflow.run
    async def run(self, calls: int) -> int:
        assert TemporalMCPClient is not None
        client = TemporalMCPClient(
            "time", activity_config={"start_to_close_timeout": timedelta(seconds=60)}
        )
        await client.list_tools()
        for _ in range(calls):
            await client.call_tool("get_current_time", ARGUMENTS)
        return calls
