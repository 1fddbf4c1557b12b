"""The PostgreSQL memory backend: one schema shared by workers on several hosts."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from jamjet_temporal._shared._extras import missing_extra
from jamjet_temporal._shared._pgtarget import check_target, lock_key
from jamjet_temporal._shared._storeurl import pg_conninfo
from jamjet_temporal.memory._store import (
    META_TABLE,
    TABLES,
    IndexHit,
    Row,
    SQLMemory,
    Tx,
    check_schema_version,
    index_hits,
    stamp_schema,
)

try:
    import psycopg
    from psycopg import IsolationLevel, pq, sql
    from psycopg.rows import DictRow, dict_row
except ImportError as _missing:  # the extra is not installed
    raise missing_extra("postgres", _missing) from _missing

__all__ = ["PostgresMemory"]


# Text columns compare bytewise ("C"), as SQLite's BINARY does: ORDER BY and range tests over
# ids, times and dia_ids give the same order on both backends, whatever the database's locale.
_TABLES_C = [re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', ddl) for ddl in [*TABLES, META_TABLE]]

# The term index: the analysed terms (space-separated, as the ranking reads them back) and
# their distinct set, ``lexemes``. Its GIN index is keyed by scope and term together
# (``engram_index_keys``: "<scope> <term>" for each lexeme), so a search reads the posting
# lists of this user's terms only, as FTS5's does on SQLite. A GIN index on the bare lexemes
# would hold every user's postings under one key per term: the planner, short of statistics
# (right after a bulk load, or with autovacuum behind), intersects those with the scope's
# rows, and a search costs milliseconds per thousand users.
_INDEX = [
    """CREATE TABLE IF NOT EXISTS engram_index (
        unit TEXT COLLATE "C" PRIMARY KEY, scope TEXT COLLATE "C" NOT NULL,
        kind TEXT COLLATE "C" NOT NULL, terms TEXT COLLATE "C" NOT NULL,
        lexemes TEXT[] COLLATE "C" NOT NULL)""",
    """CREATE OR REPLACE FUNCTION engram_index_keys(scope TEXT, lexemes TEXT[]) RETURNS TEXT[]
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$ SELECT array_agg(scope || ' ' || lexeme) FROM unnest(lexemes) AS lexeme $$""",
    "CREATE INDEX IF NOT EXISTS engram_index_scope ON engram_index (scope)",
    """CREATE INDEX IF NOT EXISTS engram_index_terms ON engram_index
        USING GIN (engram_index_keys(scope, lexemes))""",
]
# A unit's vector per embedding model (float16 bytes; see the SQLite backend).
_VECTORS = [
    """CREATE TABLE IF NOT EXISTS engram_vectors (
        seq BIGSERIAL PRIMARY KEY, scope TEXT COLLATE "C" NOT NULL,
        kind TEXT COLLATE "C" NOT NULL, unit TEXT COLLATE "C" NOT NULL,
        model TEXT COLLATE "C" NOT NULL, vec BYTEA NOT NULL, UNIQUE (scope, model, unit))""",
    "CREATE INDEX IF NOT EXISTS engram_vectors_scope ON engram_vectors (scope, model, seq)",
]
_DDL = [*_TABLES_C, *_INDEX, *_VECTORS]
# Every relation the DDL makes: when all exist, first use needs no DDL (nor the privilege).
_RELATIONS = [
    name for ddl in _DDL for name in re.findall(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)", ddl)
]
_TABLES = [name for ddl in _DDL for name in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", ddl)]

_IDLE = pq.TransactionStatus.IDLE


@lru_cache(maxsize=1024)
def _translate(statement: str) -> bytes:
    """``?`` placeholders to psycopg's ``%s`` (a literal ``%`` escaped first)."""
    return statement.replace("%", "%%").replace("?", "%s").encode()


class _PostgresTx(Tx):
    def __init__(self, conn: psycopg.Connection[DictRow]) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Row]:
        return self._conn.execute(_translate(sql), tuple(params)).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(_translate(sql), tuple(params)).rowcount


class PostgresMemory(SQLMemory):
    """Engram memory in a PostgreSQL schema, for workers on several hosts.

    The schema, the tables and the term index are created on first use if missing (hosts
    starting together take turns on an advisory lock; once they exist, the role needs only
    ``USAGE`` on the schema and ``SELECT, INSERT, UPDATE, DELETE`` on the tables). Writes to one
    user's memory serialise on a transaction-scoped advisory lock (``pg_advisory_xact_lock``,
    one key per schema and scope) and run at READ COMMITTED, so each reads a fact's chain and
    extends it with nothing in between; reads run in one REPEATABLE READ, READ ONLY snapshot.
    Every transaction sets its ``search_path`` to the schema alone (``SET LOCAL``), so no
    statement depends on the session's settings. Text columns are ``COLLATE "C"``: ordering is
    bytewise, as on SQLite, whatever the database's locale.

    Forgetting deletes the rows and then runs ``VACUUM`` on the four tables, so the dead tuples'
    space is reclaimed for reuse (tuples a still-open transaction may see are left to a later
    VACUUM). PostgreSQL does not zero freed space: the deleted bytes stay in the table and
    index files until overwritten, and in WAL segments and backups until those are recycled.
    ``VACUUM FULL`` would rewrite the tables without them, but it holds an exclusive lock on
    each table for the whole rewrite, so it is left to the operator.

    One connection per store, opened on first use and opened again after it breaks; the
    store's calls take turns on it.

    Args:
        dsn: A libpq connection string or ``postgresql://`` URL.
        schema: The schema holding the tables: a plain lowercase identifier.

    Raises:
        ConfigError: ``dsn`` is not a connection string, or ``schema`` not an identifier.
    """

    def __init__(self, dsn: str, *, schema: str = "jamjet") -> None:
        super().__init__()
        check_target(dsn, schema, what="memory store")
        self._dsn = dsn
        self.schema = schema
        self._path = f'"{schema}"'
        self._conn: psycopg.Connection[DictRow] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PostgresMemory(schema={self.schema!r})"

    # -- connection ----------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[DictRow]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            self._conn = None
            if conn is not None:
                conn.close()
            # Rows are read by column name (``dict_row``), as on SQLite (``sqlite3.Row``).
            conn = psycopg.connect(pg_conninfo(self._dsn), autocommit=True, row_factory=dict_row)
            try:
                self._create_if_missing(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return conn

    def _create_if_missing(self, conn: psycopg.Connection[DictRow]) -> None:
        if self._current(conn):
            return
        conn.isolation_level = IsolationLevel.READ_COMMITTED
        conn.read_only = False
        with conn.transaction():
            # Hosts starting together would race on the catalogs (CREATE ... IF NOT EXISTS is
            # not safe concurrently): the lock orders them, and the later ones find all made.
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s)", (lock_key(f"jamjet.engram:{self.schema}"),)
            )
            if self._current(conn):
                return
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            conn.execute("SELECT set_config('search_path', %s, true)", (self._path,))
            for ddl in _DDL:
                conn.execute(ddl.encode())
            stamp_schema(_PostgresTx(conn), f"schema {self.schema}")

    def _current(self, conn: psycopg.Connection[DictRow]) -> bool:
        """Whether the schema has every relation and this release's version (no DDL to run).

        Raises:
            ConfigError: A newer release wrote the store.
        """
        if self._missing(conn) != 0:
            return False
        found = conn.execute(
            sql.SQL("SELECT value FROM {} WHERE key = 'schema_version'").format(
                sql.Identifier(self.schema, "engram_meta")
            )
        ).fetchone()
        behind = check_schema_version(
            None if found is None else found["value"], f"schema {self.schema}"
        )
        return not behind

    def _missing(self, conn: psycopg.Connection[DictRow]) -> int:
        row = conn.execute(
            "SELECT count(*) AS present FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = ANY(%s)",
            (self.schema, _RELATIONS),
        ).fetchone()
        return len(_RELATIONS) - (int(row["present"]) if row else 0)

    def _discard(self, conn: psycopg.Connection[DictRow]) -> None:
        # A failed or interrupted call may leave the connection broken, mid-transaction or
        # mid-query; the next call starts on a fresh one instead.
        self._conn = None
        conn.close()

    # -- backend hooks -------------------------------------------------------------------

    @contextmanager
    def transaction(self, scope: str | None, *, write: bool) -> Iterator[Tx]:
        with self._lock:
            conn = self._connection()
            try:
                if write:
                    conn.isolation_level = IsolationLevel.READ_COMMITTED
                    conn.read_only = False
                else:
                    conn.isolation_level = IsolationLevel.REPEATABLE_READ
                    conn.read_only = True
                with conn.transaction():
                    if write:
                        # READ COMMITTED: each statement after the lock sees every earlier
                        # write to this scope.
                        key = lock_key(
                            f"jamjet.engram:{self.schema}"
                            if scope is None
                            else f"jamjet.engram:{self.schema}:{scope}"
                        )
                        conn.execute(
                            "SELECT set_config('search_path', %s, true), pg_advisory_xact_lock(%s)",
                            (self._path, key),
                        )
                    else:
                        conn.execute("SELECT set_config('search_path', %s, true)", (self._path,))
                    yield _PostgresTx(conn)
            except BaseException:
                if conn.closed or conn.broken or conn.info.transaction_status != _IDLE:
                    self._discard(conn)
                raise

    def index_add(self, tx: Tx, scope: str, kind: str, unit: str, unit_terms: list[str]) -> None:
        tx.run(
            "INSERT INTO engram_index (unit, scope, kind, terms, lexemes) VALUES (?, ?, ?, ?, ?)",
            (unit, scope, kind, " ".join(unit_terms), list(dict.fromkeys(unit_terms))),
        )

    def index_search(self, tx: Tx, scope: str, query: Sequence[str]) -> list[IndexHit]:
        if not query:
            return []
        # The keys' test lets the planner use the GIN index; ``lexemes &&`` is the same test,
        # cheaper, evaluated first when the planner reads the scope's rows from the btree.
        return index_hits(
            tx.rows(
                "SELECT kind, unit, terms FROM engram_index WHERE scope = ? "
                "AND lexemes && ?::text[] AND engram_index_keys(scope, lexemes) && ?::text[]",
                (scope, list(query), [f"{scope} {term}" for term in query]),
            )
        )

    def index_forget(self, tx: Tx, scope: str) -> None:
        tx.run("DELETE FROM engram_index WHERE scope = ?", (scope,))

    def purge(self) -> None:
        """Reclaim the deleted rows' space with ``VACUUM`` (see the class: not zeroed)."""
        with self._lock:
            conn = self._connection()
            try:
                # Autocommit, outside any transaction, as VACUUM requires.
                conn.execute(
                    sql.SQL("VACUUM {}").format(
                        sql.SQL(", ").join(sql.Identifier(self.schema, table) for table in _TABLES)
                    )
                )
            except BaseException:
                if conn.closed or conn.broken or conn.info.transaction_status != _IDLE:
                    self._discard(conn)
                raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
