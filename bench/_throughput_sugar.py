"""The zero-sleep 5-step workload with ``@task`` / ``@workflow`` (bench/throughput.py).

A module of its own holding only the workflow and its task, as a team's workflow module
would: Temporal's sandbox re-imports it for every run, on every variant alike.
"""

from __future__ import annotations

from jamjet_temporal import task, workflow

STEPS = ("plan", "research", "analyze", "review", "synthesize")


@task(name="throughput.step")
async def step(name: str, value: int) -> int:
    return value + len(name)


@workflow(name="throughput.sugar")
async def five_steps(value: int) -> int:
    for name in STEPS:
        value = await step(name, value)
    return value
