"""The crash-safe pipeline end to end, with its worker killed in the middle of a step.

    .venv/bin/python -m starters.crash_safe              # --no-crash: run it straight through

Starts the local model server and a worker process (``starters.crash_safe_worker``), then runs
``pipeline`` from ``workflows/crash_safe.py``. While ``analyze`` waits on the model, the worker
is killed (SIGKILL) and a second one is started. When the dead worker's heartbeats stop (the
``@task`` default heartbeat timeout, 30 s), Temporal hands ``analyze`` to the new worker;
``fetch_data``, already completed, does not run again. Every figure printed is read back from
the run's Temporal history.

Where it runs (``starters/_stack.py``): on the Temporal server already up (``jamjet dev``,
./dev-server.sh, or ``TEMPORAL_ADDRESS``), recording in the audit store ``jamjet audit`` reads,
else on a throwaway dev server of its own. It prints the run id first and, last, the ``jamjet``
commands that show the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Collection
from pathlib import Path

from jamjet_temporal import JamJetPlugin
from jamjet_temporal.cli import RunReport, read_history
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule
from starters._stack import stack
from starters.crash_safe_worker import TASK_QUEUE
from workflows.crash_safe import pipeline

ROOT = Path(__file__).resolve().parent.parent  # the worker is run as `-m starters.…` from here
SUMMARY = "Checkout 502s started with the deploy: roll it back, then check the upstream timeout."


def fmt_ms(ms: int | None) -> str:
    """``420ms`` below a second, ``1.2s`` above (as ``jamjet run`` prints durations)."""
    if ms is None:
        return "?"
    return f"{ms}ms" if ms < 1000 else f"{ms / 1000:.1f}s"


def script(crash: bool) -> list[ScriptRule]:
    """The model's side: ``analyze``'s first call is slow when the demo crashes the worker (the
    kill lands while it waits); the retry on the new worker is answered at once."""
    first = ScriptResponse(content=SUMMARY, delay_ms=10_000 if crash else None)
    return [
        ScriptRule(id="analyze", match="T-1042", responses=[first, ScriptResponse(content=SUMMARY)])
    ]


async def start_worker(address: str, model_url: str, audit: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starters.crash_safe_worker",
        address,
        model_url,
        audit,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    await proc.stdout.readline()  # "worker ready ..."
    return proc


async def calls_to(model: ModelServer, count: int) -> None:
    """Wait until ``analyze`` has called the model ``count`` times."""
    while sum(1 for c in model.calls() if c["rule_id"] == "analyze") < count:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


def step_lines(report: RunReport, *, skip: Collection[str] = ()) -> list[str]:
    """One line per completed step (skipping those already shown), from the history."""
    lines = []
    for step in report.completed:
        if step.activity_type in skip:
            continue
        verb = "resumed" if step.attempt > 1 else "completed"
        lines.append(f"▸ [{step.label}] ✓ {verb} {fmt_ms(step.duration_ms)}")
    return lines


async def main(
    crash: bool = True, workdir: Path | None = None, address: str | None = None
) -> list[str]:
    """Run the demo; returns (and prints) the showcase's console lines.

    Args:
        crash: Kill the worker mid-step.
        workdir: Where a throwaway server's audit store goes; None: a new temporary folder.
        address: The Temporal server; None: the configured one if up, else a throwaway one.
    """
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    workdir = workdir or Path(tempfile.mkdtemp(prefix="jamjet-crash-safe-"))
    run_id = f"exec_{uuid.uuid4().hex[:4]}"
    async with stack(address, scratch_audit=workdir / "audit.db") as where, ModelServer() as model:
        where.announce(run_id)
        model.add_rules(script(crash))
        worker = await start_worker(where.address, model.base_url, where.audit_store)
        try:
            client = await where.connect(plugins=[JamJetPlugin()])
            began = time.monotonic()
            handle = await client.start_workflow(
                pipeline.run, id=run_id, task_queue=TASK_QUEUE, result_type=dict[str, str]
            )
            say(f"▸ Starting execution {run_id}...")
            done: set[str] = set()
            if crash:
                await calls_to(model, 1)  # analyze is waiting on the model
                await asyncio.sleep(1)
                worker.kill()
                await worker.wait()
                crashed_at = time.monotonic() - began
                before = read_history(await handle.fetch_history())
                for line in step_lines(before):
                    say(line)
                done = {s.activity_type for s in before.completed}
                say(f"▸ [analyze] ✗ worker crashed at {crashed_at:.1f}s")
                worker = await start_worker(where.address, model.base_url, where.audit_store)
                print("  (a new worker is up; the step moves to it once the dead worker's")
                print("   heartbeats have lapsed: the @task default timeout, 30 s)", flush=True)
                await calls_to(model, 2)  # the new worker took the step over
                say("▸ Lease expired · reclaiming...")
            result = await handle.result()
            report = read_history(await handle.fetch_history())
            for line in step_lines(report, skip=done):
                say(line)
            say(f"▸ {run_id} · {report.lost} events lost · {report.reruns} reruns")
            say(f"▸ Result: {json.dumps(result)}")
        finally:
            if worker.returncode is None:
                worker.terminate()
            await worker.wait()
    where.inspect(run_id)
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-crash", action="store_true", help="do not kill the worker")
    asyncio.run(main(crash=not parser.parse_args().no_crash))
