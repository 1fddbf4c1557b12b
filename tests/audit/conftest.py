"""One audit-store test suite, run on SQLite and on PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (database ``test``, trust auth); each test gets a
fresh schema, set up by the superuser ``root`` as the admin, and a fresh LOGIN role its stores
connect as (the worker, which may only read and append); both are dropped afterwards. When the
server cannot be reached the PostgreSQL cases skip and say so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from jamjet_temporal.audit import AuditStore
from tests.audit.audit_support import PG_ADDRESS, PG_DSN, Backend, Backends


@pytest.fixture(scope="session")
def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    try:
        with psycopg.connect(PG_DSN) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {PG_ADDRESS} (database test, user root): {exc}"
    return None


@pytest.fixture(params=["sqlite", "postgres"])
def backends(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_problem: str | None
) -> Iterator[Backends]:
    if request.param == "postgres" and postgres_problem is not None:
        pytest.skip(postgres_problem)
    made = Backends(request.param, tmp_path)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def backend(backends: Backends) -> Backend:
    return backends.fresh()


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[AuditStore]:
    opened = backend.open()
    try:
        yield opened
    finally:
        await opened.close()
