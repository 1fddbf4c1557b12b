"""What only the PostgreSQL backend has: DSN and schema checks, its schema, reconnecting, VACUUM.

The server is the one of conftest (127.0.0.1:5432, database ``test``); the cases that need it
skip when it cannot be reached.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from jamjet_temporal.audit import PostgresAuditStore
from jamjet_temporal.errors import ConfigError
from jamjet_temporal.memory import ContextRequest, FactInput, IngestRequest, Message, open_memory
from jamjet_temporal.memory._postgres import PostgresMemory
from jamjet_temporal.memory._store import SQLMemory

from .conftest import PG_DSN

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TABLES = (
    "engram_episodes",
    "engram_facts",
    "engram_index",
    "engram_meta",
    "engram_sessions",
    "engram_vectors",
)


@pytest.fixture
def pg_store(
    engram_postgres_problem: str | None,
) -> Iterator[Callable[[], tuple[PostgresMemory, str]]]:
    """Opens PostgreSQL stores, each on a fresh schema (dropped afterwards)."""
    if engram_postgres_problem is not None:
        pytest.skip(engram_postgres_problem)
    opened: list[tuple[PostgresMemory, str]] = []

    def make() -> tuple[PostgresMemory, str]:
        schema = f"engram_{uuid.uuid4().hex[:12]}"
        opened.append((PostgresMemory(PG_DSN, schema=schema), schema))
        return opened[-1]

    yield make
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        for store, schema in opened:
            store.close()
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def remember(memory: SQLMemory, user: str = "sunil") -> None:
    memory.ingest(
        IngestRequest(
            user=user,
            session="s1",
            at=T0,
            messages=[Message(content="I moved to Pune")],
            facts=[FactInput(attribute="location", value="Pune", sources=["s1:1"])],
        )
    )


def count(schema: str, table: str) -> int:
    with psycopg.connect(PG_DSN) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".{table}').fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://root@127.0.0.1/test?schema=Engram",
        "postgresql://root@127.0.0.1/test?schema=engram-x",
        "postgresql://root@127.0.0.1/test?schema=",
        "postgresql://root@127.0.0.1/test?schema=1engram",
    ],
)
def test_a_schema_that_is_not_a_plain_identifier_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="not a plain identifier"):
        open_memory(url)


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://root:hunter2secret@[::1/test",
        "postgresql://root:hunter2secret@127.0.0.1/test?bogus=hunter2secret",
        "postgresql://root:hunter2secret@127.0.0.1:hunter2secret/test",
        "postgresql://root:hunter2secret/test",
        "host=127.0.0.1 password=hunter2 secret",
        "host=127.0.0.1 password='hunter2secret",
    ],
)
@pytest.mark.parametrize("store", [PostgresMemory, PostgresAuditStore])
def test_a_bad_dsn_is_a_config_error_that_never_shows_the_password(
    dsn: str, store: type[object]
) -> None:
    # Both PostgreSQL stores share the check (jamjet_temporal._shared._pgtarget).
    with pytest.raises(ConfigError) as raised:
        store(dsn)
    message = str(raised.value)
    assert "fix:" in message
    assert "hunter2" not in message and "secret" not in message


def test_nothing_is_opened_before_the_first_call() -> None:
    # Nothing listens on port 1: constructing must not notice.
    memory = open_memory("postgresql://root@127.0.0.1:1/test?schema=nowhere")
    with pytest.raises(psycopg.OperationalError):
        memory.facts("sunil")
    memory.close()


def test_tables_live_in_the_configured_schema_only(
    pg_store: Callable[[], tuple[PostgresMemory, str]],
) -> None:
    (one, schema_one), (two, schema_two) = pg_store(), pg_store()
    remember(one)
    assert two.facts("sunil") == [] and two.episodes("sunil") == []
    with psycopg.connect(PG_DSN) as conn:
        rows = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE tablename LIKE 'engram%%' "
            "AND schemaname = ANY(%s) ORDER BY 1, 2",
            ([schema_one, schema_two, "public"],),
        ).fetchall()
    expected = [(schema, table) for schema in sorted((schema_one, schema_two)) for table in TABLES]
    assert rows == expected
    assert count(schema_one, "engram_index") == 2 and count(schema_two, "engram_index") == 0


def test_a_broken_connection_is_opened_again(
    pg_store: Callable[[], tuple[PostgresMemory, str]],
) -> None:
    memory, _ = pg_store()
    remember(memory)
    assert memory._conn is not None
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (memory._conn.info.backend_pid,))
    # The call that finds the connection dead fails (its activity is retried); the next one
    # runs on a new connection.
    with pytest.raises(psycopg.OperationalError):
        memory.facts("sunil")
    found = memory.facts("sunil")
    assert [f.value for f in found] == ["Pune"]


def test_forget_deletes_every_row_and_index_entry_then_vacuums(
    pg_store: Callable[[], tuple[PostgresMemory, str]],
) -> None:
    memory, schema = pg_store()
    remember(memory, "sunil")
    remember(memory, "ana")
    forgotten = memory.forget("sunil")
    assert (forgotten.facts, forgotten.episodes, forgotten.sessions) == (1, 1, 1)
    assert memory.facts("sunil", include_superseded=True) == []
    assert memory.episodes("sunil") == []
    request = ContextRequest(user="sunil", topic="Pune location", budget_tokens=100)
    assert memory.context(request).items == []
    for table in TABLES:
        # ana's fact and turn: one index entry and one vector each.
        per_user = 2 if table in ("engram_index", "engram_vectors") else 1
        if table == "engram_meta":
            continue  # the store's, not a user's
        assert count(schema, table) == per_user, table
    assert [f.value for f in memory.facts("ana")] == ["Pune"]
    with psycopg.connect(PG_DSN) as conn:
        vacuumed = conn.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = %s "
            "AND last_vacuum IS NOT NULL ORDER BY 1",
            (schema,),
        ).fetchall()
    assert [row[0] for row in vacuumed] == list(TABLES)
