"""A worker process of one "host" of the multi-host test (run inside the host's namespace):

    ip netns exec NS .venv/bin/python -m tests.multihost.worker CONFIG_JSON HOST INDEX

The config (written by the test) names the Temporal server, the task queue, the policy and
approvals files, the shared PostgreSQL audit and memory stores, the model server and the ledger;
``HOST`` picks the host's own copy of the audit signing key (its checkpoint marks live beside
it, as on a real host). Prints ``polling`` once the worker polls; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.plugin import AuditConfig, LLMConfig, MemoryConfig
from tests.multihost.mh_tools import book, purge
from tests.multihost.mh_workflows import governed


async def main(cfg: dict[str, Any], host: str, index: str) -> None:
    os.environ.update(
        {
            "MULTIHOST_LEDGER_DSN": cfg["ledger_dsn"],
            "MULTIHOST_LEDGER_SCHEMA": cfg["ledger_schema"],
            "MULTIHOST_HOST": host,
        }
    )
    config = JamJetConfig(
        policy=cfg["policy"],
        approvals=cfg["approvals"],
        llm=LLMConfig(base_url=cfg["model_url"]),
        audit=AuditConfig(store=cfg["audit"], key=cfg["keys"][host]),
        memory=MemoryConfig(store=cfg["memory"]),
    )
    client = await Client.connect(
        cfg["address"], plugins=[JamJetPlugin(config)], identity=f"{host}-w{index}@{os.getpid()}"
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Worker(
        client,
        task_queue=cfg["task_queue"],
        workflows=[governed],
        activities=[book, purge],
        # A run whose cached worker died goes back to the shared queue this soon.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=2),
        graceful_shutdown_timeout=timedelta(seconds=1),
    ):
        print("polling", flush=True)
        await stop.wait()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.WARNING,
        format=f"%(asctime)s {sys.argv[2]}-w{sys.argv[3]} %(name)s: %(message)s",
    )
    config_path, host, index = sys.argv[1:4]
    asyncio.run(main(json.loads(Path(config_path).read_text()), host, index))
