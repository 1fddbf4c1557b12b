"""Audit appends under concurrency: group commit on SQLite and PostgreSQL (figures printed).

    python bench/audit_append.py [--calls 1000] [--appenders 1 200] [--no-sign]
                                 [--pg-admin DSN | --no-pg] [--gather-ms 5]

Each appender plays a governed tool call as the gate does: append the decision (one event,
durable before the tool runs), then the call record (one event), and on to the next call,
until ``--calls`` tool calls are recorded between all appenders. The store signs checkpoints
at the workers' default cadence (every 100 events or 10 s) with a marks file, as a worker's
does, unless ``--no-sign``. A store under load holds each transaction open ``--gather-ms``
for more appends (the default ``GATHER_S``; 0 commits at once, as an idle store does).

SQLite runs on a temporary file (WAL, synchronous=FULL: one fsync per transaction).
PostgreSQL runs on a fresh schema of the server ``--pg-admin`` names (default: the local test
server), set up by that admin for a fresh worker role, both dropped afterwards; when the
server cannot be reached it is skipped with the reason.

Per store and number of appenders: appends/s; transactions (the store's commits, i.e. fsyncs
on SQLite, lock + commit round trips on PostgreSQL) and appends per transaction; latency of
one append (p50, p99); and this process's CPU time per append (all its threads: the event
loop, the SQLite store thread, psycopg), the worker's price of the audit trail.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jamjet_temporal.audit import (
    GATHER_S,
    AuditEvent,
    AuditStore,
    CheckpointSigner,
    PostgresAuditStore,
    event_id,
    load_or_create_signing_key,
    open_store,
)

DEFAULT_PG_ADMIN = "host=127.0.0.1 port=5432 dbname=test user=root connect_timeout=3"


@dataclass
class Figures:
    store: str
    appenders: int
    appends: int
    seconds: float
    cpu: float
    transactions: int
    latencies: list[float]


def tool_events(run: int, call: int) -> tuple[AuditEvent, AuditEvent]:
    """The gate decision and the call record of one tool call."""
    run_id = f"exec_bench_{run}"
    at = datetime.now(UTC)
    actor = {"workflow": "BenchAgent", "worker": "bench-worker"}
    decision = AuditEvent(
        id=event_id(run_id, "r1", str(call), "decision"),
        run_id=run_id,
        workflow_run_id="r1",
        kind="policy.decision",
        at=at,
        actor=actor,
        data={"tool": "search", "decision": "ALLOWED", "rule": "allow-search", "call": call},
    )
    record = AuditEvent(
        id=event_id(run_id, "r1", str(call), "call"),
        run_id=run_id,
        workflow_run_id="r1",
        kind="tool.call",
        at=at,
        actor=actor,
        data={"tool": "search", "args_sha256": "ab" * 32, "ok": True, "latency_ms": 0.4},
    )
    return decision, record


async def run(store: AuditStore, name: str, appenders: int, calls: int) -> Figures:
    await store.events(kinds=[])  # connect first, outside the timing
    per = [calls // appenders + (1 if i < calls % appenders else 0) for i in range(appenders)]
    # Built before the timing: the figures are the store's alone.
    events = [[e for call in range(per[i]) for e in tool_events(i, call)] for i in range(appenders)]
    latencies: list[float] = []

    async def appender(index: int) -> None:
        for event in events[index]:
            began = time.perf_counter()
            await store.append([event])
            latencies.append(time.perf_counter() - began)

    commits_before = int(getattr(store, "_commits", 0))
    cpu, began = time.process_time(), time.perf_counter()
    await asyncio.gather(*(appender(i) for i in range(appenders)))
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    transactions = int(getattr(store, "_commits", 0)) - commits_before
    verdict = await store.verify()
    assert verdict.ok and verdict.count == 2 * calls, verdict
    return Figures(name, appenders, 2 * calls, seconds, cpu, transactions, latencies)


@asynccontextmanager
async def postgres_url(admin: str) -> AsyncIterator[str]:
    """A fresh schema set up by ``admin`` for a fresh worker role; both dropped afterwards."""
    suffix = uuid.uuid4().hex[:10]
    role, schema = f"jamjet_bench_{suffix}", f"jamjet_bench_{suffix}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN".encode())
        host = conn.info.host
        port = conn.info.port
        dbname = conn.info.dbname
    try:
        await PostgresAuditStore.init_db(admin, schema=schema, worker_role=role)
        yield f"postgresql://{role}@{host}:{port}/{dbname}?schema={schema}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())
            conn.execute(f"DROP OWNED BY {role}".encode())
            conn.execute(f"DROP ROLE {role}".encode())


def signer_in(folder: Path, sign: bool) -> CheckpointSigner | None:
    if not sign:
        return None
    key_path = folder / "audit-signing.key"
    key = load_or_create_signing_key(key_path)
    return CheckpointSigner(key, marks=folder / "audit-signing.key.checkpoints.json")


async def main(args: argparse.Namespace) -> None:
    rows: list[Figures] = []
    for appenders in args.appenders:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            store = open_store(
                f"sqlite:///{folder / 'audit.db'}",
                signer=signer_in(folder, args.sign),
                gather_s=args.gather_ms / 1000,
            )
            try:
                rows.append(await run(store, "sqlite", appenders, args.calls))
            finally:
                await store.close()
    skipped = "--no-pg" if args.no_pg else None
    if skipped is None:
        try:
            with psycopg.connect(args.pg_admin) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            skipped = f"not reachable: {str(exc).strip()}"
    if skipped is None:
        for appenders in args.appenders:
            with tempfile.TemporaryDirectory() as tmp:
                async with postgres_url(args.pg_admin) as url:
                    store = open_store(
                        url, signer=signer_in(Path(tmp), args.sign), gather_s=args.gather_ms / 1000
                    )
                    try:
                        rows.append(await run(store, "postgres", appenders, args.calls))
                    finally:
                        await store.close()

    print(
        f"{'store':<9}{'appenders':>10}{'appends':>9}{'appends/s':>11}{'transactions':>14}"
        f"{'appends/txn':>13}{'p50 ms':>9}{'p99 ms':>9}{'CPU µs/append':>15}"
    )
    for f in rows:
        ordered = sorted(f.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(
            f"{f.store:<9}{f.appenders:>10}{f.appends:>9}{f.appends / f.seconds:>11.0f}"
            f"{f.transactions:>14}{f.appends / max(f.transactions, 1):>13.1f}"
            f"{statistics.median(ordered) * 1000:>9.2f}{p99 * 1000:>9.2f}"
            f"{f.cpu / f.appends * 1e6:>15.0f}"
        )
    if skipped is not None:
        print(f"postgres: skipped ({skipped})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="tool calls (2 appends each)")
    parser.add_argument("--appenders", type=int, nargs="+", default=[1, 200])
    parser.add_argument("--no-sign", dest="sign", action="store_false", help="no checkpoints")
    parser.add_argument("--pg-admin", default=DEFAULT_PG_ADMIN, help="admin DSN for PostgreSQL")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument(
        "--gather-ms",
        type=float,
        default=GATHER_S * 1000,
        help="how long a store under load waits for more appends (0: never)",
    )
    asyncio.run(main(parser.parse_args()))
