"""Multi-host, shown: governed runs on three hosts survive a lost host, a partition and a restart.

The hosts are Linux network namespaces on this machine, joined by a bridge (``netns.py``):

* ``srv`` runs the Temporal dev server (on a persistent database) and the local model server;
* ``h1``, ``h2``, ``h3`` run two worker processes each, all on one task queue, sharing the
  PostgreSQL audit trail, the Engram memory store and the payments ledger;
* PostgreSQL listens on 127.0.0.1 only: the hosts reach it at the bridge's address, through a
  forwarder in the root namespace (``pgproxy.py``), as workers reach a database server.

The test (the client, in the root namespace) starts governed runs (``mh_workflows.py``:
memory, a budgeted model call and one the budget halts, a tool the policy blocks, a wire
transfer waiting for signed approvals, a booking keyed by its idempotency key). A script answers
the approvals as a person would, with signed decisions, holding a quarter of them until the dev
server has restarted. Meanwhile: every worker on h1 is SIGKILLed (at a moment one of them has
booked a payment and not yet reported it, when it can), h2's link is cut for 20 s (when one of
its workers is about to book), and the dev server is stopped and started again on its database.
Afterwards: every run completed (none lost), every booking is in the ledger exactly once under
its step's idempotency key, each run's audit trail holds each governed fact once, every run's
evidence bundle verifies (integrity, pinned signer, completeness against its history), the
audit chain verifies and is covered by signed checkpoints (and holds each host's marks), and
each run's memory is there once. It prints its figures (``multihost: 40 runs · ...``) in every
run's output.

    pytest -m multihost                      # alone (needs root, ip netns, PostgreSQL)
    python scripts/multihost_cleanup.py      # after a run killed before it could clean up

Usually about a minute. A task that Temporal dispatched to h2 just as its link went down is lost
with the link; the run waits for that activity's timeout, so a run whose memory write
(``jamjet.engram.ingest``: 120 s start-to-close, no heartbeat) was lost there takes two minutes
longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import psycopg
import pytest
from psycopg import sql
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment

from jamjet_temporal import (
    JamJetConfig,
    JamJetPlugin,
    acting_as,
    idempotency_key,
    run_budget,
)
from jamjet_temporal._shared._keys import fingerprint
from jamjet_temporal.approvals import generate_identity, sign, submit
from jamjet_temporal.approvals._client import survey_pending
from jamjet_temporal.approvals._identity import SigningIdentity
from jamjet_temporal.audit import (
    PostgresAuditStore,
    export,
    load_or_create_signing_key,
    open_store,
    verify_bundle,
)
from jamjet_temporal.audit._keys import checkpoint_marks_path
from jamjet_temporal.cli._devserver import temporal_cli
from jamjet_temporal.cli._history import failure_text, read_history
from jamjet_temporal.errors import JamJetError
from jamjet_temporal.memory import open_memory
from jamjet_temporal.plugin import AuditConfig, MemoryConfig
from tests.multihost.mh_tools import LEDGER_DDL, LEDGER_GRANTS
from tests.multihost.mh_workflows import Outcome, Payment, fact_for, governed
from tests.multihost.netns import Network, leftovers, netns_problem

pytestmark = pytest.mark.multihost

ROOT = Path(__file__).resolve().parents[2]
PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=root connect_timeout=3"
PG_PORT = 5432

WORKER_HOSTS = ("h1", "h2", "h3")
WORKERS_PER_HOST = 2
RUNS = 40
USERS = 8
#: Runs start one every START_EVERY seconds; the faults come at these times after the first.
START_EVERY = 0.6
KILL_AT = 6.0
CUT_AT = 13.0
CUT_FOR = 20.0
RESTART_AT = CUT_AT + CUT_FOR + 3.0
#: How long to wait, at each fault, for the host to be in the middle of a booking.
BUSY_WAIT = 5.0
#: Approvals are answered this long after they are requested (a person reads first); those of
#: every HOLD_EVERY-th run only once the dev server has restarted.
APPROVAL_DELAY = 1.0
HOLD_EVERY = 4
#: Every run must have closed this long after the faults are over.
CLOSE_WITHIN = 180.0
TEMPORAL_PORT = 7233
MODEL_PORT = 8000


#: Each run's audit trail (approval decisions apart: one or two).
TRAIL = {
    "policy.model_decision": 1,  # the assessment's model call, allowed
    "budget.decision": 2,  # that call ALLOWED, the memo HALTed before it was sent
    "model.call": 1,
    # ledger.purge blocked, ledger.book allowed, and the memory read and write (engram.*)
    "policy.decision": 4,
    "approval.requested": 1,
    "tool.call": 1,  # the booking
    "memory.read": 1,  # earlier runs' facts about the payer
    "memory.write": 1,  # this run's fact
    "run.closed": 1,
}

DECISION_KINDS = ("policy.decision", "policy.model_decision", "budget.decision")
#: Each run's decisions: (kind, subject, decision).
DECISIONS = sorted(
    [
        ("policy.model_decision", "gpt-4o-mini", "ALLOWED"),
        ("budget.decision", "", "ALLOWED"),
        ("budget.decision", "", "HALT"),  # the memo: projected over the cap, never sent
        ("policy.decision", "ledger.purge", "BLOCKED"),
        ("policy.decision", "ledger.book", "ALLOWED"),
        ("policy.decision", "engram.read", "ALLOWED"),
        ("policy.decision", "engram.write", "ALLOWED"),
    ]
)


def payment(i: int) -> Payment:
    # Every third transfer is above the threshold and needs two approvers.
    amount = 7_500.0 + i if i % 3 == 0 else 1_200.0 + 10 * i
    return Payment(user=f"payer{i % USERS}@example.com", amount=amount, payee=f"ACME-{i % 5}")


APPROVALS = """\
approvers:
  - {{id: alice@example.com, public_key: "{alice}"}}
  - {{id: bob@example.com, public_key: "{bob}"}}
clients:  # the payments portal proves whom each run acts for
  - {{id: portal, public_key: "{portal}", acts_for: ["*@example.com"]}}
rules:
  - action: wire_transfer
    approvers: [alice@example.com, bob@example.com]
    thresholds: [{{field: amount, above: 5000, required: 2}}]
    timeout_seconds: 3600
"""

POLICY = """\
version: 1
blocked_tools: ["*purge*"]
model_allowlist: ["gpt-4o-mini"]
rules:
  - {match: "ledger.*", action: allow}
"""


# -- fixtures: the network, PostgreSQL, processes ---------------------------------------------


@pytest.fixture
def network() -> Iterator[Network]:
    problem = netns_problem()
    if problem is not None:
        pytest.skip(f"multi-host test needs network namespaces: {problem}")
    net = Network(("srv", *WORKER_HOSTS))
    try:
        net.up()
        yield net
    finally:
        left = net.down()
        namespaces, links = leftovers()
        ours = [n for n in [*namespaces, *links] if net.tag in n]
        assert not left and not ours, f"network not cleaned up: {left} {ours}"


@dataclasses.dataclass
class Database:
    """The test's roles and schemas (admin: root over 127.0.0.1)."""

    tag: str
    worker: str
    auditor: str
    audit_schema: str
    memory_schema: str
    ledger_schema: str

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(PG_DSN, autocommit=True)


@pytest.fixture
def database(network: Network) -> Iterator[Database]:
    try:
        with psycopg.connect(PG_DSN) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432 (database test, user root): {exc}")
    tag = network.tag
    db = Database(
        tag,
        worker=f"jjmh_w_{tag}",
        auditor=f"jjmh_a_{tag}",
        audit_schema=f"jjmh_audit_{tag}",
        memory_schema=f"jjmh_mem_{tag}",
        ledger_schema=f"jjmh_ledger_{tag}",
    )
    schemas = (db.audit_schema, db.memory_schema, db.ledger_schema)
    roles: list[str] = []
    try:
        with db.admin() as conn:
            for role in (db.worker, db.auditor):
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
                roles.append(role)
        yield db
    finally:
        with db.admin() as conn:
            if roles:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE usename = ANY(%s)",
                    (roles,),
                )
            for schema in schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
            for role in reversed(roles):
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


async def set_up_schemas(db: Database) -> str:
    """The audit store (two roles), the memory store and the ledger; returns the memory URL
    the admin reads it with."""
    await PostgresAuditStore.init_db(PG_DSN, schema=db.audit_schema, worker_role=db.worker)
    memory_url = f"postgresql://root@127.0.0.1:{PG_PORT}/test?schema={db.memory_schema}"
    memory = open_memory(memory_url)  # the admin creates the tables on first use
    try:
        await asyncio.to_thread(memory.facts, "nobody@example.com")
    finally:
        memory.close()
    with db.admin() as conn:
        audit, mem, ledger = (
            sql.Identifier(s) for s in (db.audit_schema, db.memory_schema, db.ledger_schema)
        )
        worker, auditor = sql.Identifier(db.worker), sql.Identifier(db.auditor)
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(audit, auditor))
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(audit, auditor)
        )
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(mem, worker))
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(
                mem, worker
            )
        )
        conn.execute(
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(mem, worker)
        )
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(ledger))
        for ddl in (*LEDGER_DDL, *LEDGER_GRANTS):
            conn.execute(sql.SQL(ddl).format(schema=ledger, role=worker))
    return memory_url


class Processes:
    """Every process the test starts, killed by its id at the end (and on failure)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self._popen: dict[str, subprocess.Popen[bytes]] = {}
        self._async: dict[str, asyncio.subprocess.Process] = {}
        self._drains: list[asyncio.Task[None]] = []

    def log(self, name: str) -> IO[bytes]:
        return (self.logs / f"{name}.log").open("ab")

    def popen(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with self.log(name) as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                start_new_session=True,
            )
        self._popen[name] = proc
        return proc

    async def spawn(self, name: str, argv: list[str], ready: bytes, within: float) -> int:
        """Start a process that prints ``ready`` on stdout when it is; returns its pid."""
        with self.log(name) as err:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                stdin=asyncio.subprocess.DEVNULL,
                cwd=ROOT,
                start_new_session=True,
            )
        self._async[name] = proc
        assert proc.stdout is not None
        async with asyncio.timeout(within):
            while ready not in (line := await proc.stdout.readline()):
                if not line:
                    raise RuntimeError(f"{name} exited ({await proc.wait()}); see {self.logs}")
        # Keep draining stdout so the process never blocks on a full pipe.
        self._drains.append(asyncio.create_task(self._drain(proc)))
        return proc.pid

    @staticmethod
    async def _drain(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        with contextlib.suppress(Exception):
            while await proc.stdout.read(65536):
                pass

    async def kill(self, name: str) -> None:
        """SIGKILL one process (by its id) and reap it."""
        if name in self._async:
            proc = self._async.pop(name)
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
        elif name in self._popen:
            popen = self._popen.pop(name)
            if popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(popen.pid, signal.SIGKILL)
            await asyncio.to_thread(popen.wait)

    def stop(self, name: str, timeout: float = 15.0) -> None:
        """SIGTERM a Popen process (by its id), SIGKILL it if it does not go in time."""
        popen = self._popen.pop(name)
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(popen.pid, signal.SIGKILL)
                popen.wait()

    def alive(self, name: str) -> bool:
        if name in self._async:
            return self._async[name].returncode is None
        return name in self._popen and self._popen[name].poll() is None

    def exited(self) -> list[tuple[str, int]]:
        """Processes that exited on their own (not killed or stopped by the test)."""
        found = [(n, p.returncode) for n, p in self._async.items() if p.returncode is not None]
        found += [(n, p.returncode) for n, p in self._popen.items() if p.poll() is not None]
        return found

    async def close(self) -> None:
        for name in [*self._async, *self._popen]:
            await self.kill(name)
        for drain in self._drains:
            drain.cancel()
        await asyncio.gather(*self._drains, return_exceptions=True)


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[Processes]:
    procs = Processes(tmp_path / "logs")
    try:
        yield procs
    finally:
        await procs.close()


# -- the stack --------------------------------------------------------------------------------


class DevServer:
    """``temporal server start-dev`` in the server host's namespace, on a persistent database."""

    def __init__(self, net: Network, procs: Processes, db_file: Path) -> None:
        self.net, self.procs, self.db_file = net, procs, db_file
        self.ip = net.ip("srv")
        self.address = f"{self.ip}:{TEMPORAL_PORT}"

    def _cli(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [temporal_cli(), *args, "--address", self.address],
            capture_output=True,
            check=False,
            timeout=10,
        )

    def start(self, timeout: float = 60.0) -> None:
        argv = [
            temporal_cli(),
            "server",
            "start-dev",
            # All of the host's interfaces: the dev server's own services find each other on
            # its loopback (127.0.0.1), its clients come in on the host's address.
            "--ip",
            "0.0.0.0",
            "--port",
            str(TEMPORAL_PORT),
            "--headless",
            "--log-level",
            "warn",
            "--db-filename",
            str(self.db_file),
            "--search-attribute",
            "JamJetApprovalPending=Bool",
        ]
        name = "temporal"
        proc = self.procs.popen(name, self.net.exec_args("srv", argv))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the dev server exited ({proc.returncode}); see its log")
            # Listening is not ready: ask a namespace-scoped question.
            if self._cli("workflow", "count").returncode == 0:
                self._cli(
                    "operator", "search-attribute", "create",
                    "--name", "JamJetApprovalPending", "--type", "Bool",
                )  # fmt: skip
                return
            time.sleep(0.2)
        raise RuntimeError(f"the dev server did not answer on {self.address}")

    def stop(self) -> None:
        self.procs.stop("temporal")


@dataclasses.dataclass
class Tally:
    """What happened, for the figures."""

    started: int = 0
    killed: list[str] = dataclasses.field(default_factory=list)
    kill_at: float = 0.0
    kill_phase: str = ""
    cut_from: float = 0.0
    cut_to: float = 0.0
    cut_phase: str = ""
    in_flight: dict[str, int] = dataclasses.field(default_factory=dict)
    results: dict[str, asyncio.Task[Outcome]] = dataclasses.field(default_factory=dict)
    restarts: int = 0
    down_for: float = 0.0
    restarted: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    submitted: int = 0
    accepted: int = 0
    submit_errors: int = 0
    survey_errors: int = 0
    refetches: int = 0

    def open_runs(self) -> int:
        """Runs started and not yet closed."""
        return sum(1 for task in self.results.values() if not task.done())


class Clock:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def until(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - self.now()))


#: Attempts of ``ledger.book`` in progress on a host, by phase: preparing (before the effect)
#: or confirming (the effect applied, the step not yet reported to Temporal).
BOOKING = {
    "preparing": "applied IS NULL AND started_at > clock_timestamp() - interval '0.6 seconds'",
    "confirming": "applied AND effect_at > clock_timestamp() - interval '0.5 seconds'",
}


async def booking_on(db: Database, host: str, phase: str) -> bool:
    """Whether a worker of ``host`` is in that phase of a booking right now."""

    def ask() -> bool:
        with db.admin() as conn:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE host = %s AND " + BOOKING[phase]).format(
                    sql.Identifier(db.ledger_schema, "attempts")
                ),
                (host,),
            ).fetchone()
        return bool(row and row[0])

    return await asyncio.to_thread(ask)


async def when_booking(db: Database, host: str, phase: str, clock: Clock, limit: float) -> str:
    """Wait (up to ``limit`` s) until ``host`` is in that phase of a booking; what it is in."""
    deadline = clock.now() + limit
    while clock.now() < deadline:
        if await booking_on(db, host, phase):
            return f"{phase} a booking"
        await asyncio.sleep(0.05)
    return "between bookings"


async def chaos(
    net: Network,
    procs: Processes,
    server: DevServer,
    db: Database,
    workers: dict[str, list[str]],
    clock: Clock,
    tally: Tally,
) -> None:
    """Kill every worker of h1, cut h2's link for CUT_FOR s, restart the dev server.

    The kill waits (a little) for an h1 worker to have booked a payment that Temporal has not
    heard of yet; the cut, for an h2 worker to be about to book one.
    """
    await clock.until(KILL_AT)
    tally.kill_phase = await when_booking(db, "h1", "confirming", clock, BUSY_WAIT)
    tally.kill_at = clock.now()
    tally.in_flight["kill"] = tally.open_runs()
    for name in workers["h1"]:
        await procs.kill(name)
        tally.killed.append(name)

    await clock.until(CUT_AT)
    tally.cut_phase = await when_booking(db, "h2", "preparing", clock, BUSY_WAIT)
    net.cut("h2")
    tally.cut_from = clock.now()
    tally.in_flight["cut"] = tally.open_runs()
    try:
        await asyncio.sleep(CUT_FOR)
    finally:
        net.restore("h2")
    tally.cut_to = clock.now()

    await clock.until(RESTART_AT)
    began = clock.now()
    tally.in_flight["restart"] = tally.open_runs()
    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(server.start)
    tally.down_for = clock.now() - began
    tally.restarts += 1
    tally.restarted.set()


async def approve_all(
    client: Client,
    approvers: list[SigningIdentity],
    held: set[str],
    tally: Tally,
) -> None:
    """The approvals script: list open requests, sign each with the next approver, submit.

    Waits APPROVAL_DELAY after a request before deciding it; runs in ``held`` only once the dev
    server has restarted. Errors (a server restarting, a worker gone) are retried next round.
    """
    while True:
        try:
            async with asyncio.timeout(15):
                listing = await survey_pending(client)
        except (RPCError, TimeoutError):
            tally.survey_errors += 1
            await asyncio.sleep(0.5)
            continue
        for request in listing.requests:
            if request.run_id in held and not tally.restarted.is_set():
                continue
            age = time.time() - request.requested_at.timestamp()
            if age < APPROVAL_DELAY:
                continue
            who = next(a for a in approvers if a.approver not in request.approved_by)
            decision = sign(who, request, "approved", "checked by the approvals script")
            tally.submitted += 1
            try:
                async with asyncio.timeout(10):
                    result = await submit(client, decision)
            except Exception:  # a server restarting, a worker gone: again next round
                tally.submit_errors += 1
                continue
            tally.accepted += result.accepted
        await asyncio.sleep(0.5)


async def wait_result(client: Client, workflow_id: str, tally: Tally) -> Outcome:
    while True:
        handle = client.get_workflow_handle(workflow_id, result_type=Outcome)
        try:
            outcome: Outcome = await handle.result()
            return outcome
        except RPCError:
            # The server restart cuts the long poll; take a fresh handle once it answers.
            tally.refetches += 1
            await asyncio.sleep(0.5)


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


# -- the test ---------------------------------------------------------------------------------


@pytest.mark.timeout(420)
async def test_governed_runs_survive_a_lost_host_a_partition_and_a_server_restart(
    network: Network,
    database: Database,
    processes: Processes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    began = time.monotonic()
    net, db, procs = network, database, processes
    memory_admin_url = await set_up_schemas(db)
    bridge = net.bridge_ip
    await procs.spawn(
        "pgproxy",
        [sys.executable, "-m", "tests.multihost.pgproxy", bridge, str(PG_PORT), "127.0.0.1",
         str(PG_PORT)],
        b"listening",
        within=20,
    )  # fmt: skip

    server = DevServer(net, procs, tmp_path / "temporal.db")
    await asyncio.to_thread(server.start)
    srv = net.ip("srv")
    await procs.spawn(
        "modelserver",
        net.exec_args(
            "srv",
            [sys.executable, "-m", "jamjet_temporal.modelserver", "--host", srv, "--port",
             str(MODEL_PORT)],
        ),
        b"listening",
        within=30,
    )  # fmt: skip

    # Keys: approvers and the portal; the workers' audit key, one copy per host (its marks
    # file beside it, as on separate machines); the key the bundles are signed with.
    keys = tmp_path / "keys"
    alice, _ = generate_identity("alice@example.com", keys)
    bob, _ = generate_identity("bob@example.com", keys)
    portal, _ = generate_identity("portal", keys)
    worker_key = load_or_create_signing_key(keys / "worker-audit.key")
    host_keys = {}
    for host in WORKER_HOSTS:
        (tmp_path / host).mkdir()
        host_keys[host] = str(tmp_path / host / "audit-signing.key")
        shutil.copy(keys / "worker-audit.key", host_keys[host])
        os.chmod(host_keys[host], 0o600)
    export_key_path = keys / "export.key"
    export_fp = fingerprint(load_or_create_signing_key(export_key_path))

    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "approvals.yaml").write_text(
        APPROVALS.format(alice=alice.public_key, bob=bob.public_key, portal=portal.public_key)
    )
    queue = f"multihost-{net.tag}"
    via_bridge = f"{db.worker}@{bridge}:{PG_PORT}/test"
    config = {
        "address": server.address,
        "task_queue": queue,
        "policy": str(tmp_path / "policy.yaml"),
        "approvals": str(tmp_path / "approvals.yaml"),
        "audit": f"postgresql://{via_bridge}?schema={db.audit_schema}&connect_timeout=5",
        "memory": f"postgresql://{via_bridge}?schema={db.memory_schema}&connect_timeout=5",
        "model_url": f"http://{srv}:{MODEL_PORT}/v1",
        "ledger_dsn": f"host={bridge} port={PG_PORT} dbname=test user={db.worker}"
        " connect_timeout=5",
        "ledger_schema": db.ledger_schema,
        "keys": host_keys,
    }
    (tmp_path / "config.json").write_text(json.dumps(config, indent=2))

    workers: dict[str, list[str]] = {host: [] for host in WORKER_HOSTS}

    async def start_worker(host: str, index: int) -> None:
        name = f"{host}-w{index}"
        argv = [sys.executable, "-m", "tests.multihost.worker", str(tmp_path / "config.json"),
                host, str(index)]  # fmt: skip
        await procs.spawn(name, net.exec_args(host, argv), b"polling", within=90)
        workers[host].append(name)

    await asyncio.gather(
        *(start_worker(h, i) for h in WORKER_HOSTS for i in range(1, WORKERS_PER_HOST + 1))
    )
    set_up = time.monotonic() - began

    client = await Client.connect(
        server.address,
        plugins=[
            JamJetPlugin(
                JamJetConfig(audit=AuditConfig(store=None), memory=MemoryConfig(store=None))
            )
        ],
    )
    ids = [f"mh-{net.tag}-{i:02d}" for i in range(RUNS)]
    held = {ids[i] for i in range(RUNS) if i % HOLD_EVERY == HOLD_EVERY - 1}
    tally = Tally()
    clock = Clock()
    results = tally.results

    async def start_runs() -> None:
        for i, workflow_id in enumerate(ids):
            await clock.until(i * START_EVERY)
            with acting_as(payment(i).user, signer=portal), run_budget(max_cost=0.05):
                await client.start_workflow(
                    governed.run,
                    payment(i),
                    id=workflow_id,
                    task_queue=queue,
                    # A workflow task taken by a worker that then dies is retried this soon.
                    task_timeout=timedelta(seconds=5),
                )
            tally.started += 1
            results[workflow_id] = asyncio.create_task(wait_result(client, workflow_id, tally))

    faults = asyncio.create_task(chaos(net, procs, server, db, workers, clock, tally))
    approver = asyncio.create_task(approve_all(client, [alice, bob], held, tally))
    try:
        await start_runs()
        await faults
        await asyncio.wait(results.values(), timeout=CLOSE_WITHIN)
        closed_after = clock.now()
    finally:
        for helper in (faults, approver):
            helper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await helper
        for waiting in results.values():
            waiting.cancel()

    # -- no run lost ----------------------------------------------------------------------
    outcomes: dict[str, Outcome] = {}
    failed: dict[str, str] = {}
    for workflow_id, waited in results.items():
        error = waited.exception() if waited.done() and not waited.cancelled() else None
        if not waited.done() or waited.cancelled():
            failed[workflow_id] = "still open"
        elif isinstance(error, WorkflowFailureError):
            failed[workflow_id] = f"failed: {error.__cause__}"
        elif error is not None:
            failed[workflow_id] = repr(error)
        else:
            outcomes[workflow_id] = waited.result()
    lost = RUNS - len(outcomes)
    histories: dict[str, WorkflowHistory] = {
        workflow_id: await client.get_workflow_handle(workflow_id).fetch_history()
        for workflow_id in ids
    }
    reports = {workflow_id: read_history(history) for workflow_id, history in histories.items()}
    # What the faults cost the runs: steps that needed another attempt (by type, with why the
    # one before ended), workflow tasks that timed out or failed, and the slowest runs.
    resumed: dict[str, float] = {}  # "type (why)" -> the longest such step took, in s
    for h in histories.values():
        scheduled: dict[int, tuple[str, datetime]] = {}
        for e in h.events:
            at = e.event_time.ToDatetime()
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                name = e.activity_task_scheduled_event_attributes.activity_type.name
                scheduled[e.event_id] = (name, at)
            elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started = e.activity_task_started_event_attributes
                if started.attempt > 1:
                    name, since = scheduled[started.scheduled_event_id]
                    why = failure_text(started.last_failure).split(":")[0]
                    step = f"{name} ({why})"
                    resumed[step] = max(resumed.get(step, 0.0), (at - since).total_seconds())
    task_trouble = Counter(
        EventType.Name(e.event_type).removeprefix("EVENT_TYPE_").lower()
        for h in histories.values()
        for e in h.events
        if e.event_type
        in (EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
    )
    took = sorted(
        (
            (
                h.events[-1].event_time.ToDatetime() - h.events[0].event_time.ToDatetime()
            ).total_seconds(),
            w,
        )
        for w, h in histories.items()
    )

    # -- no side effect twice: one booking per run, under its step's idempotency key ------------
    expected: dict[str, str] = {}  # workflow id -> the key of its ledger.book step
    accepted_attempt: dict[str, int] = {}  # workflow id -> the attempt Temporal accepted
    for workflow_id, report in reports.items():
        steps = [s for s in report.steps if s.activity_type == "ledger.book"]
        if len(steps) == 1 and steps[0].outcome == "completed":
            step = steps[0]
            expected[workflow_id] = expected_key(
                workflow_id, histories[workflow_id].run_id, step.activity_id
            )
            accepted_attempt[workflow_id] = step.attempt
    with db.admin() as conn:
        ledger_rows = conn.execute(
            sql.SQL("SELECT key, workflow_id, amount, host FROM {}").format(
                sql.Identifier(db.ledger_schema, "ledger")
            )
        ).fetchall()
        attempts = conn.execute(
            sql.SQL("SELECT key, host, attempt, applied FROM {}").format(
                sql.Identifier(db.ledger_schema, "attempts")
            )
        ).fetchall()
    effects = Counter(str(row[1]) for row in ledger_rows)
    duplicates = sum(n - 1 for n in effects.values())
    wrong_key = [r[1] for r in ledger_rows if expected.get(str(r[1])) != r[0]]
    wrong_amount = [
        r[1] for r in ledger_rows if float(str(r[2])) != payment(ids.index(str(r[1]))).amount
    ]
    unbooked = [w for w in ids if effects[w] == 0]
    tries = Counter(str(a[0]) for a in attempts)
    retried = sum(1 for key in expected.values() if tries[key] > 1)
    prevented = sum(1 for a in attempts if a[3] is False)
    cut_short = sum(1 for a in attempts if a[3] is None)
    by_host = Counter(str(row[3]) for row in ledger_rows)

    # -- the audit trail: the chain (and each host's marks), and each run's bundle -----------
    auditor_url = f"postgresql://{db.auditor}@127.0.0.1:{PG_PORT}/test?schema={db.audit_schema}"
    trusted = [fingerprint(worker_key)]
    store = open_store(auditor_url)
    try:
        chain = await store.verify(trusted_keys=trusted)
        marks_ok = [
            (await store.verify(trusted_keys=trusted, marks=checkpoint_marks_path(Path(k)))).ok
            for k in host_keys.values()
        ]
        events = [stored.event for stored in await store.events()]
    finally:
        await store.close()
    kinds = {w: Counter(e.kind for e in events if e.run_id == w) for w in ids}
    decisions = {
        w: sorted(
            (e.kind, str(e.data.get("subject", "")), str(e.data["decision"]))
            for e in events
            if e.run_id == w and e.kind in DECISION_KINDS
        )
        for w in ids
    }
    closed = Counter((e.run_id, e.data.get("outcome")) for e in events if e.kind == "run.closed")
    calls = {
        e.run_id: e for e in events if e.kind == "tool.call" and e.data.get("tool") == "ledger.book"
    }
    # A call record written by an attempt whose completion Temporal did not accept.
    stale_records = sorted(
        w for w, n in accepted_attempt.items() if w in calls and calls[w].data["attempt"] != n
    )
    bundles_ok = 0
    bundle_problems: dict[str, list[str]] = {}
    out = tmp_path / "bundles"
    out.mkdir()
    for workflow_id in ids:
        try:
            exported = await export(
                workflow_id,
                store=auditor_url,
                output=out / f"{workflow_id}.json",
                key=export_key_path,
                address=server.address,
            )
        except JamJetError as err:
            bundle_problems[workflow_id] = [f"export: {err}"]
            continue
        verdict = verify_bundle(exported.bundle, trusted_keys=[export_fp])
        # Integrity ok, signer pinned, and completeness checked against the history and ok.
        if verdict.integrity_ok and verdict.trusted and verdict.completeness_ok is True:
            bundles_ok += 1
        else:
            bundle_problems[workflow_id] = [
                *verdict.integrity_problems,
                *verdict.completeness_problems,
                *([] if verdict.trusted else ["signer not trusted"]),
                *([] if verdict.completeness_ok else ["completeness not checked"]),
                *([] if exported.history_included else ["no history"]),
            ]

    # -- Engram memory: one fact per run, whichever host ran it ------------------------------
    memory = open_memory(memory_admin_url)
    try:
        facts = {
            user: [f.value for f in await asyncio.to_thread(memory.facts, user)]
            for user in sorted({payment(i).user for i in range(RUNS)})
        }
    finally:
        memory.close()
    unremembered = [
        w for i, w in enumerate(ids) if facts[payment(i).user].count(fact_for(w, payment(i))) != 1
    ]
    memory_total = sum(len(v) for v in facts.values())
    read_earlier = sum(1 for o in outcomes.values() if o.remembered > 0)

    wall = time.monotonic() - began
    figures = (
        f"multihost: {RUNS} runs · {len(WORKER_HOSTS)} hosts"
        f" ({len(WORKER_HOSTS) * WORKERS_PER_HOST} workers) · killed {len(tally.killed)}"
        f" workers on h1 · partitioned h2 {tally.cut_to - tally.cut_from:.0f}s"
        f" · restarted dev server {tally.restarts}x · lost {lost} · duplicates {duplicates}"
        f" · bundles verified {bundles_ok}/{RUNS}"
        f" · chain {'ok' if chain.ok else 'BROKEN'}"
        f"{', covered' if chain.covered_all else ', NOT fully covered'}"
    )
    fault_line = (
        f"multihost faults: h1 killed at {tally.kill_at:.1f}s {tally.kill_phase}"
        f" ({tally.in_flight.get('kill')} runs open); h2 cut {tally.cut_from:.1f}-"
        f"{tally.cut_to:.1f}s {tally.cut_phase} ({tally.in_flight.get('cut')} runs open);"
        f" dev server down {tally.down_for:.1f}s at {RESTART_AT:.0f}s"
        f" ({tally.in_flight.get('restart')} runs open; {len(held)} runs' approvals held for"
        f" after it)"
    )
    details = (
        f"multihost figures: all closed {closed_after:.1f}s after the first start (set-up"
        f" {set_up:.1f}s, wall {wall:.1f}s) · ledger: {len(ledger_rows)} bookings by host"
        f" {dict(sorted(by_host.items()))}, {len(attempts)} attempts, {retried} bookings retried,"
        f" {cut_short} attempts cut short, {prevented} duplicate effects prevented"
        f" · approvals: {tally.accepted} accepted of {tally.submitted} signed decisions"
        f" ({tally.submit_errors} submits and {tally.survey_errors} listings failed and were"
        f" retried)"
        f" · audit: {chain.count} events, {chain.checkpoints} checkpoints, each host's marks"
        f" {'held' if all(marks_ok) else 'MISSING'}, {len(stale_records)} call records from an"
        f" attempt Temporal did not accept · memory: {memory_total} facts, {read_earlier} runs"
        f" read earlier runs' facts · client handle refetches {tally.refetches}"
    )
    costs = (
        f"multihost costs: steps retried (longest wait) "
        f"{', '.join(f'{k} {v:.0f}s' for k, v in sorted(resumed.items())) or 'none'};"
        f" workflow tasks {dict(task_trouble) or 'all completed first time'}; slowest runs"
        f" {', '.join(f'{w} {t:.0f}s' for t, w in took[-3:])}"
    )
    with capsys.disabled():  # shown in every run's output, not only with -s or on failure
        print(f"\n{figures}\n{fault_line}\n{details}\n{costs}", flush=True)

    assert tally.started == RUNS
    assert not failed, f"runs lost: {failed}"
    assert all(r.status == "completed" and r.lost == 0 and r.reruns == 0 for r in reports.values())
    assert len(tally.killed) == WORKERS_PER_HOST and tally.restarts == 1
    assert tally.cut_to - tally.cut_from >= CUT_FOR
    assert duplicates == 0 and not unbooked, (effects, unbooked)
    assert not wrong_key and not wrong_amount, (wrong_key, wrong_amount)
    assert len(expected) == RUNS and len(ledger_rows) == RUNS
    assert bundles_ok == RUNS, bundle_problems
    assert chain.covered_all, chain.detail
    assert all(marks_ok)
    for i, workflow_id in enumerate(ids):
        seen, outcome = kinds[workflow_id], outcomes[workflow_id]
        two = payment(i).amount > 5000
        assert closed[(workflow_id, "completed")] == 1, workflow_id
        # Each governed fact once, whichever host recorded it and however often it was retried.
        assert seen == Counter(TRAIL) + Counter({"approval.decision": 2 if two else 1}), (
            workflow_id,
            seen,
        )
        assert decisions[workflow_id] == DECISIONS, (workflow_id, decisions[workflow_id])
        assert outcome.blocked and outcome.halted, outcome  # policy refused, budget halted
        assert len(outcome.approved_by) == (2 if two else 1), workflow_id
        assert outcome.txn == "txn_" + expected[workflow_id][3:15]
    assert not unremembered and memory_total == RUNS, unremembered
    gone = [name for name, code in procs.exited() if name not in tally.killed]
    assert not gone, f"processes exited on their own: {gone}"
