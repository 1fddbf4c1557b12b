"""Helpers for the audit-store tests: sample events and the two backends' raw access.

PostgreSQL runs with two roles, as in production: the superuser ``root`` is the admin that
sets each schema up (``PostgresAuditStore.init_db``) and plays the attacker with database
access; stores connect as a fresh LOGIN role that may only read and append.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import TypeVar

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jamjet_temporal._shared._pgtarget import lock_key
from jamjet_temporal.audit import (
    AuditEvent,
    AuditStore,
    PostgresAuditStore,
    canonical_json,
    event_id,
    open_store,
)
from jamjet_temporal.audit._checkpoint import CheckpointSigner
from jamjet_temporal.audit._keys import load_or_create_signing_key

PG_ADDRESS = "127.0.0.1:5432"
PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=root connect_timeout=3"
"""The admin (a superuser): sets schemas up, and tampers with them in the attack tests."""

T0 = datetime(2025, 1, 1, tzinfo=UTC)

_T = TypeVar("_T")


def make_event(
    n: int, *, run: str = "exec_1", kind: str = "tool.call", note: str = "", ns: str = "t"
) -> AuditEvent:
    """Event number ``n``; the same ``n`` (and ``ns``) always gives the same id."""
    return AuditEvent(
        id=event_id(ns, str(n)),
        run_id=run,
        workflow_run_id=f"run-{run}",
        kind=kind,
        at=T0 + timedelta(seconds=n),
        actor={"workflow": "Agent", "worker": "w1"},
        data={"n": n, "note": note, "args": {"q": "café ☕", "k": [1, 2.5, None, True]}},
    )


def make_signer(
    key: Ed25519PrivateKey | None = None,
    *,
    marks: Path | None = None,
    every_events: int = 1000,
    every: timedelta = timedelta(hours=1),
) -> CheckpointSigner:
    """A checkpoint signer; by default one that signs only the first append and when asked."""
    return CheckpointSigner(
        key or Ed25519PrivateKey.generate(), marks=marks, every_events=every_events, every=every
    )


def append_signing(
    url: str, key: Path, marks: Path, numbers: Sequence[int], start: Barrier
) -> None:
    """A worker process: append each number as an event, each append signing a checkpoint.

    Uses the key file ``key`` and the marks file ``marks`` as a worker does; waits at
    ``start`` once the store is open, so that all such processes append at the same moment.
    """

    async def work() -> None:
        signer = make_signer(load_or_create_signing_key(key), marks=marks, every_events=1)
        store = open_store(url, signer=signer)
        try:
            await store.events(kinds=[])
            start.wait(timeout=30)
            for n in numbers:
                await store.append([make_event(n, ns="shared-marks")])
        finally:
            await store.close()

    asyncio.run(work())


def run_sync(work: Coroutine[object, object, _T]) -> _T:
    """Run a coroutine to the end from sync code, even inside a running event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


def pg_worker_dsn(role: str) -> str:
    return f"host=127.0.0.1 port=5432 dbname=test user={role} connect_timeout=3"


class Backend:
    """A fresh place for a store (a file or a schema) plus raw SQL access that bypasses it.

    In statements, ``{t}`` stands for the events table, ``{c}`` for the checkpoints table and
    ``{s}`` for the store id table.
    """

    def __init__(self, kind: str, url: str, schema: str | None = None) -> None:
        self.kind = kind
        self.url = url
        self.schema = schema
        self.table = self.name("audit_events")

    def name(self, table: str) -> str:
        return table if self.schema is None else f"{self.schema}.{table}"

    def open(self, signer: CheckpointSigner | None = None, **options: float) -> AuditStore:
        return open_store(self.url, signer=signer, **options)

    def _sql(self, statement: str) -> str:
        return (
            statement.replace("{t}", self.table)
            .replace("{c}", self.name("audit_checkpoints"))
            .replace("{s}", self.name("audit_store_id"))
        )

    def execute(self, statement: str, params: Sequence[object] = ()) -> None:
        """Run raw SQL on its own connection, as the file's writer or the admin role."""
        self.query(statement, params)

    def query(self, statement: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Run raw SQL (placeholders ``?``) and return its rows."""
        text = self._sql(statement)
        if self.kind == "sqlite":
            lite = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                return lite.execute(text, tuple(params)).fetchall()
            finally:
                lite.close()
        with psycopg.connect(PG_DSN, autocommit=True) as pg:
            if params:
                cur = pg.execute(text.replace("?", "%s").encode(), tuple(params))
            else:
                cur = pg.execute(text.encode())
            return cur.fetchall() if cur.description is not None else []

    @contextlib.contextmanager
    def append_lock_held(self) -> Iterator[None]:
        """Hold the lock every append takes (another writer's transaction) while inside."""
        if self.kind == "sqlite":
            lite = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                lite.execute("BEGIN IMMEDIATE")
                yield
                lite.execute("ROLLBACK")
            finally:
                lite.close()
            return
        assert self.schema is not None
        with psycopg.connect(PG_DSN, autocommit=True) as pg:
            key = lock_key(f"jamjet.audit:{self.schema}")
            pg.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                pg.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def drop_append_only(self, table: str = "audit_events") -> None:
        """What an attacker with database access does first."""
        if self.kind == "sqlite":
            for name in ("no_update", "no_delete", "no_replace"):
                self.execute(f"DROP TRIGGER {table}_{name}")
        else:
            self.execute(f"DROP TRIGGER {table}_append_only ON {self.name(table)}")

    def rewrite(self, seq: int, changes: dict[str, object]) -> None:
        """The attack: change fields of event ``seq``'s data, then re-chain every event after.

        Done as the file's writer (SQLite) or the tables' owner (PostgreSQL), who can drop
        the append-only triggers; afterwards every link of the chain holds again.
        """
        self.drop_append_only()
        rows = self.query("SELECT seq, body, prev_hash FROM {t} WHERE seq >= ? ORDER BY seq", [seq])
        prev = str(rows[0][2])
        updates: list[tuple[str, str, str, int]] = []
        for number, body, _ in rows:
            text = str(body)
            if number == seq:
                event = AuditEvent.model_validate_json(text)
                text = canonical_json(event.model_copy(update={"data": {**event.data, **changes}}))
            digest = hashlib.sha256((prev + text).encode()).hexdigest()
            updates.append((text, prev, digest, int(str(number))))
            prev = digest
        for update in updates:
            self.execute("UPDATE {t} SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?", update)

    def forge_checkpoint(
        self, key: Ed25519PrivateKey, seq: int, *, claim: CheckpointSigner | None = None
    ) -> str:
        """Insert a checkpoint of the chain's current hash at ``seq``, signed with ``key``.

        With ``claim``, the row names that signer (its fingerprint and public key) but carries
        ``key``'s signature: an impersonation.

        Returns:
            The fingerprint of ``key``.
        """
        store_id = str(self.query("SELECT store_id FROM {s}")[0][0])
        head = str(self.query("SELECT hash FROM {t} WHERE seq = ?", [seq])[0][0])
        forger = CheckpointSigner(key)
        signed = forger.sign(store_id, seq, head, datetime.now(UTC))
        if claim is not None:
            real = claim.sign(store_id, seq, head, signed.signed_at)
            signed = signed._replace(signer=real.signer, public_key=real.public_key)
        at = signed.signed_at.isoformat() if self.kind == "sqlite" else signed.signed_at
        self.execute(
            "INSERT INTO {c} (seq, store_id, head, signed_at, signer, public_key, signature)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [seq, store_id, head, at, signed.signer, signed.public_key, signed.signature],
        )
        return forger.fingerprint


class Backends:
    """Makes fresh ``Backend``s of one kind and removes them at the end of the test.

    PostgreSQL schemas are set up by the admin for a worker role made for the test.
    """

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self._tmp = tmp_path
        self._schemas: list[str] = []
        self._roles: list[str] = []
        self._worker: str | None = None

    def role(self) -> str:
        """A fresh LOGIN role (trust auth), dropped at cleanup."""
        name = f"jj_role_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {name} LOGIN".encode())
        self._roles.append(name)
        return name

    def worker(self) -> str:
        """This test's worker role (made on first use)."""
        if self._worker is None:
            self._worker = self.role()
        return self._worker

    def fresh(self, *, set_up: bool = True) -> Backend:
        """A new file or schema; ``set_up=False`` leaves the schema for the test to set up."""
        name = f"jj_test_{uuid.uuid4().hex[:12]}"
        if self.kind == "sqlite":
            return Backend("sqlite", f"sqlite:///{self._tmp / name}.db")
        worker = self.worker()
        self._schemas.append(name)
        if set_up:
            run_sync(PostgresAuditStore.init_db(PG_DSN, schema=name, worker_role=worker))
        return Backend("postgres", f"postgresql://{worker}@{PG_ADDRESS}/test?schema={name}", name)

    def cleanup(self) -> None:
        if not self._schemas and not self._roles:
            return
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for schema in self._schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())
            for role in reversed(self._roles):
                conn.execute(f"DROP OWNED BY {role}".encode())
                conn.execute(f"DROP ROLE {role}".encode())
