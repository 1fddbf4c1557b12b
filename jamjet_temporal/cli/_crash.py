"""``jamjet run --crash-at NODE``: SIGKILL the worker process mid-step, let another take over."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

from temporalio.client import Client
from temporalio.worker import Worker

from jamjet_temporal.cli._format import fail, say
from jamjet_temporal.cli._progress import CrashPlan
from jamjet_temporal.cli._runtime import Governance
from jamjet_temporal.pipeline import PipelineSpec


def check_crash_node(spec: PipelineSpec, crash_at: str) -> None:
    """Refuse a ``--crash-at`` that names no node of the pipeline (by id or label)."""
    if not any(
        crash_at.lower() in (node_id.lower(), (n.label or "").lower())
        for node_id, n in spec.nodes.items()
    ):
        raise fail(f"--crash-at {crash_at}: the pipeline has no such node")


def crash_plan(
    stack: contextlib.AsyncExitStack,
    crash_at: str,
    client: Client,
    address: str,
    modules: list[str],
    task_queue: str,
    governance: Governance,
) -> CrashPlan:
    """Start the doomed worker as a child process; the replacement runs in this process.

    The child is a separate process so that SIGKILL is a real crash: no cleanup, no goodbye
    to the server, which learns the step is lost only when its heartbeat times out.
    """
    child_env = dict(os.environ, TEMPORAL_ADDRESS=address)
    victim = stack.enter_context(
        _child(_worker_cmd(modules, task_queue, "worker-1", governance), child_env)
    )

    def kill() -> str:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        return f"worker-1, pid {victim.pid}"

    async def replace() -> None:
        await stack.enter_async_context(Worker(client, task_queue=task_queue, identity="worker-2"))

    return CrashPlan(crash_at, kill, replace)


def report_missed(crash: CrashPlan) -> None:
    """Say so when the step finished before the kill (so nothing crashed)."""
    if not crash.done:
        say(
            f"▸ --crash-at {crash.node}: the step finished before it could be killed; "
            "nothing crashed (use a slower step)"
        )


def _worker_cmd(
    tools: list[str], task_queue: str, identity: str, governance: Governance
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "jamjet_temporal",
        "worker",
        "--no-embedded",  # the server is this command's: the child never starts its own
        "--task-queue",
        task_queue,
        "--identity",
        identity,
    ]
    for module in tools:
        cmd += ["--tools", module]
    return cmd + governance.worker_args()


@contextlib.contextmanager
def _child(cmd: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
