"""A worker process for the crash-safe pipeline (``starters.crash_safe`` kills one mid-step):

    .venv/bin/python -m starters.crash_safe_worker [ADDRESS [MODEL_URL [AUDIT_URL]]]

Without arguments it connects the way Temporal's tools do (``TEMPORAL_ADDRESS``, profiles;
default ``localhost:7233``, e.g. ``jamjet dev`` in another terminal) and calls the model at
``OPENAI_BASE_URL``. Ctrl-C (or SIGTERM) stops it.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import replace

from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.cli import connect
from jamjet_temporal.plugin import AuditConfig, LLMConfig
from workflows.crash_safe import analyze, fetch_data, pipeline

TASK_QUEUE = "crash-safe"


async def main(
    address: str | None = None, model_url: str | None = None, audit_store: str | None = None
) -> None:
    config = JamJetConfig(llm=LLMConfig(base_url=model_url))  # None: $OPENAI_BASE_URL
    if audit_store:
        config = replace(config, audit=AuditConfig(store=audit_store))
    client = await connect(address=address, plugins=[JamJetPlugin(config)])
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Worker(
        client, task_queue=TASK_QUEUE, workflows=[pipeline], activities=[fetch_data, analyze]
    ):
        print(f"worker ready (task queue '{TASK_QUEUE}')", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
