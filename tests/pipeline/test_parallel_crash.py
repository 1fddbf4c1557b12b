"""A parallel node whose worker is SIGKILLed while both branches run: each branch's side effect
happens exactly once, and the run completes on the worker that takes over."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import uuid
from pathlib import Path

from temporalio.client import Client

from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.pipeline import PIPELINE_WORKFLOW, PipelineResult, PipelineRun
from jamjet_temporal.pipeline._spec import parse_pipeline
from jamjet_temporal.pipeline._workflow import ToolSignature
from tests.chaos_tools import init_ledger

TOOLS = Path(__file__).resolve().parent.parent / "chaos_tools.py"

PIPELINE = """
workflow: {id: fan, start: fan, heartbeat_timeout_seconds: 2}
nodes:
  fan: {type: parallel, branches: [left, right], join: done}
  left: {type: tool, tool: effect, arguments: {step: left, value: 1}, output_key: l, next: done}
  right: {type: tool, tool: effect, arguments: {step: right, value: 2}, output_key: r, next: done}
  done: {type: end}
"""


async def worker(address: str, queue: str, ledger: Path, name: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env["CHAOS_LEDGER"] = str(ledger)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jamjet_temporal",
        "worker",
        "--tools",
        str(TOOLS),
        "--task-queue",
        queue,
        "--identity",
        name,
        "--address",
        address,
        "--sticky-timeout",
        "1",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        cwd=ledger.parent,
    )


def rows(ledger: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(ledger, timeout=30) as db:
        return db.execute(sql).fetchall()


async def test_killed_worker_mid_parallel_runs_each_branch_effect_once(
    client: Client, temporal_server: DevServer, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    init_ledger(ledger)
    queue = f"fan-{uuid.uuid4().hex[:8]}"
    first = await worker(temporal_server.address, queue, ledger, "doomed")
    second = None
    try:
        handle = await client.start_workflow(
            PIPELINE_WORKFLOW,
            PipelineRun(
                spec=parse_pipeline(PIPELINE, "fan.yaml"),
                tool_params={"effect": ToolSignature(params=["step", "value"], required=2)},
            ),
            id=f"fan-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
            result_type=PipelineResult,
        )
        # Both branches are running on the doomed worker: kill it mid-step.
        for _ in range(600):
            started = rows(ledger, "SELECT DISTINCT activity_id FROM executions")
            if len(started) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(started) == 2, "both branches should have started on the first worker"
        first.send_signal(signal.SIGKILL)
        await first.wait()
        second = await worker(temporal_server.address, queue, ledger, "rescuer")
        result: PipelineResult = await asyncio.wait_for(handle.result(), 120)
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
    assert (result.state["l"], result.state["r"]) == (2, 3)  # effect returns value + 1
    effects = rows(ledger, "SELECT step, count(*) FROM ledger GROUP BY step ORDER BY step")
    assert effects == [("left", 1), ("right", 1)]
    attempts = rows(ledger, "SELECT activity_id, max(attempt) FROM executions GROUP BY 1")
    # At least one branch was still running when the worker died and was retried elsewhere.
    assert any(int(attempt) > 1 for _, attempt in attempts)  # type: ignore[call-overload]
