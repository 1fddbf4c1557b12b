"""Isolation (no user's or org's memory in another's context) and forgetting for real.

Every test runs on SQLite and on PostgreSQL (see conftest).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jamjet_temporal.memory import ContextRequest, FactInput, IngestRequest, Message
from jamjet_temporal.memory._store import SQLMemory
from tests.engram.conftest import PG_DSN

AT = datetime(2026, 3, 1, tzinfo=UTC)

# Names that look alike, differ by case, space, Unicode confusables, SQL and LIKE/FTS syntax,
# or could collide when org and user are concatenated.
LOOKALIKES: list[tuple[str | None, str]] = [
    (None, "sunil"),
    (None, "Sunil"),
    (None, "sunil "),
    (None, " sunil"),
    (None, "sunіl"),  # Cyrillic і
    (None, "sunil\u200b"),  # zero-width space
    (None, "sun il"),
    (None, "sunil%"),
    (None, "sunil_"),
    (None, "*"),
    (None, '" OR scope : *'),
    (None, "' OR '1'='1"),
    (None, "acme/sunil"),
    ("acme", "sunil"),
    ("acme/", "sunil"),
    ("acme", "/sunil"),
    ("Acme", "sunil"),
    ("acme", "sunil "),
]


def seed(memory: SQLMemory, org: str | None, user: str, marker: str) -> None:
    memory.ingest(
        IngestRequest(
            user=user,
            org=org,
            session="s1",
            at=AT,
            messages=[Message(content=f"my zebra password is {marker}")],
            facts=[
                FactInput(value=f"zebra secret {marker}", sources=["s1:1"]),
                FactInput(attribute="zebra", value=marker),
            ],
        )
    )


def test_lookalike_names_never_see_each_others_memory(memory: SQLMemory) -> None:
    markers = {scope: f"m{n}x{uuid.uuid4().hex[:6]}" for n, scope in enumerate(LOOKALIKES)}
    for (org, user), marker in markers.items():
        seed(memory, org, user, marker)
    for (org, user), marker in markers.items():
        others = [m for s, m in markers.items() if s != (org, user)]
        context = memory.context(
            ContextRequest(user=user, org=org, topic="zebra secret password", budget_tokens=2000)
        )
        blob = context.text + str(context) + context.model_dump_json()
        assert marker in context.text, (org, user)
        assert not [m for m in others if m in blob], (org, user)
        facts = memory.facts(user, org, include_superseded=True)
        assert {f.value for f in facts} == {f"zebra secret {marker}", marker}
        assert all(f.user == user and f.org == org for f in facts)
        assert [e.text for e in memory.episodes(user, org)] == [
            f"{user}: my zebra password is {marker}"
        ]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.lists(
        st.tuples(
            st.none() | st.text(alphabet="aA /%_*'\"-", min_size=1, max_size=3),
            st.text(alphabet="aA /%_*'\"-і", min_size=1, max_size=4),
        ),
        min_size=2,
        max_size=5,
        unique=True,
    ).filter(lambda names: all(u.strip() and (o is None or o.strip()) for o, u in names))
)
def test_isolation_holds_for_any_names(
    memory: SQLMemory, names: list[tuple[str | None, str]]
) -> None:
    run = uuid.uuid4().hex[:6]
    markers = {scope: f"q{n}r{run}" for n, scope in enumerate(names)}
    for (org, user), marker in markers.items():
        seed(memory, org, user, marker)
    for (org, user), marker in markers.items():
        context = memory.context(
            ContextRequest(user=user, org=org, topic="zebra secret password", budget_tokens=2000)
        )
        found = {m for m in markers.values() if m in context.text}
        assert found == {marker}


def _sqlite_bytes(memory_url: str) -> bytes:
    path = Path(memory_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def _postgres_rows_with(memory_url: str, marker: str) -> int:
    schema = memory_url.rsplit("schema=", 1)[1]
    total = 0
    with psycopg.connect(PG_DSN) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        ).fetchall()
        assert tables
        for (table,) in tables:
            row = conn.execute(
                f'SELECT count(*) FROM "{schema}"."{table}" t WHERE t::text LIKE %s',
                (f"%{marker}%",),
            ).fetchone()
            total += row[0] if row else 0
    return total


def test_forget_removes_a_user_from_every_table_and_index(
    memory: SQLMemory, memory_url: str
) -> None:
    gone = f"gone{uuid.uuid4().hex[:8]}"
    kept = f"kept{uuid.uuid4().hex[:8]}"
    seed(memory, None, "alice", gone)
    memory.ingest(
        IngestRequest(
            user="alice",
            session="s2",
            at=AT,
            facts=[FactInput(attribute="zebra", value=f"{gone}later")],
        )
    )
    seed(memory, None, "bob", kept)

    forgotten = memory.forget("alice")
    assert (forgotten.facts, forgotten.episodes, forgotten.sessions) == (3, 1, 2)
    assert memory.facts("alice", include_superseded=True) == []
    assert memory.episodes("alice") == []
    context = memory.context(
        ContextRequest(user="alice", topic=f"zebra secret password {gone}", budget_tokens=2000)
    )
    assert context.items == [] and context.text == ""
    # Bob is untouched.
    assert (
        kept
        in memory.context(ContextRequest(user="bob", topic="zebra secret", budget_tokens=2000)).text
    )
    # Nothing of Alice is left in the database: no table, no index row, no stale page.
    memory.close()
    if memory_url.startswith("sqlite"):
        raw = _sqlite_bytes(memory_url)
        assert gone.encode() not in raw
        assert kept.encode() in raw
    else:
        assert _postgres_rows_with(memory_url, gone) == 0
        assert _postgres_rows_with(memory_url, kept) > 0


def test_forget_is_idempotent_and_scoped_to_the_org(memory: SQLMemory) -> None:
    seed(memory, "acme", "sunil", "acmesecret")
    seed(memory, None, "sunil", "plainsecret")
    assert memory.forget("sunil", "acme").facts == 2
    assert memory.forget("sunil", "acme").facts == 0
    assert {f.value for f in memory.facts("sunil")} == {"zebra secret plainsecret", "plainsecret"}
