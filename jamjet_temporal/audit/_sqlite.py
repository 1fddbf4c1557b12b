"""The SQLite audit store: the default, one file shared by the worker processes of one host."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

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

__all__ = ["SQLiteAuditStore"]

_T = TypeVar("_T")

# Appends from other processes wait for the file's write lock at most this long.
_BUSY_TIMEOUT_S = 30.0

# Ids looked up per query (SQLite allows 32766 parameters since 3.32, 999 before).
_IDS_PER_QUERY = 500

# RAISE(ABORT) in triggers makes the database itself refuse edits, whoever connects. The
# INSERT triggers close INSERT OR REPLACE, whose implicit delete fires no DELETE trigger.
# Whoever can write the file can also drop the triggers: the signed checkpoints are what
# shows a rewrite then. The store's random id, made once, binds checkpoints to this file.
_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS audit_events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    recorded_at TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS audit_events_run_id ON audit_events (run_id, seq);
CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_events_no_replace BEFORE INSERT ON audit_events
WHEN EXISTS (SELECT 1 FROM audit_events WHERE seq = NEW.seq OR id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: replacing an event refused'); END;
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    seq INTEGER PRIMARY KEY,
    store_id TEXT NOT NULL,
    head TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    signer TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL
) STRICT;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_replace BEFORE INSERT ON audit_checkpoints
WHEN EXISTS (SELECT 1 FROM audit_checkpoints WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: replacing refused'); END;
CREATE TABLE IF NOT EXISTS audit_store_id (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    store_id TEXT NOT NULL
) STRICT;
INSERT INTO audit_store_id (one, store_id)
SELECT 1, lower(hex(randomblob(16))) WHERE NOT EXISTS (SELECT 1 FROM audit_store_id);
CREATE TRIGGER IF NOT EXISTS audit_store_id_no_update BEFORE UPDATE ON audit_store_id
BEGIN SELECT RAISE(ABORT, 'audit_store_id is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_store_id_no_delete BEFORE DELETE ON audit_store_id
BEGIN SELECT RAISE(ABORT, 'audit_store_id is append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_store_id_no_replace BEFORE INSERT ON audit_store_id
WHEN EXISTS (SELECT 1 FROM audit_store_id)
BEGIN SELECT RAISE(ABORT, 'audit_store_id is append-only: replacing refused'); END;
COMMIT;
"""

_STORED = "SELECT seq, body, prev_hash, hash, recorded_at FROM audit_events"
_CHAIN = "SELECT seq, id, run_id, kind, body, prev_hash, hash FROM audit_events ORDER BY seq"
_CHECKPOINTS = (
    "SELECT seq, store_id, head, signed_at, signer, public_key, signature"
    " FROM audit_checkpoints ORDER BY seq"
)
_Row = tuple[int, str, str, str, str]


class SQLiteAuditStore:
    """An audit store in one SQLite file.

    Several worker processes on one host may share the file: appends take SQLite's write lock
    (``BEGIN IMMEDIATE``) and wait up to 30 s for it. For workers on several hosts use
    ``PostgresAuditStore``; SQLite's locking is not safe over network file systems.

    The file is in WAL mode with ``synchronous=FULL``: every commit is fsynced, so an event is
    on disk when ``append`` returns and survives a power loss, not only a killed process (with
    ``NORMAL`` the last commits can be lost in a power loss, after the governed effect may
    already have happened). The cost is one fsync per transaction, and appends share them:
    the appends that arrive while a transaction commits are written together in the next one
    (each batch still atomic, chained in call order), and under load that transaction waits
    up to ``gather_s`` for more, so many concurrent appenders cost one fsync per group rather
    than one each. A lone append is committed at once.

    Calls run on one thread of the store's own, in order; the connection opens on first use.

    Args:
        path: The database file; created, with its parent folders, if missing.
        signer: Signs checkpoints of the chain's head as events are appended (see
            ``AuditStore``); None: this store appends without signing.
        gather_s: Under load, how long the next transaction waits for more appends
            (``GATHER_S``); 0: never waits.

    Raises:
        ConfigError: ``path`` is empty or names an in-memory database.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        signer: CheckpointSigner | None = None,
        gather_s: float = GATHER_S,
    ) -> None:
        text = str(path)
        if text in ("", ":memory:"):
            raise ConfigError(
                f"audit store path {text!r} is not a plain file path; an audit store must "
                "outlive the process (fix: give a file path such as 'jamjet-audit.db')"
            )
        self._path = Path(path)
        self._signer = signer
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jamjet-audit")
        self._conn: sqlite3.Connection | None = None
        # Appends waiting for the next transaction, whether one is queued on the store's
        # thread to write them (``_draining``), and ``_closed``: guarded by ``_lock``, as
        # callers may run on several event loops.
        self._lock = threading.Lock()
        self._more = threading.Condition(self._lock)  # the queue grew to ``GATHER_MAX``
        self._queue: list[PendingAppend] = []
        self._draining = False
        self._gather_s = gather_s
        self._gathering = False  # appends arrived during the last commit: wait for more
        self._closed = False
        self._commits = 0  # append transactions committed (tests, benchmarks)

    async def append(
        self, events: Sequence[AuditEvent], *, checkpoint: bool = False
    ) -> list[StoredEvent]:
        """Store events atomically, each id at most once (see ``AuditStore.append``)."""
        if checkpoint and self._signer is None:
            raise ValueError("checkpoint=True needs a store opened with a signer")
        if not events:
            return []
        future: asyncio.Future[list[StoredEvent]] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"audit store {self._path} is closed")
            self._queue.append(PendingAppend(list(events), checkpoint, future))
            if len(self._queue) >= GATHER_MAX:
                self._more.notify()
            if not self._draining:
                # Idle: commit at once. Otherwise the running drain takes this batch along
                # in the transaction after the one it is committing.
                self._draining = True
                self._executor.submit(self._drain)
        return await future

    async def get(self, event_id: str) -> StoredEvent | None:
        """The stored event with this id, or None."""

        def read(conn: sqlite3.Connection) -> StoredEvent | None:
            row: _Row | None = conn.execute(f"{_STORED} WHERE id = ?", (event_id,)).fetchone()
            return None if row is None else _stored(row)

        return await self._run(read)

    async def events(
        self, run_id: str | None = None, *, kinds: Sequence[str] | None = None
    ) -> list[StoredEvent]:
        """Stored events in sequence order (see ``AuditStore.events``)."""
        kind_list = check_kinds(kinds)
        where: list[str] = []
        params: list[str] = []
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if kind_list is not None:
            where.append(f"kind IN ({', '.join('?' * len(kind_list))})" if kind_list else "0")
            params.extend(kind_list)
        query = _STORED + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY seq"

        def read(conn: sqlite3.Connection) -> list[StoredEvent]:
            return [_stored(row) for row in conn.execute(query, params)]

        return await self._run(read)

    async def verify(
        self, *, trusted_keys: Collection[str] = (), marks: Path | None = None
    ) -> ChainVerdict:
        """Recompute the chain and check every checkpoint (see ``AuditStore.verify``)."""
        trusted = frozenset(trusted_keys)

        def walk(conn: sqlite3.Connection) -> ChainVerdict:
            # Marks before the snapshot: each is recorded once its checkpoint committed, so
            # the snapshot shows every one of them.
            signed = {} if marks is None else read_marks(marks)
            # One read transaction: checkpoints and events from one snapshot, even while
            # other processes append.
            conn.execute("BEGIN")
            try:
                store_id = _store_id(conn)
                checkpoints = CheckpointCheck(
                    [_checkpoint(row) for row in conn.execute(_CHECKPOINTS)],
                    store_id=store_id,
                    trusted=trusted,
                    marks=signed.get(store_id),
                )
                walker = ChainWalker(checkpoints)
                rows = conn.execute(_CHAIN)
                try:
                    for row in rows:
                        failed = walker.check(ChainRow(*row))
                        if failed is not None:
                            return failed
                finally:
                    rows.close()
                return walker.verdict()
            finally:
                conn.execute("COMMIT")

        return await self._run(walk)

    async def close(self) -> None:
        """Close the connection and the store's thread; calling it again does nothing.

        Appends already waiting are committed first, and their callers answered.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._more.notify()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._shut)
        self._executor.shutdown(wait=False)

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._closed:
            raise RuntimeError(f"audit store {self._path} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._on_thread, work)

    def _on_thread(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return work(self._connection())

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _connect(self._path)
        return self._conn

    def _drain(self) -> None:
        """On the store's thread: commit what is queued, then come back if more arrived.

        One group per turn, so that reads queued meanwhile are not starved. Under load (appends
        arrived while the last group committed) the group first waits up to ``gather_s`` for
        more, or until ``GATHER_MAX`` are queued.
        """
        try:
            with self._lock:
                if self._gathering and self._gather_s > 0:
                    self._more.wait_for(
                        lambda: len(self._queue) >= GATHER_MAX or self._closed, self._gather_s
                    )
            self._commit_queued()
        finally:
            with self._lock:
                if self._queue and not self._closed:
                    self._executor.submit(self._drain)
                else:
                    # Closed: ``_shut``, queued after this, commits what is left.
                    self._draining = False

    def _shut(self) -> None:
        """On the store's thread, last: commit the appends still queued, then disconnect."""
        self._commit_queued()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _commit_queued(self) -> None:
        """On the store's thread: commit every queued append as one group, answer each."""
        with self._lock:
            queued, self._queue = self._queue, []
        # A caller cancelled before its group started has nothing to wait for: skip it.
        group = [pending for pending in queued if not pending.future.done()]
        if not group:
            return
        try:
            outcomes = self._commit(group)
        except BaseException as exc:
            # Not an append's own failure (those are outcomes): every caller hears of it.
            _deliver(group, [exc] * len(group))
            raise
        with self._lock:
            # Load: more appends arrived while the group committed (looked at before the
            # callers hear back: one answered and appending again is no sign of load).
            self._gathering = bool(self._queue)
        _deliver(group, outcomes)

    def _commit(self, group: list[PendingAppend]) -> list[Outcome]:
        """Write a group in one transaction; if it fails, each batch in its own."""
        try:
            return self._transaction(group)
        except Exception as exc:
            # Locked by another process for the whole busy timeout, disk full, I/O error:
            # the file's trouble, not a batch's, and trying each again would wait again.
            if len(group) == 1 or isinstance(exc, sqlite3.OperationalError):
                return [exc] * len(group)
        outcomes: list[Outcome] = []
        for pending in group:
            try:
                outcomes += self._transaction([pending])
            except Exception as exc:
                outcomes.append(exc)
                if isinstance(exc, sqlite3.OperationalError):
                    outcomes += [exc] * (len(group) - len(outcomes))
                    break
        return outcomes

    def _transaction(self, group: list[PendingAppend]) -> list[Outcome]:
        """One transaction for the group (raises when it failed: nothing was written)."""
        outcomes = _append_group(self._connection(), group, self._signer)
        self._commits += 1
        return outcomes


def _deliver(group: list[PendingAppend], outcomes: list[Outcome]) -> None:
    """From the store's thread: settle each caller's future on its own event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[PendingAppend, Outcome]]] = {}
    for pending, outcome in zip(group, outcomes, strict=True):
        by_loop.setdefault(pending.future.get_loop(), []).append((pending, outcome))
    for loop, settled in by_loop.items():
        # A loop closed meanwhile has no caller left to answer.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, settled)


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: the module opens no transactions of its own; we say BEGIN.
    conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        _use_wal(conn)
        conn.execute("PRAGMA synchronous = FULL")
        conn.executescript(_SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    # Switching a new file to WAL needs an exclusive lock and SQLite does not wait for it:
    # processes opening the file together get "database is locked" at once. Retry; once one
    # of them has switched (the mode is kept in the file) the statement succeeds at once.
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _store_id(conn: sqlite3.Connection) -> str:
    row: tuple[str] | None = conn.execute("SELECT store_id FROM audit_store_id").fetchone()
    return "(none: its id row was removed)" if row is None else row[0]


def _append_group(
    conn: sqlite3.Connection, group: Sequence[PendingAppend], signer: CheckpointSigner | None
) -> list[Outcome]:
    """Append the group's batches, in order, in one transaction (one fsync).

    Returns:
        Each batch's outcome (see ``GroupPlan.outcomes``).

    Raises:
        Exception: The transaction failed and was rolled back: nothing was written.
    """
    # IMMEDIATE takes the write lock before reading the head, so no other process can chain
    # onto the same head between our read and our insert.
    conn.execute("BEGIN IMMEDIATE")
    try:
        existing = _existing(conn, list(dict.fromkeys(e.id for p in group for e in p.events)))
        head: tuple[int, str] | None = conn.execute(
            "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        last = None
        if signer is not None:
            newest: tuple[int, str] | None = conn.execute(
                "SELECT seq, signed_at FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            last = None if newest is None else (newest[0], datetime.fromisoformat(newest[1]))
        now = datetime.now(UTC)
        plan = chain_group(
            [(p.events, p.checkpoint) for p in group],
            existing,
            head,
            now,
            signer=signer,
            last_checkpoint=last,
        )
        signed: list[Checkpoint] = []
        if plan.heads:
            assert signer is not None
            store_id = _store_id(conn)
            # Before the new events go in: the rows read are the chain the checkpoints extend.
            _check_mark(conn, signer, store_id, 0 if head is None else head[0])
            signed = [signer.sign(store_id, h.seq, h.hash, now) for _, h in plan.heads]
        conn.executemany(
            "INSERT INTO audit_events (seq, id, run_id, kind, body, prev_hash, hash, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.stored.seq,
                    r.stored.event.id,
                    r.stored.event.run_id,
                    r.stored.event.kind,
                    r.body,
                    r.stored.prev_hash,
                    r.stored.hash,
                    now.isoformat(),
                )
                for r in plan.rows
            ],
        )
        conn.executemany(
            "INSERT INTO audit_checkpoints"
            " (seq, store_id, head, signed_at, signer, public_key, signature)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    c.seq,
                    c.store_id,
                    c.head,
                    c.signed_at.isoformat(),
                    c.signer,
                    c.public_key,
                    c.signature,
                )
                for c in signed
            ],
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if not signed:
        return plan.outcomes()
    assert signer is not None
    try:
        # Committed now: the newest checkpoint becomes the mark (it supersedes the others).
        signer.signed(signed[-1])
    except Exception as exc:
        return plan.outcomes(exc)
    return plan.outcomes()


def _existing(conn: sqlite3.Connection, ids: list[str]) -> dict[str, StoredEvent]:
    """The stored events among ``ids``, by id."""
    found: dict[str, StoredEvent] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        query = f"{_STORED} WHERE id IN ({', '.join('?' * len(chunk))})"
        for row in conn.execute(query, chunk):
            stored = _stored(row)
            found[stored.event.id] = stored
    return found


def _check_mark(
    conn: sqlite3.Connection, signer: CheckpointSigner, store_id: str, last_seq: int
) -> None:
    """Refuse to sign unless the store holds the head the signer's key last signed here.

    Call it under the write lock, before inserting the new events (``AuditTamperedError``
    when the store contradicts the mark).
    """
    mark = signer.mark(store_id)
    if mark is None:
        return
    found: tuple[str | None, str | None, str | None] = conn.execute(
        "SELECT (SELECT hash FROM audit_events WHERE seq = ?1),"
        " (SELECT head FROM audit_checkpoints WHERE seq = ?1),"
        " (SELECT signer FROM audit_checkpoints WHERE seq = ?1)",
        (mark.seq,),
    ).fetchone()
    event, signed_head, by = found
    checkpoint = None if signed_head is None or by is None else (signed_head, by)
    signer.check(store_id, mark, event=event, checkpoint=checkpoint, last_seq=last_seq)


def _checkpoint(row: tuple[int, str, str, str, str, str, str]) -> Checkpoint:
    seq, store_id, head, signed_at, signer, public_key, signature = row
    try:
        when = datetime.fromisoformat(signed_at).astimezone(UTC)
    except ValueError:
        # Not what a signer wrote: the signature check reports the checkpoint as forged.
        when = datetime.min.replace(tzinfo=UTC)
    return Checkpoint(seq, store_id, head, when, signer, public_key, signature)


def _stored(row: _Row) -> StoredEvent:
    seq, body, prev_hash, digest, recorded_at = row
    return stored_event(seq, body, prev_hash, digest, datetime.fromisoformat(recorded_at))
