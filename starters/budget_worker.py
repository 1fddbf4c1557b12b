"""A worker process for the budget example (the crash test kills one mid-loop):

.venv/bin/python -m starters.budget_worker ADDRESS MODEL_URL AUDIT_URL
"""

from __future__ import annotations

import asyncio
import signal
import sys

from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.cli import connect
from jamjet_temporal.plugin import AuditConfig, BudgetConfig, LLMConfig
from starters.budget import PRICES, TASK_QUEUE
from workflows.budget import research


async def main(address: str, model_url: str, audit_store: str) -> None:
    config = JamJetConfig(
        llm=LLMConfig(base_url=model_url),
        audit=AuditConfig(store=audit_store),
        budget=BudgetConfig(prices=PRICES),
    )
    client = await connect(address=address, plugins=[JamJetPlugin(config)])
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=TASK_QUEUE, workflows=[research]):
        print("worker ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
