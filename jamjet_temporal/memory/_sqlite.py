"""The SQLite memory backend: the default, one file, FTS5 as the term index."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jamjet_temporal.errors import ConfigError
from jamjet_temporal.memory._store import (
    META_TABLE,
    TABLES,
    IndexHit,
    Row,
    SQLMemory,
    Tx,
    index_hits,
    stamp_schema,
)

__all__ = ["SQLiteMemory"]

_BUSY_TIMEOUT_S = 30.0

# The index holds analysed terms (space-separated) under the scope's key; ``unicode61`` splits
# them back exactly. A match is ``scope : "<key>" AND ("t1" OR "t2" ...)``: FTS5 intersects
# the scope's posting list with the terms', so other users' rows are never read.
_FTS = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS engram_index USING fts5("
    "scope, terms, kind UNINDEXED, unit UNINDEXED, tokenize = 'unicode61 remove_diacritics 0')"
)


# A unit's vector per embedding model: float16, little-endian; ``seq`` orders them so that a
# process loads only those added since it last looked.
_VECTORS = [
    """CREATE TABLE IF NOT EXISTS engram_vectors (
        seq INTEGER PRIMARY KEY, scope TEXT NOT NULL, kind TEXT NOT NULL, unit TEXT NOT NULL,
        model TEXT NOT NULL, vec BLOB NOT NULL, UNIQUE (scope, model, unit))""",
    "CREATE INDEX IF NOT EXISTS engram_vectors_scope ON engram_vectors (scope, model, seq)",
]


class _SQLiteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Row]:
        rows: list[sqlite3.Row] = self._conn.execute(sql, tuple(params)).fetchall()
        return rows

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount


class SQLiteMemory(SQLMemory):
    """Engram memory in one SQLite file (WAL; several processes of one host may share it).

    Forgetting is physical: ``secure_delete`` zeroes freed pages, the FTS5 index is rebuilt
    without the deleted terms, and the write-ahead log is truncated.

    Args:
        path: The database file; created, with its parent folders, if missing.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        text = str(path)
        if text in ("", ":memory:"):
            raise ConfigError(
                f"memory store path {text!r} is not a file (fix: a path such as "
                "'.jamjet/memory.db')"
            )
        self.path = Path(text)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row  # rows are read by column name
            _wal(conn)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for ddl in [*TABLES, _FTS, *_VECTORS, META_TABLE]:
                    conn.execute(ddl)
                stamp_schema(_SQLiteTx(conn), str(self.path))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                conn.close()
                raise
            self._conn = conn
        return self._conn

    @contextmanager
    def transaction(self, scope: str | None, *, write: bool) -> Iterator[Tx]:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _SQLiteTx(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def index_add(self, tx: Tx, scope: str, kind: str, unit: str, unit_terms: list[str]) -> None:
        tx.run(
            "INSERT INTO engram_index (scope, terms, kind, unit) VALUES (?, ?, ?, ?)",
            (scope, " ".join(unit_terms), kind, unit),
        )

    def index_search(self, tx: Tx, scope: str, query: Sequence[str]) -> list[IndexHit]:
        if not query:
            return []
        match = f'scope : "{scope}" AND terms : ({" OR ".join(_quote(t) for t in query)})'
        return index_hits(
            tx.rows(
                "SELECT kind, unit, terms FROM engram_index WHERE engram_index MATCH ?", (match,)
            )
        )

    def index_forget(self, tx: Tx, scope: str) -> None:
        tx.run(
            "DELETE FROM engram_index WHERE rowid IN "
            "(SELECT rowid FROM engram_index WHERE engram_index MATCH ?)",
            (f'scope : "{scope}"',),
        )

    def purge(self) -> None:
        with self._lock:
            conn = self._connection()
            # Rewrites the index as one segment: deleted terms leave the file (the freed pages
            # are zeroed by secure_delete); then the WAL, which still holds old pages, is reset.
            conn.execute("INSERT INTO engram_index (engram_index) VALUES ('optimize')")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _wal(conn: sqlite3.Connection) -> None:
    # Two connections switching a new file to WAL together: SQLite may refuse one at once
    # ("database is locked") without waiting on the busy timeout, to avoid a deadlock.
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'
