"""A worker for the transfer demo: python -m workflows.transfer.worker ADDRESS APPROVALS_FILE"""

from __future__ import annotations

import asyncio
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from workflows.transfer.bank import send
from workflows.transfer.transfer import transfer

TASK_QUEUE = "transfers"


async def main(address: str, approvals: str, audit_store: str) -> None:
    config = JamJetConfig(approvals=approvals, audit_store=audit_store)
    client = await Client.connect(address, plugins=[JamJetPlugin(config)])
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=TASK_QUEUE, workflows=[transfer], activities=[send]):
        print("worker ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
