"""The layer's CPU price under load: many concurrent zero-sleep 5-step runs, per variant.

    python bench/throughput.py [--concurrency 50,200,1000] [--rounds 3] [--pg-dsn DSN]

One dev server; one worker *process* per variant (bare temporalio; JamJetPlugin alone; a
100-rule policy with the SQLite audit trail; the same with the PostgreSQL audit trail), all
polling at once. Round by round, each variant in turn gets a batch of N concurrent runs
(started together, awaited together). For each variant and N it prints the worker process's
CPU time per run, activities per second, and the cost multiplier: CPU per run divided by bare
temporalio's, measured in the same round (medians over rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client

from bench._throughput import PlainFiveSteps, five_steps, plugin_for, serve
from jamjet_temporal.cli import DevServer, free_port

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    user, system = cpu_split(pid)
    return user + system


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


async def start_worker(
    variant: str, address: str, queue: str, audit: str | None
) -> asyncio.subprocess.Process:
    args = [str(HERE / "throughput.py"), "--worker", variant, address, queue]
    if audit:
        args.append(audit)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL
    )
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    if line.strip() != b"ready":
        raise SystemExit(f"worker {variant} did not start")
    # Keep reading what it prints (the SDK core logs to stdout): a full pipe would stall it.
    _DRAINS.append(asyncio.ensure_future(_drain(proc.stdout)))
    return proc


_DRAINS: list[asyncio.Future[None]] = []


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


WORKER_ROLE = "jamjet_bench_worker"


async def postgres_store(admin_dsn: str) -> str:
    """A fresh audit schema set up as production runs it: workers may only read and append."""
    import psycopg

    from jamjet_temporal.audit import PostgresAuditStore

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (WORKER_ROLE,))
        if exists.fetchone() is None:
            conn.execute(f"CREATE ROLE {WORKER_ROLE} LOGIN".encode())
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    await PostgresAuditStore.init_db(admin_dsn, schema=schema, worker_role=WORKER_ROLE)
    info = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    where = f"{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{info.get('dbname')}"
    return f"postgresql://{WORKER_ROLE}@{where}?schema={schema}"


async def main(levels: list[int], rounds: int, pg_dsn: str | None, diagnose: bool) -> None:
    server = DevServer(
        port=free_port(),
        # The server must not be what limits the batch: raise its per-namespace rate limits.
        extra_args=(
            "--dynamic-config-value", "frontend.namespaceRPS=100000",
            "--dynamic-config-value", "frontend.namespaceRPS.visibility=100000",
            "--dynamic-config-value", "history.rps=100000",
            "--dynamic-config-value", "matching.rps=100000",
        ),
    )  # fmt: skip
    await server.astart()
    workdir = Path(tempfile.mkdtemp(prefix="jamjet-throughput-"))
    variants: dict[str, tuple[str, str | None]] = {
        "bare temporalio": ("bare", None),
        "plugin alone": ("plugin", None),
        "gates + SQLite audit": ("gates", f"sqlite:///{workdir / 'audit.db'}"),
    }
    if pg_dsn:
        variants["gates + PostgreSQL audit"] = ("gates", await postgres_store(pg_dsn))
    if diagnose:
        variants["100-rule policy only"] = ("policy", None)
        variants["SQLite audit only"] = ("audit", f"sqlite:///{workdir / 'audit-only.db'}")
    workers: dict[str, asyncio.subprocess.Process] = {}
    try:
        queues = {name: f"tp-{uuid.uuid4().hex[:8]}" for name in variants}
        for name, (kind, audit) in variants.items():
            workers[name] = await start_worker(kind, server.address, queues[name], audit)
        clients = {}
        for name, (kind, _audit) in variants.items():
            plugin = plugin_for(kind, None)  # the client side only needs the data converter
            clients[name] = await Client.connect(server.address, plugins=[plugin] if plugin else [])

        async def batch(name: str, n: int) -> tuple[float, float]:
            client, queue = clients[name], queues[name]
            run = PlainFiveSteps.run if variants[name][0] == "bare" else five_steps.run
            before = cpu_seconds(workers[name].pid)
            started = time.perf_counter()
            handles = await asyncio.gather(
                *(
                    client.start_workflow(run, 1, id=f"tp-{uuid.uuid4().hex}", task_queue=queue)  # type: ignore[arg-type]
                    for _ in range(n)
                )
            )
            await asyncio.gather(*(h.result() for h in handles))
            wall = time.perf_counter() - started
            return (cpu_seconds(workers[name].pid) - before) / n, 5 * n / wall

        for name in variants:  # warm-up: imports, sandbox, connections, tables
            await batch(name, 20)
        print(f"{os.cpu_count()} cores · worker CPU per run, medians of {rounds} rounds")
        print(f"{'variant':28} {'runs':>5} {'CPU/run ms':>11} {'activities/s':>13} {'× bare':>7}")
        for n in levels:
            cpu: dict[str, list[float]] = {name: [] for name in variants}
            rate: dict[str, list[float]] = {name: [] for name in variants}
            ratio: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(rounds):
                measured = {}
                for name in variants:
                    measured[name] = await batch(name, n)
                base = measured["bare temporalio"][0]
                for name, (per_run, per_sec) in measured.items():
                    cpu[name].append(per_run)
                    rate[name].append(per_sec)
                    ratio[name].append(per_run / base)
            for name in variants:
                print(
                    f"{name:28} {n:>5} {statistics.median(cpu[name]) * 1000:>11.2f} "
                    f"{statistics.median(rate[name]):>13.0f} {statistics.median(ratio[name]):>7.2f}"
                )
        if diagnose:
            print("worker CPU over the whole run, user / system (fsync and I/O show as system):")
            for name, proc in workers.items():
                user, system = cpu_split(proc.pid)
                print(f"  {name:28} user {user:7.2f} s   system {system:7.2f} s")
    finally:
        for proc in workers.values():
            proc.terminate()
            await proc.wait()
        await server.astop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        variant, address, queue, *audit = sys.argv[2:]
        asyncio.run(serve(variant, address, queue, audit[0] if audit else None))
        raise SystemExit(0)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", default="50,200,1000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pg-dsn",
        default="postgresql://root@127.0.0.1:5432/test",
        help="PostgreSQL for the PostgreSQL audit variant ('' skips it).",
    )
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="Also measure the policy alone and the SQLite audit trail alone.",
    )
    args = parser.parse_args()
    levels = [int(n) for n in args.concurrency.split(",")]
    asyncio.run(main(levels, args.rounds, args.pg_dsn or None, args.diagnose))
    sys.stdout.flush()
    # The Temporal client's Rust threads can abort the interpreter while it finalizes
    # (temporalio/sdk-python#300); everything is printed, so skip the teardown.
    os._exit(0)
