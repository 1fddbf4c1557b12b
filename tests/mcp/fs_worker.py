"""A worker process with the official filesystem server behind ``slow_answers.py`` (a test
SIGKILLs it while a ``write_file`` answer is held back):

    python -m tests.mcp.fs_worker ADDRESS QUEUE AUDIT_URL APPROVALS_FILE FOLDER LOG
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.approvals._load import load_approvals
from jamjet_temporal.plugin import AuditConfig
from jamjet_temporal.policy import parse_policy
from tests.mcp.helpers import filesystem_server
from tests.mcp.mcp_workflows import Durable

PROXY = Path(__file__).with_name("slow_answers.py")
#: Every tool the server marks destructive waits for a person.
POLICY = """
rules:
  - {match: "filesystem.*", when: destructive, action: require_approval}
  - {match: "*", action: allow}
"""


async def main(address: str, queue: str, audit: str, approvals: str, folder: str, log: str) -> None:
    server = filesystem_server(Path(folder))
    slow = [str(PROXY), log, "3", "write_file", "--", server["command"], *server["args"]]
    config = JamJetConfig(
        policy=parse_policy(POLICY, "policy.yaml"),
        approvals=load_approvals(approvals),
        audit=AuditConfig(store=audit),
        mcp_servers={"filesystem": {"command": sys.executable, "args": slow}},
    )
    client = await Client.connect(address, plugins=[JamJetPlugin(config)])
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=queue, workflows=[Durable]):
        print("worker ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
