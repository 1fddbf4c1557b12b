"""What an MCP tool call costs inside the durable runtime: one run, one server (the official
`mcp-server-time`, `get_current_time`), four ways.

    python bench/mcp_overhead.py [--runs 20] [--calls 10] [--audit-store URL]

* bare: the `mcp` SDK client, connected once, calling the tool in a loop (no Temporal).
* temporalio-mcp: Temporal's own integration (`MCPPlugin`, `TemporalMCPClient`), no gate; skipped
  when `temporalio-mcp` is not installed (it is in the `[dev]` extra).
* ours, ungoverned: `JamJetPlugin` with the server and no policy, the audit trail off (the
  run still lists the server's tools once and each call checks them for drift).
* ours, governed: the same with a 100-rule policy whose deciding rule tests the tool's
  annotations (`when: read_only`) and every decision and call recorded in the audit store
  (SQLite by default, synchronous=FULL).

Each workflow run lists once and makes ``--calls`` calls one after the other; runs of the three
workflow variants are interleaved round by round, on one dev server. Prints the median time per
call, the ratios, the gate's share of a governed call: (governed - ungoverned) / governed
(target < 15%), and all we add over temporalio-mcp: (governed - temporalio-mcp) / governed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp import Client as McpClient
from mcp import StdioServerParameters
from mcp.client.stdio import stdio_client
from temporalio.client import Client
from temporalio.worker import Worker

from bench._mcp_workload import ARGUMENTS, Ours, Theirs
from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.cli import DevServer, free_port
from jamjet_temporal.plugin import AuditConfig
from jamjet_temporal.policy import Policy, Rule

TIME_SERVER = {"command": sys.executable, "args": ["-m", "mcp_server_time"]}


def hundred_rules() -> Policy:
    rules = [Rule(match=f"svc{i}.*", action="block") for i in range(98)]
    return Policy(
        rules=(
            *rules,
            Rule(match="time.*", action="allow", when="read_only"),
            Rule(match="*", action="block"),
        )
    )


def temporal_mcp_plugin() -> Any | None:
    """temporalio-mcp's plugin with the time server (None: not installed)."""
    try:
        from temporalio.mcp import MCPPlugin
    except ImportError:
        return None

    def factory() -> McpClient:
        params = StdioServerParameters(command=TIME_SERVER["command"], args=TIME_SERVER["args"])
        return McpClient(stdio_client(params))

    return MCPPlugin({"time": factory})


async def bare(runs: int, calls: int) -> list[float]:
    """Seconds per call, one sample per round of ``calls``."""
    params = StdioServerParameters(command=TIME_SERVER["command"], args=TIME_SERVER["args"])
    samples: list[float] = []
    async with McpClient(stdio_client(params)) as client:
        await client.list_tools()
        for _ in range(runs + 1):
            start = time.perf_counter()
            for _ in range(calls):
                result = await client.call_tool("get_current_time", ARGUMENTS)
                assert not result.is_error
            samples.append((time.perf_counter() - start) / calls)
    return samples[1:]  # the first round warms up


async def main(runs: int, calls: int, audit_store: str) -> None:
    server = DevServer(port=free_port())
    await server.astart()
    try:
        servers = {"time": TIME_SERVER}
        variants: dict[str, tuple[Client, Any]] = {}
        workers: list[Worker] = []
        for name, config in {
            "ours, ungoverned": JamJetConfig(audit=AuditConfig(store=None), mcp_servers=servers),
            "ours, governed": JamJetConfig(
                audit=AuditConfig(store=audit_store), policy=hundred_rules(), mcp_servers=servers
            ),
        }.items():
            client = await Client.connect(server.address, plugins=[JamJetPlugin(config)])
            variants[name] = (client, Ours.run)
            workers.append(Worker(client, task_queue=name, workflows=[Ours]))
        plugin = temporal_mcp_plugin()
        if plugin is not None:
            client = await Client.connect(server.address, plugins=[plugin])
            variants["temporalio-mcp"] = (client, Theirs.run)
            workers.append(Worker(client, task_queue="temporalio-mcp", workflows=[Theirs]))
        for worker in workers:
            await worker.__aenter__()
        times: dict[str, list[float]] = {name: [] for name in variants}
        try:

            def runner(name: str) -> Callable[[], Awaitable[Any]]:
                client, run = variants[name]
                return lambda: client.execute_workflow(
                    run, calls, id=f"bench-{uuid.uuid4().hex}", task_queue=name
                )

            for name in variants:  # warm-up: server processes, connections, caches
                await runner(name)()
            for _ in range(runs):
                for name in variants:
                    start = time.perf_counter()
                    await runner(name)()
                    times[name].append((time.perf_counter() - start) / calls)
        finally:
            for worker in workers:
                await worker.__aexit__(None, None, None)
        times["bare mcp client"] = await bare(runs, calls)
    finally:
        await server.astop()
    med = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(
        f"MCP call get_current_time on mcp-server-time, {runs} runs x {calls} calls, "
        "median time per call (a workflow run's wall time / calls; list once per run):"
    )
    order = ["bare mcp client", "temporalio-mcp", "ours, ungoverned", "ours, governed"]
    for name in order:
        if name in med:
            print(f"  {name:<20} {med[name]:8.2f} ms")
    governed, ungoverned = med["ours, governed"], med["ours, ungoverned"]
    print(f"ratio governed / bare client      = {governed / med['bare mcp client']:.2f}")
    if "temporalio-mcp" in med:
        print(f"ratio governed / temporalio-mcp   = {governed / med['temporalio-mcp']:.2f}")
    else:
        print("temporalio-mcp: not installed (pip install temporalio-mcp), skipped")
    print(f"ratio governed / ungoverned       = {governed / ungoverned:.3f}")
    share = (governed - ungoverned) / governed
    print(f"gate's share of a governed call   = {share:.1%}   (target < 15%; {audit_store})")
    if "temporalio-mcp" in med:
        ours = (governed - med["temporalio-mcp"]) / governed
        print(
            f"all we add over temporalio-mcp    = {ours:.1%}   (gate, audit trail, the per-call "
            "drift check's tools/list)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--audit-store", default=None)
    args = parser.parse_args()
    url = args.audit_store or f"sqlite:///{Path(tempfile.mkdtemp()) / 'audit.db'}"
    asyncio.run(main(args.runs, args.calls, url))
