"""A worker process for the transfer example (``starters.transfer`` restarts one mid-run):

.venv/bin/python -m starters.transfer_worker ADDRESS APPROVALS_FILE AUDIT_URL
"""

from __future__ import annotations

import asyncio
import signal
import sys

from temporalio.worker import Worker

from activities.bank import send
from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.cli import connect
from jamjet_temporal.plugin import AuditConfig
from workflows.transfer import transfer

TASK_QUEUE = "transfers"


async def main(address: str, approvals: str, audit_store: str) -> None:
    config = JamJetConfig(approvals=approvals, audit=AuditConfig(store=audit_store))
    client = await connect(address=address, plugins=[JamJetPlugin(config)])
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=TASK_QUEUE, workflows=[transfer], activities=[send]):
        print("worker ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
