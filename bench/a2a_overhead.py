"""Wall time of one A2A delegation through jamjet vs the same request with the bare a2a-sdk.

    python bench/a2a_overhead.py [--runs 20] [--audit-store URL]

The agent is a plain a2a-sdk echo agent in a process of its own (``bench/_a2a_agent.py``).

* "bare": the same request made with the a2a-sdk client alone: read the agent's card, send the
  message (streaming), read events until the task is completed.
* "jamjet": a workflow whose one step is ``a2a.delegate("echo", skill="echo", input=...)`` on a
  governed worker (the policy gate decides it, the audit trail records the decision and the
  call in SQLite, the delegation is an activity that heartbeats the remote task's id, reads
  the card, streams, and reads the final task), timed from the workflow's start to its result.

A second figure is the serving side: the bare client against ``jamjet a2a serve`` serving an
echo workflow (each task a Temporal workflow, read back from Temporal) vs against the plain
a2a-sdk agent (tasks in memory). Same dev server, the configurations interleaved round by
round; prints medians and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from a2a.client import ClientConfig, create_client
from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest, TaskState
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Value
from temporalio.client import Client
from temporalio.worker import Worker

from bench._a2a_workflows import delegate_echo
from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.cli import DevServer, free_port
from jamjet_temporal.plugin import AuditConfig

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = {"topic": "tides", "depth": 2, "notes": ["a", "b", "c"]}


def start(command: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            url = f"http://127.0.0.1:{port}/.well-known/agent-card.json"
            if httpx.get(url, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{command} did not start")
        time.sleep(0.1)


async def bare(url: str) -> Any:
    """One echo task with the a2a-sdk client alone: card, send (streaming), the final task."""
    async with httpx.AsyncClient(timeout=30) as http:
        client = await create_client(
            url, client_config=ClientConfig(streaming=True, httpx_client=http)
        )
        sent = Message(
            message_id=uuid.uuid4().hex,
            role=Role.ROLE_USER,
            parts=[Part(data=json_format.ParseDict(PAYLOAD, Value()))],
        )
        state = None
        async for event in client.send_message(SendMessageRequest(message=sent)):
            kind = event.WhichOneof("payload")
            if kind == "task":
                state = event.task.status.state
            elif kind == "status_update":
                state = event.status_update.status.state
        assert state == TaskState.TASK_STATE_COMPLETED, state
        return state


async def timed(runs: int, cases: dict[str, Callable[[], Awaitable[Any]]]) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in cases}
    for case in cases.values():  # warm-up
        await case()
    for _ in range(runs):
        for name, case in cases.items():
            started = time.perf_counter()
            await case()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


async def main(runs: int, audit_store: str) -> None:
    server = DevServer(port=free_port())
    await server.astart()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        plain_port, served_port = free_port(), free_port()
        python = sys.executable
        processes.append(
            start([python, "-m", "bench._a2a_agent", "--port", str(plain_port)], plain_port)
        )
        processes.append(
            start(
                [
                    python,
                    "-m",
                    "jamjet_temporal",
                    "a2a",
                    "serve",
                    "bench._a2a_workflows:served_echo",
                    "--port",
                    str(served_port),
                    "--anonymous",
                    "--address",
                    server.address,
                    "--audit-store",
                    audit_store.replace("audit.db", "served-audit.db"),
                ],
                served_port,
            )
        )
        plain = f"http://127.0.0.1:{plain_port}"
        served = f"http://127.0.0.1:{served_port}"

        config = JamJetConfig(
            audit=AuditConfig(store=audit_store), a2a_agents={"echo": {"url": plain}}
        )
        client = await Client.connect(server.address, plugins=[JamJetPlugin(config)])
        queue = f"bench-a2a-{uuid.uuid4().hex[:6]}"

        async def ours() -> Any:
            return await client.execute_workflow(
                delegate_echo.run, PAYLOAD, id=f"a2a-{uuid.uuid4().hex}", task_queue=queue
            )

        async with Worker(client, task_queue=queue, workflows=[delegate_echo]):
            caller = await timed(runs, {"bare": lambda: bare(plain), "jamjet": ours})
        callee = await timed(runs, {"plain": lambda: bare(plain), "jamjet": lambda: bare(served)})

        print(f"One A2A delegation (echo task, streaming), {runs} runs each, median wall time:")
        print(f"  bare a2a-sdk client               {caller['bare'] * 1000:8.1f} ms")
        ours_ms = caller["jamjet"] * 1000
        print(f"  jamjet a2a.delegate (workflow)    {ours_ms:8.1f} ms   ({audit_store})")
        print(f"ratio jamjet/bare = {caller['jamjet'] / caller['bare']:.2f}")
        print(f"Serving it (bare a2a-sdk client as the caller), {runs} runs each:")
        print(f"  plain a2a-sdk agent (in memory)   {callee['plain'] * 1000:8.1f} ms")
        print(f"  jamjet a2a serve (a workflow)     {callee['jamjet'] * 1000:8.1f} ms")
        print(f"ratio jamjet/plain = {callee['jamjet'] / callee['plain']:.2f}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        await server.astop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--audit-store", default=None)
    args = parser.parse_args()
    url = args.audit_store or f"sqlite:///{Path(tempfile.mkdtemp()) / 'audit.db'}"
    try:
        asyncio.run(main(args.runs, url))
    finally:
        sys.stdout.flush()
        os._exit(0)
