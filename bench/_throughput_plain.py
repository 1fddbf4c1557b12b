"""The zero-sleep 5-step workload in plain temporalio (bench/throughput.py's baseline).

A module of its own that imports nothing of jamjet_temporal: a plain worker's sandbox
re-imports a workflow's module for every run, and the baseline must not pay for ours.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio import workflow as temporal_workflow

STEPS = ("plan", "research", "analyze", "review", "synthesize")


@activity.defn(name="throughput.plain_step")
async def plain_step(name: str, value: int) -> int:
    return value + len(name)


@temporal_workflow.defn(name="throughput.plain")
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
