"""The PostgreSQL audit store: one chain shared by workers on several hosts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from .._pgtarget import check_target, lock_key
from ._chain import ChainRow, ChainVerdict, ChainWalker
from ._event import AuditEvent, StoredEvent
from ._store import chain_batch, check_kinds, stored_event

__all__ = ["PostgresAuditStore"]

_VERIFY_PAGE = 1000

_DDL = (
    "CREATE SCHEMA IF NOT EXISTS {schema}",
    """CREATE TABLE IF NOT EXISTS {schema}.audit_events (
        seq bigint PRIMARY KEY CHECK (seq > 0),
        id text NOT NULL UNIQUE,
        run_id text NOT NULL,
        kind text NOT NULL,
        body text NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL,
        recorded_at timestamptz NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS audit_events_run_id ON {schema}.audit_events (run_id, seq)",
    """CREATE OR REPLACE FUNCTION {schema}.audit_events_refuse() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP;
    END
    $$""",
    """CREATE OR REPLACE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON {schema}.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.audit_events_refuse()""",
)

_STORED = "SELECT seq, body, prev_hash, hash, recorded_at FROM {schema}.audit_events"


class PostgresAuditStore:
    """An audit store in a PostgreSQL schema, for workers on several hosts.

    Appends serialize on a transaction-scoped advisory lock (``pg_advisory_xact_lock``, one
    key per schema), so each reads the chain's head and extends it with nothing in between,
    from any number of hosts; an event is committed when ``append`` returns. The table, its
    index and an append-only trigger (refusing UPDATE, DELETE and TRUNCATE) are created on
    first use if the table is missing; once it exists, the role needs only ``USAGE`` on the
    schema and ``SELECT, INSERT`` on ``audit_events``.

    One connection per store, opened on first use and opened again after it breaks; the
    store's calls take turns on it.

    Args:
        dsn: A libpq connection string or ``postgresql://`` URL.
        schema: The schema holding ``audit_events``: a plain lowercase identifier.

    Raises:
        ConfigError: ``dsn`` is not a connection string, or ``schema`` not an identifier.
    """

    def __init__(self, dsn: str, *, schema: str = "jamjet") -> None:
        check_target(dsn, schema, what="audit store")
        self._dsn = dsn
        self._schema = schema
        self._lock_key = lock_key(f"jamjet.audit:{schema}")
        self._guard = asyncio.Lock()
        self._conn: psycopg.AsyncConnection[TupleRow] | None = None
        self._closed = False

    async def append(self, events: Sequence[AuditEvent]) -> list[StoredEvent]:
        """Store events atomically, each id at most once (see ``AuditStore.append``)."""
        if not events:
            return []
        ids = [event.id for event in events]
        async with self._session() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            # READ COMMITTED: each statement after the lock sees every earlier append.
            cur = await conn.execute(self._sql(_STORED + " WHERE id = ANY(%s)"), (ids,))
            existing = {stored.event.id: stored for stored in map(_stored, await cur.fetchall())}
            cur = await conn.execute(
                self._sql(
                    "SELECT clock_timestamp(), h.seq, h.hash FROM (SELECT 1) AS one LEFT JOIN"
                    " (SELECT seq, hash FROM {schema}.audit_events ORDER BY seq DESC LIMIT 1)"
                    " AS h ON true"
                )
            )
            row = await cur.fetchone()
            assert row is not None
            clock, head_seq, head_hash = row
            now = clock.astimezone(UTC)
            head = None if head_seq is None else (int(head_seq), str(head_hash))
            results, rows = chain_batch(events, existing, head, now)
            async with conn.cursor() as insert:
                await insert.executemany(
                    self._sql(
                        "INSERT INTO {schema}.audit_events"
                        " (seq, id, run_id, kind, body, prev_hash, hash, recorded_at)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    ),
                    [
                        (
                            r.stored.seq,
                            r.stored.event.id,
                            r.stored.event.run_id,
                            r.stored.event.kind,
                            r.body,
                            r.stored.prev_hash,
                            r.stored.hash,
                            now,
                        )
                        for r in rows
                    ],
                )
        return results

    async def get(self, event_id: str) -> StoredEvent | None:
        """The stored event with this id, or None."""
        async with self._session() as conn:
            cur = await conn.execute(self._sql(_STORED + " WHERE id = %s"), (event_id,))
            row = await cur.fetchone()
        return None if row is None else _stored(row)

    async def events(
        self, run_id: str | None = None, *, kinds: Sequence[str] | None = None
    ) -> list[StoredEvent]:
        """Stored events in sequence order (see ``AuditStore.events``)."""
        kind_list = check_kinds(kinds)
        # Only the filters given, so the planner can use the (run_id, seq) index.
        where: list[str] = []
        params: list[str | list[str]] = []
        if run_id is not None:
            where.append("run_id = %s")
            params.append(run_id)
        if kind_list is not None:
            where.append("kind = ANY(%s)")
            params.append(kind_list)
        query = _STORED + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY seq"
        async with self._session() as conn:
            cur = await conn.execute(self._sql(query), params)
            rows = await cur.fetchall()
        return [_stored(row) for row in rows]

    async def verify(self) -> ChainVerdict:
        """Recompute the whole chain and report the first problem, if any."""
        walker = ChainWalker()
        after = 0
        while True:
            # Page by seq rather than hold one snapshot: appends only add rows after the
            # ones already read, so the pages still form one consistent prefix.
            async with self._session() as conn:
                cur = await conn.execute(
                    self._sql(
                        "SELECT seq, id, run_id, kind, body, prev_hash, hash"
                        " FROM {schema}.audit_events WHERE seq > %s ORDER BY seq LIMIT %s"
                    ),
                    (after, _VERIFY_PAGE),
                )
                rows = await cur.fetchall()
            for row in rows:
                failed = walker.check(ChainRow(*row))
                if failed is not None:
                    return failed
                after = int(row[0])
            if len(rows) < _VERIFY_PAGE:
                return walker.verdict()

    async def close(self) -> None:
        """Close the connection; calling it again does nothing."""
        async with self._guard:
            self._closed = True
            if self._conn is not None:
                await self._conn.close()
                self._conn = None

    def _sql(self, template: str) -> sql.Composed:
        return sql.SQL(template).format(schema=sql.Identifier(self._schema))

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        async with self._guard:
            if self._closed:
                raise RuntimeError(f"audit store (PostgreSQL schema {self._schema}) is closed")
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = await self._connect()
            conn = self._conn
            try:
                yield conn
            except BaseException:
                # A failed or cancelled call may leave the connection mid-transaction or
                # mid-query; the next call starts on a fresh one instead.
                self._conn = None
                await conn.close()
                raise

    async def _connect(self) -> psycopg.AsyncConnection[TupleRow]:
        conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        try:
            await self._create_if_missing(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _create_if_missing(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        if await self._table_exists(conn):
            return
        async with conn.transaction():
            # Hosts starting together would race on the catalogs: the append lock orders
            # them, and the later ones find the table made.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            if await self._table_exists(conn):
                return
            for statement in _DDL:
                await conn.execute(self._sql(statement))

    async def _table_exists(self, conn: psycopg.AsyncConnection[TupleRow]) -> bool:
        cur = await conn.execute("SELECT to_regclass(%s)", (f"{self._schema}.audit_events",))
        found = await cur.fetchone()
        return found is not None and found[0] is not None


def _stored(row: TupleRow) -> StoredEvent:
    seq, body, prev_hash, digest, recorded_at = row
    assert isinstance(recorded_at, datetime)
    return stored_event(int(seq), str(body), str(prev_hash), str(digest), recorded_at)
