"""A worker process for the MCP example (``starters.mcp_tools`` kills one mid-run):

    .venv/bin/python -m starters.mcp_tools_worker ADDRESS MODEL_URL APPROVALS_FILE AUDIT_URL FOLDER

The MCP servers are this worker's configuration, by alias: the official filesystem server
(allowed into FOLDER only) and the official time server. Workflows name only the aliases.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from pathlib import Path

from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.cli import connect
from jamjet_temporal.mcp import McpServer
from jamjet_temporal.plugin import AuditConfig, LLMConfig
from workflows.mcp_tools import shelf_report

TASK_QUEUE = "mcp-tools"
ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "workflows" / "mcp_tools_policy.yaml"
#: Where `.ci/run` installs the filesystem server (`npm ci --prefix .ci/node`).
LOCAL_FILESYSTEM = (
    ROOT / ".ci/node/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
)


def filesystem_server(folder: str) -> McpServer:
    """The official filesystem server: the checkout's copy when installed, else through npx."""
    node = shutil.which("node")
    if node is not None and LOCAL_FILESYSTEM.exists():
        return McpServer(command=node, args=[str(LOCAL_FILESYSTEM), folder])
    return McpServer(command="npx", args=["-y", "@modelcontextprotocol/server-filesystem", folder])


def servers(folder: str) -> dict[str, McpServer]:
    return {
        "filesystem": filesystem_server(folder),
        "time": McpServer(command=sys.executable, args=["-m", "mcp_server_time"]),
    }


async def main(address: str, model_url: str, approvals: str, audit: str, folder: str) -> None:
    config = JamJetConfig(
        llm=LLMConfig(base_url=model_url),
        policy=str(POLICY),
        approvals=approvals,
        audit=AuditConfig(store=audit),
        mcp_servers=servers(folder),
    )
    client = await connect(address=address, plugins=[JamJetPlugin(config)])
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=TASK_QUEUE, workflows=[shelf_report]):
        print("worker ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
