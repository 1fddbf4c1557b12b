"""Start one run of the crash-safe pipeline: python -m workflows.crash_safe.starter"""

import asyncio
import uuid

from temporalio.client import Client
from temporalio.envconfig import ClientConfig

from jamjet_temporal import JamJetPlugin
from workflows.crash_safe.pipeline import pipeline
from workflows.crash_safe.worker import TASK_QUEUE


async def main() -> None:
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", "localhost:7233")
    client = await Client.connect(**config, plugins=[JamJetPlugin()])
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    result = await client.execute_workflow(pipeline.run, id=run_id, task_queue=TASK_QUEUE)
    print(f"{run_id}: {result}")


if __name__ == "__main__":
    asyncio.run(main())
