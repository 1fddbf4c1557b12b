"""The PostgreSQL audit store: one chain shared by workers on several hosts.

Two roles: an admin creates the schema once (``PostgresAuditStore.init_db``, or ``jamjet
audit init-db``) and owns it; workers connect as a role that may only read and append. A
table's owner or a superuser could disable the append-only trigger, rewrite events and
re-chain them, so the store refuses to run as either.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from jamjet_temporal._shared._extras import missing_extra
from jamjet_temporal._shared._pgtarget import check_target, lock_key
from jamjet_temporal._shared._storeurl import pg_conninfo
from jamjet_temporal.audit._chain import ChainRow, ChainVerdict, ChainWalker
from jamjet_temporal.audit._checkpoint import (
    Checkpoint,
    CheckpointCheck,
    CheckpointSigner,
    read_marks,
)
from jamjet_temporal.audit._store import (
    GATHER_MAX,
    GATHER_S,
    Outcome,
    PendingAppend,
    chain_group,
    check_kinds,
    settle,
    stored_event,
)
from jamjet_temporal.audit._types import AuditEvent, StoredEvent
from jamjet_temporal.errors import ConfigError

try:
    import psycopg
    from psycopg import sql
    from psycopg.rows import TupleRow
except ImportError as _missing:  # the extra is not installed
    raise missing_extra("postgres", _missing) from _missing

__all__ = ["PostgresAuditStore"]

_VERIFY_PAGE = 1000

_TABLES = ("audit_events", "audit_checkpoints", "audit_store_id")
# The name predates the checkpoints; kept so that init-db takes over older schemas in place.
_REFUSE = "audit_events_refuse"

_DDL = (
    "CREATE SCHEMA IF NOT EXISTS {schema}",
    # Stores made before the two roles belong to the worker: the admin takes them over.
    "ALTER SCHEMA {schema} OWNER TO CURRENT_USER",
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
    """CREATE TABLE IF NOT EXISTS {schema}.audit_checkpoints (
        seq bigint PRIMARY KEY CHECK (seq > 0),
        store_id text NOT NULL,
        head text NOT NULL,
        signed_at timestamptz NOT NULL,
        signer text NOT NULL,
        public_key text NOT NULL,
        signature text NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {schema}.audit_store_id (
        one int PRIMARY KEY CHECK (one = 1),
        store_id text NOT NULL
    )""",
    """INSERT INTO {schema}.audit_store_id (one, store_id)
    VALUES (1, replace(gen_random_uuid()::text, '-', '')) ON CONFLICT (one) DO NOTHING""",
    *(f"ALTER TABLE {{schema}}.{table} OWNER TO CURRENT_USER" for table in _TABLES),
)

_REFUSE_DDL = f"""CREATE OR REPLACE FUNCTION {{schema}}.{_REFUSE}() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
    END
    $$"""

_TRIGGER_DDL = """CREATE OR REPLACE TRIGGER {trigger}
    BEFORE UPDATE OR DELETE OR TRUNCATE ON {schema}.{table}
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{function}()"""

_GRANTS = (
    "REVOKE ALL ON SCHEMA {schema} FROM PUBLIC, {worker}",
    "REVOKE ALL ON {schema}.audit_events, {schema}.audit_checkpoints, {schema}.audit_store_id"
    " FROM PUBLIC, {worker}",
    "GRANT USAGE ON SCHEMA {schema} TO {worker}",
    "GRANT SELECT, INSERT ON {schema}.audit_events, {schema}.audit_checkpoints TO {worker}",
    "GRANT SELECT ON {schema}.audit_store_id TO {worker}",
)

# Every object whose owner (or a member of the owner's role) could undo the append-only
# guarantee: the schema (drop and recreate the tables), the tables (disable the trigger), the
# trigger function (replace its body).
_OWNERS = """
SELECT o.what, pg_get_userbyid(o.owner), pg_has_role(current_user, o.owner, 'MEMBER')
FROM (
    SELECT 'schema ' || n.nspname AS what, n.nspowner AS owner
    FROM pg_namespace n WHERE n.nspname = %(schema)s
    UNION ALL
    SELECT 'table ' || n.nspname || '.' || c.relname, c.relowner
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s) AND c.relkind = 'r'
    UNION ALL
    SELECT 'function ' || n.nspname || '.' || p.proname || '()', p.proowner
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = %(schema)s AND p.proname = %(function)s
) AS o
"""

_STORED = "SELECT seq, body, prev_hash, hash, recorded_at FROM {schema}.audit_events"


def _fix(schema: str) -> str:
    return (
        "fix: connect workers as a role that may only read and append; an admin sets the "
        f"schema up once with `jamjet audit init-db --dsn ADMIN_DSN --schema {schema} "
        "--worker-role jamjet_worker` and workers use "
        f"postgresql://jamjet_worker@HOST/DB?schema={schema}"
    )


class PostgresAuditStore:
    """An audit store in a PostgreSQL schema, for workers on several hosts.

    Appends serialize on a transaction-scoped advisory lock (``pg_advisory_xact_lock``, one
    key per schema), so each reads the chain's head and extends it with nothing in between,
    from any number of hosts; an event is committed when ``append`` returns. The appends that
    arrive while a transaction commits are written together in the next one (one lock, one
    read of the stored ids and the head, one insert of all rows, one commit), each batch still
    atomic and chained in call order (under load that transaction waits up to ``gather_s``
    for more); a lone append is committed at once.

    The schema, its tables (``audit_events``, ``audit_checkpoints``, ``audit_store_id``)
    and their append-only triggers (refusing UPDATE, DELETE and TRUNCATE) are made once by
    an admin with ``init_db`` and belong to the admin. The store connects as a role that has
    only ``USAGE`` on the schema and ``SELECT, INSERT`` on the tables, and refuses to run as
    a superuser or as (a member of) the owner of the schema, a table or the trigger function:
    those could disable the triggers and rewrite history.

    One connection per store, opened on first use and opened again after it breaks; the
    store's calls take turns on it.

    Args:
        dsn: A libpq connection string or ``postgresql://`` URL.
        schema: The schema holding the tables: a plain lowercase identifier.
        signer: Signs checkpoints of the chain's head as events are appended (see
            ``AuditStore``); None: this store appends without signing.
        gather_s: Under load, how long the next transaction waits for more appends
            (``GATHER_S``); 0: never waits.

    Raises:
        ConfigError: ``dsn`` is not a connection string, or ``schema`` not an identifier.
            On first use: the schema is not set up, or the role may alter its tables.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "jamjet",
        signer: CheckpointSigner | None = None,
        gather_s: float = GATHER_S,
    ) -> None:
        check_target(dsn, schema, what="audit store")
        self._dsn = dsn
        self._schema = schema
        self._signer = signer
        self._lock_key = lock_key(f"jamjet.audit:{schema}")
        self._guard = asyncio.Lock()
        self._conn: psycopg.AsyncConnection[TupleRow] | None = None
        self._store_id = ""
        # Appends waiting for the next transaction, and the task writing them (None: idle).
        self._queue: list[PendingAppend] = []
        self._committer: asyncio.Task[None] | None = None
        self._gather_s = gather_s
        # Set while the committer gathers a group: resolved when ``GATHER_MAX`` are queued.
        self._full: asyncio.Future[None] | None = None
        self._closing = False  # refuses new appends; the committer finishes the queued ones
        self._closed = False
        self._commits = 0  # append transactions committed (tests, benchmarks)

    @staticmethod
    async def init_db(admin_dsn: str, *, schema: str = "jamjet", worker_role: str) -> str:
        """Set up (or take over) the store's schema as an admin, for a worker role.

        Creates the schema, tables, trigger function and triggers if missing, makes the
        connecting admin role their owner (stores made by older versions belong to the
        worker), and leaves ``worker_role`` only ``USAGE`` on the schema, ``SELECT, INSERT``
        on ``audit_events`` and ``audit_checkpoints`` and ``SELECT`` on ``audit_store_id``.
        Running it again changes nothing.

        Args:
            admin_dsn: Connection string of the admin role (it must be allowed to create the
                schema, e.g. the database owner).
            schema: The schema: a plain lowercase identifier.
            worker_role: The role workers connect as; it must exist (``CREATE ROLE ...
                LOGIN``) and be neither a superuser nor a member of the admin role.

        Returns:
            The store's id, as its checkpoints name it.

        Raises:
            ConfigError: A bad DSN or schema, a worker role that is missing or too powerful,
                or the database refused the setup (the message says why).
        """
        check_target(admin_dsn, schema, what="audit store")
        names = {"schema": sql.Identifier(schema), "worker": sql.Identifier(worker_role)}
        try:
            async with await psycopg.AsyncConnection.connect(admin_dsn) as conn:
                cur = await conn.execute(
                    "SELECT r.rolsuper, r.rolcreaterole, pg_has_role(r.oid, current_user,"
                    " 'MEMBER'), current_user FROM pg_roles r WHERE r.rolname = %s",
                    (worker_role,),
                )
                found = await cur.fetchone()
                if found is None:
                    raise ConfigError(
                        f"audit store init-db: worker role {worker_role!r} does not exist "
                        f"(fix: CREATE ROLE {worker_role} LOGIN PASSWORD '...', then run this "
                        "again)"
                    )
                superuser, createrole, member, admin = found
                power = _too_powerful(superuser, createrole, conn.info.server_version)
                if power is None and member:
                    power = f"is a member of the admin role {admin}"
                if power is not None:
                    raise ConfigError(
                        f"audit store init-db: worker role {worker_role!r} {power}, so it "
                        "could disable the append-only triggers (fix: give workers a plain "
                        "LOGIN role of their own)"
                    )
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(%s)", (lock_key(f"jamjet.audit:{schema}"),)
                )
                for statement in _DDL:
                    await conn.execute(sql.SQL(statement).format(**names))
                cur = await conn.execute("SELECT to_regprocedure(%s)", (f"{schema}.{_REFUSE}()",))
                existing = await cur.fetchone()
                if existing is not None and existing[0] is not None:
                    take_over = "ALTER FUNCTION {schema}.{function}() OWNER TO CURRENT_USER"
                    await conn.execute(
                        sql.SQL(take_over).format(function=sql.Identifier(_REFUSE), **names)
                    )
                await conn.execute(sql.SQL(_REFUSE_DDL).format(**names))
                for table in _TABLES:
                    await conn.execute(
                        sql.SQL(_TRIGGER_DDL).format(
                            trigger=sql.Identifier(f"{table}_append_only"),
                            table=sql.Identifier(table),
                            function=sql.Identifier(_REFUSE),
                            **names,
                        )
                    )
                for statement in _GRANTS:
                    await conn.execute(sql.SQL(statement).format(**names))
                cur = await conn.execute(
                    sql.SQL("SELECT store_id FROM {schema}.audit_store_id").format(**names)
                )
                row = await cur.fetchone()
        except psycopg.Error as exc:
            raise ConfigError(
                f"audit store init-db on schema {schema}: the database refused: "
                f"{str(exc).strip()} (fix: connect as a role that may create the schema, e.g. "
                "the database owner or a superuser)"
            ) from None
        assert row is not None
        return str(row[0])

    async def append(
        self, events: Sequence[AuditEvent], *, checkpoint: bool = False
    ) -> list[StoredEvent]:
        """Store events atomically, each id at most once (see ``AuditStore.append``)."""
        if checkpoint and self._signer is None:
            raise ValueError("checkpoint=True needs a store opened with a signer")
        if not events:
            return []
        if self._closing:
            raise RuntimeError(self._closed_message())
        future: asyncio.Future[list[StoredEvent]] = asyncio.get_running_loop().create_future()
        self._queue.append(PendingAppend(list(events), checkpoint, future))
        if len(self._queue) >= GATHER_MAX and self._full is not None and not self._full.done():
            self._full.set_result(None)
        if self._committer is None:
            # Idle: commit at once. Otherwise the committer takes this batch along in the
            # transaction after the one it is committing.
            self._committer = asyncio.create_task(self._commit_queued())
        return await future

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

    async def verify(
        self, *, trusted_keys: Collection[str] = (), marks: Path | None = None
    ) -> ChainVerdict:
        """Recompute the chain and check every checkpoint (see ``AuditStore.verify``)."""
        # Marks, then checkpoints, then events: a mark is recorded once its checkpoint is
        # committed, and a checkpoint is committed with the events it covers, so nothing read
        # is newer than what is read after it.
        signed = {} if marks is None else await asyncio.to_thread(read_marks, marks)
        async with self._session() as conn:
            cur = await conn.execute(
                self._sql(
                    "SELECT seq, store_id, head, signed_at, signer, public_key, signature"
                    " FROM {schema}.audit_checkpoints ORDER BY seq"
                )
            )
            checkpoints = [
                Checkpoint(int(seq), str(sid), str(head), at.astimezone(UTC), *rest)
                for seq, sid, head, at, *rest in await cur.fetchall()
            ]
            store_id = await self._read_store_id(conn)
        walker = ChainWalker(
            CheckpointCheck(
                checkpoints,
                store_id=store_id,
                trusted=frozenset(trusted_keys),
                marks=signed.get(store_id),
            )
        )
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
        """Close the connection; calling it again does nothing.

        Appends already waiting are committed first, and their callers answered.
        """
        self._closing = True
        if self._full is not None and not self._full.done():
            self._full.set_result(None)
        if self._committer is not None:
            await asyncio.wait([self._committer])
        async with self._guard:
            self._closed = True
            if self._conn is not None:
                await self._conn.close()
                self._conn = None

    async def _commit_queued(self) -> None:
        """The committer: write what is queued, group by group, until nothing is left.

        The first group goes at once; the ones after it (appends arrived while a group
        committed: the store is under load) first wait up to ``gather_s`` for more, or until
        ``GATHER_MAX`` are queued.
        """
        group: list[PendingAppend] = []
        gather = False
        try:
            while self._queue:
                if gather and self._gather_s > 0 and not self._closing:
                    await self._gather()
                gather = True
                # A caller cancelled before its group started has nothing to wait for.
                group = [pending for pending in self._queue if not pending.future.done()]
                self._queue = []
                if group:
                    settle(zip(group, await self._commit(group), strict=True))
                group = []
        except BaseException as exc:
            # Cancelled (the event loop is closing) or a bug: no caller may wait forever.
            stranded = RuntimeError(
                "audit append interrupted before its transaction was known to commit: the "
                "batch may or may not be stored (appending it again stores it at most once)"
            )
            stranded.__cause__ = exc
            settle((pending, stranded) for pending in [*group, *self._queue])
            self._queue = []
            raise
        finally:
            self._committer = None

    async def _gather(self) -> None:
        if len(self._queue) >= GATHER_MAX:
            return
        self._full = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait([self._full], timeout=self._gather_s)
        finally:
            self._full.cancel()
            self._full = None

    async def _commit(self, group: list[PendingAppend]) -> list[Outcome]:
        """Write a group in one transaction; if it fails, each batch in its own."""
        try:
            return await self._write(group)
        except Exception as exc:
            if len(group) == 1:
                return [exc]
        # One batch may be at fault (the database refused a row, or a checkpoint is due over
        # a chain that contradicts the signer's mark): on its own, only its caller hears of
        # it. A lost connection or commit of unknown outcome is safe to retry too: ids
        # already stored are returned as stored.
        outcomes: list[Outcome] = []
        for pending in group:
            try:
                outcomes += await self._write([pending])
            except Exception as exc:
                outcomes.append(exc)
                if isinstance(exc, psycopg.OperationalError):
                    # Even a fresh connection failed: the server's trouble, not a batch's.
                    outcomes += [exc] * (len(group) - len(outcomes))
                    break
        return outcomes

    async def _write(self, group: list[PendingAppend]) -> list[Outcome]:
        """Append the group's batches, in order, in one transaction.

        Returns:
            Each batch's outcome (see ``GroupPlan.outcomes``).

        Raises:
            Exception: The transaction failed: nothing was written (or, when the connection
                broke during the commit, perhaps all of it).
        """
        ids = list(dict.fromkeys(event.id for pending in group for event in pending.events))
        signer = self._signer
        signed: list[Checkpoint] = []
        # Pipeline mode: the lock and both reads go in one round trip, the inserts and the
        # commit in another (a round trip per statement is most of an append's CPU).
        async with self._session() as conn, conn.pipeline(), conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            # READ COMMITTED: each statement after the lock sees every earlier append.
            found = await conn.execute(self._sql(_STORED + " WHERE id = ANY(%s)"), (ids,))
            cur = await conn.execute(
                self._sql(
                    "SELECT clock_timestamp(), h.seq, h.hash, c.seq, c.signed_at"
                    " FROM (SELECT 1) AS one LEFT JOIN"
                    " (SELECT seq, hash FROM {schema}.audit_events ORDER BY seq DESC LIMIT 1)"
                    " AS h ON true LEFT JOIN"
                    " (SELECT seq, signed_at FROM {schema}.audit_checkpoints"
                    " ORDER BY seq DESC LIMIT 1) AS c ON true"
                )
            )
            existing = {stored.event.id: stored for stored in map(_stored, await found.fetchall())}
            row = await cur.fetchone()
            assert row is not None
            clock, head_seq, head_hash, checked_seq, checked_at = row
            now = clock.astimezone(UTC)
            head = None if head_seq is None else (int(head_seq), str(head_hash))
            plan = chain_group(
                [(pending.events, pending.checkpoint) for pending in group],
                existing,
                head,
                now,
                signer=signer,
                last_checkpoint=None if checked_seq is None else (int(checked_seq), checked_at),
            )
            if plan.heads:
                assert signer is not None
                # Before the new events go in: the rows read are the chain they extend.
                await self._check_mark(conn, signer, 0 if head is None else head[0])
                signed = [signer.sign(self._store_id, h.seq, h.hash, now) for _, h in plan.heads]
            async with conn.cursor() as insert:
                if plan.rows:
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
                            for r in plan.rows
                        ],
                    )
                if signed:
                    await insert.executemany(
                        self._sql(
                            "INSERT INTO {schema}.audit_checkpoints"
                            " (seq, store_id, head, signed_at, signer, public_key, signature)"
                            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                        ),
                        [tuple(checkpoint) for checkpoint in signed],
                    )
        self._commits += 1
        if not signed:
            return plan.outcomes()
        assert signer is not None
        try:
            # Committed now: the newest checkpoint becomes the mark (it supersedes the
            # others). The marks file is fsynced: off the event loop.
            await asyncio.to_thread(signer.signed, signed[-1])
        except Exception as exc:
            return plan.outcomes(exc)
        return plan.outcomes()

    def _closed_message(self) -> str:
        return f"audit store (PostgreSQL schema {self._schema}) is closed"

    async def _check_mark(
        self, conn: psycopg.AsyncConnection[TupleRow], signer: CheckpointSigner, last_seq: int
    ) -> None:
        """Refuse to sign unless the store holds the head the signer's key last signed here.

        Call it holding the append lock (``AuditTamperedError`` when it does not).
        """
        mark = await asyncio.to_thread(signer.mark, self._store_id)
        if mark is None:
            return
        cur = await conn.execute(
            self._sql(
                "SELECT (SELECT hash FROM {schema}.audit_events WHERE seq = %(seq)s),"
                " (SELECT head FROM {schema}.audit_checkpoints WHERE seq = %(seq)s),"
                " (SELECT signer FROM {schema}.audit_checkpoints WHERE seq = %(seq)s)"
            ),
            {"seq": mark.seq},
        )
        found = await cur.fetchone()
        assert found is not None
        event, head, by = found
        signer.check(
            self._store_id,
            mark,
            event=None if event is None else str(event),
            checkpoint=None if head is None else (str(head), str(by)),
            last_seq=last_seq,
        )

    def _sql(self, template: str) -> sql.Composed:
        return sql.SQL(template).format(schema=sql.Identifier(self._schema))

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        async with self._guard:
            if self._closed:
                raise RuntimeError(self._closed_message())
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
        conn = await psycopg.AsyncConnection.connect(pg_conninfo(self._dsn), autocommit=True)
        try:
            await self._refuse_unsafe_role(conn)
            self._store_id = await self._read_store_id(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _refuse_unsafe_role(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        # SET session_replication_role = replica skips triggers too; from PostgreSQL 15 on it
        # can be granted to roles that are not superusers.
        version = conn.info.server_version
        replica = (
            "has_parameter_privilege('session_replication_role', 'SET')"
            if version >= 150000
            else "false"
        )
        cur = await conn.execute(
            f"SELECT current_user, rolsuper, rolcreaterole, {replica}"
            " FROM pg_roles WHERE rolname = current_user"
        )
        found = await cur.fetchone()
        assert found is not None
        user, superuser, createrole, sets_replica = found
        power = _too_powerful(superuser, createrole, version)
        if power is None and sets_replica:
            power = "may SET session_replication_role (which skips triggers)"
        if power is not None:
            raise ConfigError(
                f"audit store: PostgreSQL role {user} {power}, so it could disable the audit "
                f"tables' append-only triggers and rewrite history ({_fix(self._schema)})"
            )
        cur = await conn.execute(
            _OWNERS, {"schema": self._schema, "tables": list(_TABLES), "function": _REFUSE}
        )
        owners = await cur.fetchall()
        for what, owner, acts_as_owner in owners:
            if acts_as_owner:
                how = "owns" if owner == user else f"may act as {owner}, the owner of"
                raise ConfigError(
                    f"audit store: PostgreSQL role {user} {how} {what}, so it could disable "
                    f"the append-only triggers and rewrite history ({_fix(self._schema)})"
                )
        found_names = {str(what).split(" ", 1)[1] for what, _, _ in owners}
        wanted = [
            f"table {self._schema}.{table}"
            for table in _TABLES
            if f"{self._schema}.{table}" not in found_names
        ]
        if f"{self._schema}.{_REFUSE}()" not in found_names:
            wanted.append(f"function {self._schema}.{_REFUSE}()")
        if wanted:
            raise ConfigError(
                f"audit store: schema {self._schema} is not set up (missing {', '.join(wanted)})"
                f"; an admin sets it up once ({_fix(self._schema)})"
            )

    async def _read_store_id(self, conn: psycopg.AsyncConnection[TupleRow]) -> str:
        cur = await conn.execute(self._sql("SELECT store_id FROM {schema}.audit_store_id"))
        row = await cur.fetchone()
        return "(none: its id row was removed)" if row is None else str(row[0])


def _too_powerful(superuser: bool, createrole: bool, server_version: int) -> str | None:
    """What lets a role disable any table's triggers, whoever owns the table."""
    if superuser:
        return "is a superuser"
    if createrole and server_version < 160000:
        return "has CREATEROLE (before PostgreSQL 16 that lets it join the owner's role)"
    return None


def _stored(row: TupleRow) -> StoredEvent:
    seq, body, prev_hash, digest, recorded_at = row
    assert isinstance(recorded_at, datetime)
    return stored_event(int(seq), str(body), str(prev_hash), str(digest), recorded_at)
