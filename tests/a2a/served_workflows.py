"""Workflows served as A2A agents in the tests (a module of their own: the sandbox re-imports it,
and ``jamjet a2a serve tests.a2a.served_workflows:NAME`` imports it by name)."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

from temporalio import activity

from jamjet_temporal import guard, llm, task, workflow


@task
async def shout(text: str) -> str:
    return text.upper()


@workflow(name="test-served.summarize")
async def summarize(topic: str) -> dict[str, object]:
    """Summarizes a topic in one line (for the tests)."""
    line = await shout(f"notes on {topic}")
    return {"topic": topic, "summary": line}


@workflow(name="test-served.plan")
async def plan(goal: str, steps: int = 2) -> list[str]:
    """Plans a goal in a few steps."""
    return [f"{goal}: step {n + 1}" for n in range(steps)]


def _note(log: Path, line: str) -> None:
    with log.open("a", encoding="utf-8") as handle:
        handle.write(line)


@task(heartbeat_timeout=timedelta(seconds=2))
async def crunch(text: str, seconds: float) -> str:
    """Works for ``seconds`` (heartbeating), writing a line per attempt to $A2A_ATTEMPTS_LOG."""
    log = os.environ.get("A2A_ATTEMPTS_LOG")
    if log:
        _note(Path(log), f"{activity.info().workflow_id} {activity.info().attempt}\n")
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        activity.heartbeat()
        await asyncio.sleep(0.2)
    return f"crunched: {text}"


@workflow(name="test-served.slow")
async def slow(text: str) -> str:
    """Works on a text for a few seconds."""
    seconds = 4.0
    return await crunch(text, seconds)


@workflow(name="test-served.spend")
async def spend(calls: int) -> int:
    """Calls the model ``calls`` times (each a budgeted call under the task's budget); returns
    how many it made."""
    made = 0
    for n in range(calls):
        await llm.call(f"estimate {n}", max_tokens=200)
        made += 1
    return made


@workflow(name="test-served.guarded")
async def guarded(amount: float) -> list[str]:
    """Exports data once an approver says so."""
    decision = await guard.requires_approval(action="quick_export", amount=amount)
    return decision.approved_by
