"""Wall time of the same 5-step workload: plain temporalio vs @task/@workflow vs YAML pipeline.

    python bench/overhead.py [--runs 40]

One dev server, one worker, the three variants interleaved round by round so drift in the
machine's load hits all three alike. Prints medians and the ratios b/a and c/a (target ≤ 1.10).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client
from temporalio.worker import Worker

from bench._workload import (
    PIPELINE_YAML,
    PlainFiveSteps,
    five_steps,
    plain_step,
    step,
)
from jamjet_temporal import JamJetPlugin
from jamjet_temporal.cli import DevServer, free_port
from jamjet_temporal.pipeline import (
    PIPELINE_WORKFLOW,
    PipelineResult,
    PipelineRun,
    ToolSignature,
    parse_pipeline,
)


async def main(runs: int) -> None:
    server = DevServer(port=free_port())
    await server.astart()
    try:
        client = await Client.connect(server.address, plugins=[JamJetPlugin(tasks=[step])])
        queue = f"bench-{uuid.uuid4().hex[:6]}"
        spec = parse_pipeline(PIPELINE_YAML, "bench/_workload.py")
        sig = {"bench.step": ToolSignature(params=["name", "value"], required=2)}

        async def plain() -> object:
            return await client.execute_workflow(
                PlainFiveSteps.run, 1, id=f"a-{uuid.uuid4().hex}", task_queue=queue
            )

        async def sugar() -> object:
            return await client.execute_workflow(
                five_steps.run, 1, id=f"b-{uuid.uuid4().hex}", task_queue=queue
            )

        async def pipeline() -> object:
            result = await client.execute_workflow(
                PIPELINE_WORKFLOW,
                PipelineRun(spec=spec, input={"value": 1}, tool_params=sig),
                id=f"c-{uuid.uuid4().hex}",
                task_queue=queue,
                result_type=PipelineResult,
            )
            return result.output

        variants = {
            "a plain temporalio": plain,
            "b @task/@workflow": sugar,
            "c YAML pipeline": pipeline,
        }
        times: dict[str, list[float]] = {k: [] for k in variants}
        async with Worker(
            client,
            task_queue=queue,
            workflows=[PlainFiveSteps, five_steps],
            activities=[plain_step],
        ):
            answers = {k: await fn() for k, fn in variants.items()}  # warm-up, and a check
            assert len(set(answers.values())) == 1, answers
            for _ in range(runs):
                for name, fn in variants.items():
                    start = time.perf_counter()
                    await fn()
                    times[name].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"5-step workload, {runs} runs each, median wall time per run:")
        for name, value in med.items():
            print(f"  {name:<22} {value * 1000:8.1f} ms")
        base = med["a plain temporalio"]
        print(f"ratio b/a = {med['b @task/@workflow'] / base:.3f}   (target <= 1.10)")
        print(f"ratio c/a = {med['c YAML pipeline'] / base:.3f}   (target <= 1.10)")
    finally:
        await server.astop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    asyncio.run(main(parser.parse_args().runs))
