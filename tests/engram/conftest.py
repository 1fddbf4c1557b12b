"""One Engram test suite, run on SQLite and on PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (database ``test``, trust auth); each test gets a
fresh schema, dropped afterwards. When the server cannot be reached the PostgreSQL cases skip
and say so.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from jamjet_temporal.memory import open_memory
from jamjet_temporal.memory._store import SQLMemory

PG_ADDRESS = "127.0.0.1:5432"
PG_DSN = f"postgresql://root@{PG_ADDRESS}/test"


@pytest.fixture(scope="session")
def engram_postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    try:
        with psycopg.connect(PG_DSN, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {PG_ADDRESS} (database test, user root): {exc}"
    return None


@pytest.fixture(params=["sqlite", "postgres"])
def memory_url(
    request: pytest.FixtureRequest, tmp_path: Path, engram_postgres_problem: str | None
) -> Iterator[str]:
    """The URL of a fresh, empty memory store on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/memory.db"
        return
    if engram_postgres_problem is not None:
        pytest.skip(engram_postgres_problem)
    schema = f"engram_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{PG_DSN}?schema={schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def open_store(memory_url: str) -> Iterator[Callable[[], SQLMemory]]:
    """Opens stores on the test's database (several may be open: other workers)."""
    opened: list[SQLMemory] = []

    def make() -> SQLMemory:
        store = open_memory(memory_url)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def memory(open_store: Callable[[], SQLMemory]) -> SQLMemory:
    """A fresh memory store (SQLite or PostgreSQL)."""
    return open_store()
