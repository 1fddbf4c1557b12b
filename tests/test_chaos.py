"""Chaos: pipeline runs survive SIGKILLed workers and a dev server restart, effects exactly once.

Many pipeline runs go through ``jamjet worker`` subprocesses that are SIGKILLed at random
points (20 to 40 kills), and the dev server itself is restarted once mid-run on its
persistent database. Every run must complete; the side-effect ledger kept by the tools
(tests/chaos_tools.py) must hold every completed step's effect exactly once, under its
idempotency key; and nothing that had completed may run again.

    CHAOS_SEED=123 pytest tests/test_chaos.py -s   # replay a seed's choices, see the summary
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, NamedTuple

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment

from jamjet_temporal import JamJetPlugin, idempotency_key
from jamjet_temporal.audit import open_store
from jamjet_temporal.cli._devserver import DevServer, free_port
from jamjet_temporal.cli._history import read_history
from jamjet_temporal.cli._tools import load_tools, tool_signatures
from jamjet_temporal.pipeline import (
    PIPELINE_WORKFLOW,
    PipelineResult,
    PipelineRun,
    PipelineSpec,
    parse_pipeline,
)
from tests.chaos_tools import connect, init_ledger, step_seconds

TOOLS = Path(__file__).resolve().parent / "chaos_tools.py"

STEPS = ("fetch", "extract", "enrich", "decide", "notify")
RUNS = 16
WORKERS = 3
MIN_KILLS = 20
# Every kill stalls the steps it cuts short for the heartbeat timeout, which gives the chaos
# more time to kill again: capped so that an unlucky streak cannot outrun the time budget.
MAX_KILLS = 40
RESTART_AFTER = 15
KILL_EVERY = (0.5, 1.0)
# Workers and the server stamp times with this machine's one clock; this only absorbs rounding.
CLOCK_TOLERANCE = 0.05

PIPELINE_YAML = (
    """
workflow:
  id: chaos
  start: fetch
  heartbeat_timeout_seconds: 2
  retry:
    max_attempts: 100
    initial_interval_seconds: 0.2
    backoff: 2
    max_interval_seconds: 1
nodes:
"""
    + "".join(
        f"""  {name}:
    type: tool
    tool: effect
    arguments: {{step: {name}, value: "{{{{ state.value }}}}"}}
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


@dataclasses.dataclass(eq=False)
class WorkerProc:
    name: str
    proc: asyncio.subprocess.Process
    ready: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    killed: bool = False


class Fleet:
    """The ``jamjet worker`` subprocesses that the chaos loop kills and replaces."""

    def __init__(self, address: str, queue: str, ledger: Path, log: IO[bytes]) -> None:
        self.address = address
        self.queue = queue
        self.workdir = ledger.parent
        self.log = log
        # The workers keep their default audit store (in their working directory).
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith("TEMPORAL_") and k != "JAMJET_AUDIT_STORE"
            },
            "CHAOS_LEDGER": str(ledger),
        }
        self.live: list[WorkerProc] = []
        self.started = 0
        self.killed_at: dict[int, float] = {}
        self.unexpected_exits: list[tuple[str, int]] = []
        self._watchers: list[asyncio.Task[None]] = []

    async def spawn(self) -> None:
        self.started += 1
        name = f"chaos-w{self.started:02d}"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "jamjet_temporal",
            "worker",
            "--no-embedded",  # the server restarts under it: never start one of its own
            "--tools",
            str(TOOLS),
            "--task-queue",
            self.queue,
            "--identity",
            name,
            "--address",
            self.address,
            "--sticky-timeout",
            "1",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.log,
            env=self.env,
            cwd=self.workdir,  # their audit trail (.jamjet/audit.db) goes there too
        )
        worker = WorkerProc(name, proc)
        self.live.append(worker)
        self._watchers.append(asyncio.create_task(self._watch(worker)))

    async def _watch(self, worker: WorkerProc) -> None:
        assert worker.proc.stdout is not None
        async for line in worker.proc.stdout:
            if b"polling" in line:
                worker.ready.set()
        code = await worker.proc.wait()
        if not worker.killed:
            self.unexpected_exits.append((worker.name, code))
            self.live.remove(worker)

    def polling(self) -> list[WorkerProc]:
        return [w for w in self.live if w.ready.is_set()]

    async def kill(self, worker: WorkerProc) -> None:
        worker.killed = True
        worker.proc.send_signal(signal.SIGKILL)
        self.killed_at[worker.proc.pid] = time.time()
        await worker.proc.wait()
        self.live.remove(worker)

    @property
    def kills(self) -> int:
        return len(self.killed_at)

    async def all_polling(self) -> None:
        async with asyncio.timeout(30):
            await asyncio.gather(*(w.ready.wait() for w in self.live))

    async def close(self) -> None:
        for worker in self.live:
            worker.killed = True
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGKILL)
            await worker.proc.wait()
        self.live.clear()
        await asyncio.gather(*self._watchers)


@dataclasses.dataclass
class Run:
    workflow_id: str
    run_id: str
    value: int
    result: asyncio.Task[PipelineResult]


class Done(NamedTuple):
    """A step that completed, as its run's history records it."""

    workflow_id: str
    run_id: str
    activity_id: str
    completed_at: float
    attempt: int


class Execution(NamedTuple):
    """A row of the tools' ``executions`` table: one attempt that began running a step."""

    key: str
    attempt: int
    pid: int
    started_at: float
    applied: int | None  # None: never reached the effect; 1: wrote it; 0: found it written


@dataclasses.dataclass
class Tally:
    kills_while_running: int = 0
    server_restarts: int = 0
    handle_refetches: int = 0
    back_after_restart: dict[str, float] = dataclasses.field(default_factory=dict)


def expected_key(workflow_id: str, run_id: str, activity_id: str) -> str:
    """The key ``idempotency_key()`` gives this step, computed by that very function."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        workflow_namespace="default",
        workflow_id=workflow_id,
        workflow_run_id=run_id,
        activity_id=activity_id,
    )
    return str(env.run(idempotency_key))


def epoch(when: datetime) -> float:
    """History times are naive UTC."""
    return when.replace(tzinfo=UTC).timestamp()


def all_closed(runs: list[Run]) -> bool:
    return all(r.result.done() for r in runs)


async def wait_result(
    client: Client, workflow_id: str, run_id: str, tally: Tally
) -> PipelineResult:
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id, result_type=PipelineResult)
        try:
            return await handle.result()
        except RPCError:
            # The server restart cuts the long poll ("transport error"), which the client does
            # not retry: take a fresh handle once the server answers again.
            tally.handle_refetches += 1
            await asyncio.sleep(0.5)


async def start_runs(client: Client, spec: PipelineSpec, queue: str, tally: Tally) -> list[Run]:
    signatures = tool_signatures(spec, load_tools([str(TOOLS)]))
    runs = []
    for i in range(RUNS):
        workflow_id = f"{queue}-{i:02d}"
        handle = await client.start_workflow(
            PIPELINE_WORKFLOW,
            PipelineRun(spec=spec, input={"value": 100 * i}, tool_params=signatures),
            id=workflow_id,
            task_queue=queue,
            result_type=PipelineResult,
            # A workflow task taken by a worker that is then killed is retried this soon.
            task_timeout=timedelta(seconds=2),
        )
        assert handle.result_run_id is not None
        result = asyncio.create_task(wait_result(client, workflow_id, handle.result_run_id, tally))
        runs.append(Run(workflow_id, handle.result_run_id, 100 * i, result))
    return runs


async def restart_server(
    server: DevServer, fleet: Fleet, ledger: Path, runs: list[Run], tally: Tally
) -> None:
    """Restart the dev server under the live workers; wait for each to start a step again."""
    # A worker still booting would find no server and exit: restart with all of them polling.
    await fleet.all_polling()
    survivors = {w.proc.pid: w.name for w in fleet.live}
    old_pid = server.pid
    await server.astop()
    await server.astart()
    assert server.pid != old_pid
    tally.server_restarts += 1
    back = time.time()
    if all_closed(runs):
        return
    # No kills meanwhile: a survivor killed before it reconnected would prove nothing.
    deadline = time.monotonic() + 30
    while len(tally.back_after_restart) < len(survivors) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        with connect(ledger) as conn:
            firsts = conn.execute(
                "SELECT pid, MIN(started_at) FROM executions WHERE started_at > ? GROUP BY pid",
                (back,),
            ).fetchall()
        for pid, first in firsts:
            if pid in survivors:
                tally.back_after_restart.setdefault(survivors[pid], first - back)
    missing = sorted(set(survivors.values()) - set(tally.back_after_restart))
    assert not missing, f"workers {missing} ran no step within 30 s of the server restart"


async def unleash(
    fleet: Fleet,
    server: DevServer,
    ledger: Path,
    runs: list[Run],
    rng: random.Random,
    tally: Tally,
) -> None:
    """Kill a random polling worker every 0.5–1 s and start its replacement at once.

    While runs are open, up to MAX_KILLS kills; the dev server restarts after RESTART_AFTER.
    """
    while not all_closed(runs) and fleet.kills < MAX_KILLS:
        await asyncio.sleep(rng.uniform(*KILL_EVERY))
        while len(fleet.live) < WORKERS:  # one exited on its own; the test fails on it later
            await fleet.spawn()
        polling = fleet.polling()
        if not polling:
            continue
        tally.kills_while_running += not all_closed(runs)
        await fleet.kill(rng.choice(polling))
        await fleet.spawn()
        if fleet.kills == RESTART_AFTER:
            await restart_server(server, fleet, ledger, runs, tally)


def completed_steps(run: Run, history: WorkflowHistory) -> list[Done]:
    """Check the run's history shows each step completed exactly once; return the steps."""
    report = read_history(history)
    assert report.status == "completed", run.workflow_id
    assert [s.activity_id for s in report.steps] == [f"{name}#1" for name in STEPS]
    assert all(s.outcome == "completed" and s.completions == 1 for s in report.steps)
    assert report.reruns == 0
    assert report.lost == 0
    done = []
    for s in report.steps:
        assert s.closed_at is not None
        done.append(Done(run.workflow_id, run.run_id, s.activity_id, epoch(s.closed_at), s.attempt))
    return done


def save_histories(histories: dict[str, WorkflowHistory]) -> None:
    """For the replay test, when it asks for them."""
    directory = os.environ.get("JAMJET_RECORD_HISTORIES")
    if not directory:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    for workflow_id, history in histories.items():
        (Path(directory) / f"{workflow_id}.json").write_text(history.to_json())


@pytest.mark.timeout(240)
async def test_runs_survive_worker_kills_and_a_server_restart(tmp_path: Path) -> None:
    seed = int(os.environ.get("CHAOS_SEED") or random.randrange(2**32))
    print(f"\nchaos seed {seed} (CHAOS_SEED={seed} replays its choices); files in {tmp_path}")
    rng = random.Random(seed)
    ledger = tmp_path / "ledger.sqlite"
    init_ledger(ledger)
    spec = parse_pipeline(PIPELINE_YAML, "tests/test_chaos.py")
    queue = f"chaos-{uuid.uuid4().hex[:8]}"
    tally = Tally()
    began = time.monotonic()

    server = DevServer(
        port=free_port(), db_file=tmp_path / "temporal.db", log_file=tmp_path / "temporal.log"
    )
    await server.astart()
    runs: list[Run] = []
    with (tmp_path / "workers.log").open("ab") as log:
        fleet = Fleet(server.address, queue, ledger, log)
        try:
            for _ in range(WORKERS):
                await fleet.spawn()
            await fleet.all_polling()
            client = await Client.connect(server.address, plugins=[JamJetPlugin()])
            runs = await start_runs(client, spec, queue, tally)
            await unleash(fleet, server, ledger, runs, rng, tally)
            async with asyncio.timeout(60):
                await asyncio.wait([r.result for r in runs])
            closed_after = time.monotonic() - began
            histories = {
                r.workflow_id: await client.get_workflow_handle(
                    r.workflow_id, run_id=r.run_id
                ).fetch_history()
                for r in runs
            }
        finally:
            for run in runs:
                run.result.cancel()
            await fleet.close()
            await server.astop()
    save_histories(histories)

    for run in runs:
        assert run.result.result().output == run.value + len(STEPS)
    assert fleet.kills >= MIN_KILLS
    assert tally.kills_while_running >= MIN_KILLS, "the runs ended before the chaos did"
    assert tally.server_restarts == 1
    assert not fleet.unexpected_exits, f"workers exited on their own: {fleet.unexpected_exits}"

    # Temporal's record: every step of every run completed exactly once.
    steps: dict[str, Done] = {}
    for run in runs:
        for done in completed_steps(run, histories[run.workflow_id]):
            steps[expected_key(done.workflow_id, done.run_id, done.activity_id)] = done
    assert len(steps) == RUNS * len(STEPS)

    with connect(ledger) as conn:
        effects = conn.execute(
            "SELECT key, workflow_id, run_id, activity_id, step, value FROM ledger"
        ).fetchall()
        executions = [
            Execution(*row)
            for row in conn.execute(
                "SELECT key, attempt, pid, started_at, effect_applied FROM executions"
            )
        ]

    # The ledger: one effect per completed step, under the step's idempotency key, no other.
    assert len(effects) == len(steps)
    values = {r.workflow_id: r.value for r in runs}
    for key, workflow_id, run_id, activity_id, step, value in effects:
        assert key in steps, f"an effect for a step that never completed: {activity_id}"
        assert steps[key][:3] == (workflow_id, run_id, activity_id)
        assert activity_id == f"{step}#1"
        assert value == values[workflow_id] + STEPS.index(step)

    # Nothing ran for a step that never completed, and nothing started once a step had.
    for ex in executions:
        assert ex.key in steps, "an execution of a step that never completed"
        done = steps[ex.key]
        assert ex.started_at <= done.completed_at + CLOCK_TOLERANCE, f"{done.activity_id} re-ran"
        assert ex.attempt <= done.attempt, f"{done.activity_id} ran again after completing"
    reached_effect = {(ex.key, ex.attempt) for ex in executions if ex.applied is not None}
    assert all((key, done.attempt) in reached_effect for key, done in steps.items())

    # The audit trail (the workers' default store, in their working directory): every tool call
    # in the histories has exactly one decision and one call event, and the chain verifies.
    store = open_store(f"sqlite:///{tmp_path / '.jamjet' / 'audit.db'}")
    try:
        audit = [stored.event for stored in await store.events()]
        verdict = await store.verify()
    finally:
        await store.close()
    assert verdict.ok, verdict.detail
    closed = Counter(
        (event.run_id, event.data["outcome"]) for event in audit if event.kind == "run.closed"
    )
    # Each run's trail ends once, with its outcome, however many workers died on the way.
    assert closed == Counter({(done.workflow_id, "completed"): 1 for done in steps.values()})
    recorded = Counter(
        (event.kind, event.run_id, str(event.data["activity_id"]))
        for event in audit
        if event.kind != "run.closed"
    )
    for done in steps.values():
        for kind in ("policy.decision", "tool.call"):
            assert recorded[(kind, done.workflow_id, done.activity_id)] == 1, (kind, done)
    assert sum(recorded.values()) == 2 * len(steps), "audit events for calls not in history"

    retried = sum(1 for done in steps.values() if done.attempt > 1)
    assert retried > 0, "no kill landed while a step was running"
    effect_attempts = Counter(ex.key for ex in executions if ex.applied is not None)
    prevented = sum(n - 1 for n in effect_attempts.values())
    assert prevented == sum(1 for ex in executions if ex.applied == 0)
    cut_short = sum(1 for ex in executions if ex.attempt < steps[ex.key].attempt)
    # A kill landed mid-step if a step body (it sleeps step_seconds) was running on the victim.
    mid_step_kills = {
        ex.pid
        for ex in executions
        if ex.pid in fleet.killed_at
        and ex.started_at <= fleet.killed_at[ex.pid] < ex.started_at + step_seconds(ex.key)
    }
    back = ", ".join(f"{name} {s:.1f}s" for name, s in sorted(tally.back_after_restart.items()))
    print(
        f"chaos: {RUNS} runs x {len(STEPS)} steps, all closed after {closed_after:.1f} s; "
        f"{fleet.kills} worker kills ({tally.kills_while_running} while runs were open, "
        f"{len(mid_step_kills)} mid-step), {fleet.started} workers started; "
        f"{tally.server_restarts} server restart (first step after it: {back}; "
        f"client handle refetches {tally.handle_refetches}); "
        f"{retried} steps retried (up to attempt {max(d.attempt for d in steps.values())}), "
        f"{cut_short} attempts cut short, {prevented} duplicate effects prevented"
    )
