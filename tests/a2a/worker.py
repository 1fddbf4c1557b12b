"""A governed worker in a process of its own, for the test that SIGKILLs it mid-delegation:
``python -m tests.a2a.worker ADDRESS QUEUE AUDIT_URL AGENTS_JSON``."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.plugin import AuditConfig
from tests.a2a.a2a_workflows import Delegate


async def main(address: str, queue: str, audit: str, agents: str) -> None:
    config = JamJetConfig(audit=AuditConfig(store=audit), a2a_agents=json.loads(agents))
    client = await Client.connect(address, plugins=[JamJetPlugin(config)])
    async with Worker(client, task_queue=queue, workflows=[Delegate]):
        print("worker ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main(*sys.argv[1:5]))
    finally:
        sys.stdout.flush()
        os._exit(0)
