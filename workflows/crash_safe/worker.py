"""Worker for the crash-safe pipeline: python -m workflows.crash_safe.worker"""

import asyncio

from temporalio.client import Client
from temporalio.envconfig import ClientConfig
from temporalio.worker import Worker

from jamjet_temporal import JamJetPlugin
from workflows.crash_safe.pipeline import analyze, fetch_data, pipeline

TASK_QUEUE = "crash-safe"


async def main() -> None:
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", "localhost:7233")
    client = await Client.connect(**config, plugins=[JamJetPlugin()])
    worker = Worker(
        client, task_queue=TASK_QUEUE, workflows=[pipeline], activities=[fetch_data, analyze]
    )
    print(f"worker polling '{TASK_QUEUE}'; Ctrl-C to stop", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
