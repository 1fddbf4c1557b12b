"""PostgreSQL stores end a session that stalls inside a transaction (a worker cut off while it
holds the store's append lock must not stall every other worker's writes for hours)."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from jamjet_temporal._shared._storeurl import pg_conninfo
from tests.audit.audit_support import Backend, make_event


def test_keepalives_and_the_idle_limit_are_added_unless_the_dsn_sets_them() -> None:
    added = conninfo_to_dict(pg_conninfo("postgresql://w@db:5432/test"))
    assert added["keepalives"] == "1" and added["keepalives_idle"] == "10"
    assert "-c idle_in_transaction_session_timeout=15s" in str(added["options"])
    own = conninfo_to_dict(
        pg_conninfo(
            "host=db dbname=test keepalives_idle=60 "
            "options='-c idle_in_transaction_session_timeout=1min'"
        )
    )
    assert own["keepalives_idle"] == "60"
    assert str(own["options"]).count("idle_in_transaction_session_timeout") == 1


async def test_a_store_session_stalled_in_a_transaction_is_ended(backend: Backend) -> None:
    if backend.kind != "postgres":
        pytest.skip("PostgreSQL only: SQLite has no server session")
    store = backend.open()
    try:
        await store.append([make_event(1)])
        # The store's own connection carries the limit (what the server enforces).
        async with store._session() as conn:  # type: ignore[attr-defined]
            cur = await conn.execute("SHOW idle_in_transaction_session_timeout")
            assert (await cur.fetchone()) == ("15s",)
    finally:
        await store.close()
