"""Recovery time: from SIGKILL of a worker to its step running again on another worker.

    python bench/recovery.py [--rounds 10] [--seed N]

Each round runs a fresh one-step pipeline (a 5 s task, bench/recovery_tools.py) with the
defaults a user gets (heartbeat_timeout_seconds: 3, the default retry policy whose first
retry waits 1 s, the worker CLI's default --sticky-timeout 3). Worker A (a ``jamjet worker``
subprocess) takes the step; worker B is started and polls; A is SIGKILLed at a random point
of its heartbeat cycle; recovery is the time from the kill until the step's attempt 2 starts
on B. B then finishes the step and is worker A of the next round.
Prints each round, then the median (target: heartbeat timeout + 2 s = 5 s), min and max.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client

from jamjet_temporal import JamJetPlugin
from jamjet_temporal.cli import DevServer, free_port, load_tools, tool_signatures
from jamjet_temporal.pipeline import (
    PIPELINE_WORKFLOW,
    PipelineResult,
    PipelineRun,
    parse_pipeline,
)

TOOLS = Path(__file__).resolve().parent / "recovery_tools.py"
HEARTBEAT_TIMEOUT = 3
STEP_SECONDS = 5.0

PIPELINE_YAML = f"""
workflow:
  id: recovery
  start: work
  heartbeat_timeout_seconds: {HEARTBEAT_TIMEOUT}
nodes:
  work:
    type: tool
    tool: long_step
    arguments: {{seconds: {STEP_SECONDS}}}
    next: done
  done:
    type: end
"""


def start_worker(address: str, queue: str, name: str, log: Path) -> subprocess.Popen[str]:
    """A ``jamjet worker`` subprocess, returned once it polls."""
    proc = subprocess.Popen(
        [
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
        ],
        cwd=log.parent,  # its audit trail (.jamjet/audit.db) goes there too
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")},
            "RECOVERY_LOG": str(log),
        },
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "polling" in line:
            return proc
    raise RuntimeError(f"worker {name} exited with code {proc.wait()} before polling")


def find_attempt(log: Path, workflow_id: str, attempt: int) -> dict[str, Any] | None:
    for line in log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry["workflow_id"] == workflow_id and entry["attempt"] == attempt:
            return dict(entry)
    return None


async def attempt_started(log: Path, workflow_id: str, attempt: int) -> dict[str, Any]:
    """The log line of ``workflow_id``'s attempt ``attempt``, once it is there."""
    while True:
        entry = find_attempt(log, workflow_id, attempt)
        if entry is not None:
            return entry
        await asyncio.sleep(0.01)


async def main(rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    spec = parse_pipeline(PIPELINE_YAML, "bench/recovery.py")
    signatures = tool_signatures(spec, load_tools([str(TOOLS)]))
    queue = f"recovery-{uuid.uuid4().hex[:6]}"
    server = DevServer(port=free_port())
    await server.astart()
    workers: list[subprocess.Popen[str]] = []
    try:
        client = await Client.connect(server.address, plugins=[JamJetPlugin()])
        with tempfile.TemporaryDirectory(prefix="jamjet-recovery-") as tmp:
            log = Path(tmp) / "attempts.jsonl"
            log.touch()
            a = await asyncio.to_thread(start_worker, server.address, queue, "worker-0", log)
            workers.append(a)
            recoveries: list[float] = []
            print(
                f"{rounds} rounds · heartbeat timeout {HEARTBEAT_TIMEOUT} s · "
                f"default retry (first retry after 1 s) · seed {seed}"
            )
            for r in range(1, rounds + 1):
                workflow_id = f"{queue}-{r:02d}"
                handle = await client.start_workflow(
                    PIPELINE_WORKFLOW,
                    PipelineRun(spec=spec, tool_params=signatures),
                    id=workflow_id,
                    task_queue=queue,
                    result_type=PipelineResult,
                )
                async with asyncio.timeout(30):
                    first = await attempt_started(log, workflow_id, 1)
                assert first["pid"] == a.pid
                b = await asyncio.to_thread(start_worker, server.address, queue, f"worker-{r}", log)
                workers.append(b)
                # The SDK sends heartbeats at most every 0.8 x the timeout: kill anywhere in it.
                await asyncio.sleep(rng.uniform(0, 0.8 * HEARTBEAT_TIMEOUT))
                a.send_signal(signal.SIGKILL)
                killed_at = time.time()
                a.wait()
                workers.remove(a)
                # Bounded: a step that fails for good never reaches attempt 2.
                async with asyncio.timeout(30):
                    second = await attempt_started(log, workflow_id, 2)
                assert second["pid"] == b.pid, "attempt 2 ran somewhere other than worker B"
                recovery = second["t"] - killed_at
                recoveries.append(recovery)
                await handle.result()
                print(
                    f"  round {r:2d}: SIGKILL {killed_at - first['t']:4.2f} s into the step → "
                    f"attempt 2 on the other worker {recovery:4.2f} s later"
                )
                a = b
        print(
            f"recovery median: {statistics.median(recoveries):.2f} s over {rounds} kills "
            f"(heartbeat timeout {HEARTBEAT_TIMEOUT} s; target <= {HEARTBEAT_TIMEOUT + 2} s)"
        )
        print(f"recovery min {min(recoveries):.2f} s · max {max(recoveries):.2f} s")
    finally:
        for proc in workers:
            proc.kill()
            proc.wait()
        await server.astop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None, help="seed of the kill points")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.seed if args.seed is not None else random.randrange(2**32)))
