"""The 5-step workload, written three ways: plain temporalio, @task/@workflow, a YAML pipeline."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity
from temporalio import workflow as temporal_workflow

from jamjet_temporal import task, workflow

STEP_SECONDS = 0.02
STEPS = ("plan", "research", "analyze", "review", "synthesize")


async def _work(name: str, value: int) -> int:
    await asyncio.sleep(STEP_SECONDS)  # stands in for I/O (a model or tool call)
    return value + len(name)


# (a) hand-written temporalio
@activity.defn(name="bench.plain_step")
async def plain_step(name: str, value: int) -> int:
    return await _work(name, value)


@temporal_workflow.defn(name="bench.plain")
class PlainFiveSteps:
    @temporal_workflow.run
    async def run(self, value: int) -> int:
        for name in STEPS:
            value = await temporal_workflow.execute_activity(
                plain_step,
                args=[name, value],
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(seconds=30),
            )
        return value


# (b) @task / @workflow
@task(name="bench.step")
async def step(name: str, value: int) -> int:
    return await _work(name, value)


@workflow(name="bench.sugar")
async def five_steps(value: int) -> int:
    for name in STEPS:
        value = await step(name, value)
    return value


# (c) the same steps as a YAML pipeline (tool nodes calling bench.step)
PIPELINE_YAML = (
    """
workflow: {id: bench-five-steps, start: plan}
nodes:
"""
    + "".join(
        f"""  {name}:
    type: tool
    tool: bench.step
    arguments: {{name: {name}, value: "{{{{ state.value }}}}"}}
    output_key: value
    next: {nxt}
"""
        for name, nxt in zip(STEPS, [*STEPS[1:], "done"], strict=True)
    )
    + """  done:
    type: end
    output: value
"""
)
