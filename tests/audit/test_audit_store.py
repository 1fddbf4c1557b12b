"""The audit store contract, on SQLite and on PostgreSQL alike (see conftest.py)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jamjet_temporal.audit import AuditEvent, AuditStore, StoredEvent, canonical_json
from tests.audit.audit_support import Backend, Backends, make_event
from tests.audit.audit_writer import write, write_until_killed

GENESIS = "0" * 64
REFUSED = (sqlite3.DatabaseError, psycopg.Error)


async def append_numbers(store: AuditStore, *numbers: int) -> list[StoredEvent]:
    return await store.append([make_event(n) for n in numbers])


async def test_append_reads_back_in_order(store: AuditStore) -> None:
    events = [make_event(n, run=f"exec_{n % 2}") for n in range(1, 8)]
    before = datetime.now(UTC)

    stored = await store.append(events[:3]) + await store.append(events[3:])

    assert [s.seq for s in stored] == list(range(1, 8))
    assert [s.event for s in stored] == events
    assert await store.events() == stored
    assert stored[0].prev_hash == GENESIS
    for prev, s in zip([None, *stored], stored, strict=False):
        prev_hash = GENESIS if prev is None else prev.hash
        assert s.prev_hash == prev_hash
        expected = hashlib.sha256((prev_hash + canonical_json(s.event)).encode()).hexdigest()
        assert s.hash == expected
        assert s.recorded_at.tzinfo is not None
        assert before - timedelta(seconds=5) < s.recorded_at < datetime.now(UTC) + timedelta(5)


async def test_appended_events_are_visible_to_another_connection(
    backend: Backend, store: AuditStore
) -> None:
    stored = await append_numbers(store, 1, 2, 3)
    other = backend.open()
    try:
        assert await other.events() == stored
        assert await other.get(stored[1].event.id) == stored[1]
    finally:
        await other.close()


async def test_verify_empty_and_full_chain(store: AuditStore) -> None:
    empty = await store.verify()
    assert (empty.ok, empty.count, empty.head, empty.seq, empty.problem) == (
        True,
        0,
        GENESIS,
        None,
        None,
    )
    stored = await append_numbers(store, *range(1, 11))
    verdict = await store.verify()
    assert (verdict.ok, verdict.count, verdict.head) == (True, 10, stored[-1].hash)


async def test_reappending_the_same_ids_stores_nothing_new(
    backend: Backend, store: AuditStore
) -> None:
    first = await append_numbers(store, 1, 2, 3, 4, 5)
    # A retried activity may rebuild an event slightly differently: the first copy stands.
    retried = [make_event(n, note="retry") for n in (1, 2, 3, 4, 5)]

    assert await store.append(retried) == first
    other = backend.open()
    try:
        assert await other.append(list(reversed(retried))) == list(reversed(first))
    finally:
        await other.close()
    assert await store.events() == first
    assert (await store.verify()).count == 5


async def test_batch_with_repeated_and_known_ids(store: AuditStore) -> None:
    await append_numbers(store, 1)
    stored = await append_numbers(store, 2, 1, 2, 3)
    assert [s.seq for s in stored] == [2, 1, 2, 3]
    assert [s.seq for s in await store.events()] == [1, 2, 3]


async def test_empty_append(store: AuditStore) -> None:
    assert await store.append([]) == []
    assert await store.events() == []


async def test_concurrent_appends_in_one_process(backend: Backend) -> None:
    stores = [backend.open(), backend.open()]
    try:
        batches = [[make_event(n) for n in range(i, i + 4)] for i in range(0, 40, 2)]
        await asyncio.gather(*(stores[i % 2].append(b) for i, b in enumerate(batches)))
        stored = await stores[0].events()
        assert [s.seq for s in stored] == list(range(1, 43))
        assert sorted(s.event.id for s in stored) == sorted({make_event(n).id for n in range(42)})
        assert (await stores[1].verify()).ok
    finally:
        for s in stores:
            await s.close()


async def test_concurrent_appends_from_several_processes(backend: Backend, tmp_path: Path) -> None:
    # Forked from a fork server that imported the package once: real separate processes
    # with their own connections, without paying the package import four times.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.audit.audit_writer"])
    start = ctx.Barrier(4)
    outs = [tmp_path / f"writer{i}.json" for i in range(4)]
    # 4 processes x 50 events, each overlapping its neighbour by 25: 125 distinct ids.
    writers = [
        ctx.Process(target=write, args=(backend.url, 25 * i, 50, i, start, outs[i]))
        for i in range(4)
    ]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=60)
    assert [w.exitcode for w in writers] == [0, 0, 0, 0]

    store = backend.open()
    try:
        stored = await store.events()
        verdict = await store.verify()
    finally:
        await store.close()
    seq_of = {s.event.id: s.seq for s in stored}
    assert [s.seq for s in stored] == list(range(1, 126))
    assert len(seq_of) == 125
    assert set(seq_of) == {make_event(n, ns="concurrent").id for n in range(125)}
    for out in outs:
        for eid, seq in json.loads(out.read_text()).items():
            assert seq_of[eid] == seq
    assert (verdict.ok, verdict.count) == (True, 125)


async def test_a_writer_killed_mid_append_leaves_whole_batches(backend: Backend) -> None:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.audit.audit_writer"])
    started = ctx.Event()
    writer = ctx.Process(target=write_until_killed, args=(backend.url, started))
    writer.start()
    try:
        assert started.wait(timeout=30)
        await asyncio.sleep(0.05)
    finally:
        writer.kill()
        writer.join(timeout=30)

    store = backend.open()
    try:
        stored = await store.events()
        # The killed writer's lock and any half-written batch are gone: appending goes on.
        more = await store.append([make_event(1, ns="after")])
        verdict = await store.verify()
    finally:
        await store.close()
    assert len(stored) >= 20
    assert len(stored) % 5 == 0
    assert [s.event for s in stored] == [make_event(n, ns="killed") for n in range(len(stored))]
    assert more[0].seq == len(stored) + 1
    assert (verdict.ok, verdict.count) == (True, len(stored) + 1)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {t} SET kind = 'x' WHERE seq = 2",
        "UPDATE {t} SET body = body",
        "DELETE FROM {t} WHERE seq = 3",
        "DELETE FROM {t}",
    ],
)
async def test_the_database_refuses_update_and_delete(
    backend: Backend, store: AuditStore, statement: str
) -> None:
    stored = await append_numbers(store, 1, 2, 3)
    with pytest.raises(REFUSED, match="append-only"):
        backend.execute(statement)
    assert await store.events() == stored


async def test_the_database_refuses_overwriting_inserts(
    backend: Backend, store: AuditStore
) -> None:
    stored = await append_numbers(store, 1, 2)
    copy = "SELECT seq, id, run_id, kind, body, prev_hash, hash, recorded_at FROM {t} WHERE seq = 1"
    if backend.kind == "sqlite":
        # REPLACE deletes the old row without firing DELETE triggers.
        with pytest.raises(REFUSED, match="append-only"):
            backend.execute("INSERT OR REPLACE INTO {t} " + copy)
    else:
        with pytest.raises(REFUSED, match="append-only"):
            backend.execute("TRUNCATE {t}")
        with pytest.raises(REFUSED, match="append-only"):
            backend.execute(f"INSERT INTO {{t}} {copy} ON CONFLICT (seq) DO UPDATE SET kind = 'x'")
    with pytest.raises(REFUSED):
        backend.execute(f"INSERT INTO {{t}} {copy}")
    assert await store.events() == stored


def _forge(stored: list[StoredEvent], index: int) -> str:
    """Edit an event and recompute its hash, as someone who knows the scheme would."""
    edited = stored[index].event.model_copy(update={"data": {"n": -1}})
    body = canonical_json(edited)
    digest = hashlib.sha256((stored[index].prev_hash + body).encode()).hexdigest()
    return f"UPDATE {{t}} SET body = '{body}', hash = '{digest}' WHERE seq = {index + 1}"


@pytest.mark.parametrize(
    ("statements", "seq", "index", "problem"),
    [
        (
            ['UPDATE {t} SET body = replace(body, \'"note":""\', \'"note":"x"\') WHERE seq = 3'],
            3,
            2,
            "hash_mismatch",
        ),
        (["UPDATE {t} SET run_id = 'exec_other' WHERE seq = 2"], 2, 1, "row_mismatch"),
        (["UPDATE {t} SET kind = 'policy.decision' WHERE seq = 4"], 4, 3, "row_mismatch"),
        (["DELETE FROM {t} WHERE seq = 3"], 4, 3, "gap"),
        (["DELETE FROM {t} WHERE seq = 1"], 2, 1, "gap"),
        (
            [
                "UPDATE {t} SET seq = 100 WHERE seq = 2",
                "UPDATE {t} SET seq = 2 WHERE seq = 3",
                "UPDATE {t} SET seq = 3 WHERE seq = 100",
            ],
            2,
            2,
            "prev_mismatch",
        ),
        ([_forge], 4, 3, "prev_mismatch"),
    ],
    ids=["edit-content", "edit-run-id", "edit-kind", "delete", "delete-first", "reorder", "rehash"],
)
async def test_verify_finds_tampering(
    backend: Backend,
    store: AuditStore,
    statements: list[object],
    seq: int,
    index: int,
    problem: str,
) -> None:
    stored = await append_numbers(store, 1, 2, 3, 4, 5)
    backend.drop_append_only()
    for statement in statements:
        backend.execute(statement(stored, 2) if callable(statement) else str(statement))

    verdict = await store.verify()

    assert (verdict.ok, verdict.seq, verdict.event_id, verdict.problem) == (
        False,
        seq,
        stored[index].event.id,
        problem,
    )
    # Events checked before the problem: one fewer when one of them was removed.
    assert verdict.count == (seq - 2 if problem == "gap" else seq - 1)
    assert str(seq) in verdict.detail


async def test_removing_the_newest_events_shows_in_the_head(
    backend: Backend, store: AuditStore
) -> None:
    stored = await append_numbers(store, 1, 2, 3)
    head = (await store.verify()).head
    backend.drop_append_only()
    backend.execute("DELETE FROM {t} WHERE seq = 3")
    verdict = await store.verify()
    # No chain reveals a cut tail by itself; a head kept elsewhere does.
    assert (verdict.ok, verdict.count, verdict.head) == (True, 2, stored[1].hash)
    assert verdict.head != head


async def test_events_filters_by_run_and_kind(store: AuditStore) -> None:
    stored = await store.append(
        [
            make_event(1, run="exec_a", kind="policy.decision"),
            make_event(2, run="exec_b", kind="tool.call"),
            make_event(3, run="exec_a", kind="tool.call"),
            make_event(4, run="exec_a", kind="model.call"),
            make_event(5, run="exec_b", kind="policy.decision"),
        ]
    )
    assert await store.events("exec_a") == [stored[0], stored[2], stored[3]]
    assert await store.events(kinds=["policy.decision"]) == [stored[0], stored[4]]
    assert await store.events("exec_a", kinds=["tool.call", "model.call"]) == stored[2:4]
    assert await store.events("exec_b", kinds=["model.call"]) == []
    assert await store.events("exec_zzz") == []
    assert await store.events(kinds=[]) == []
    with pytest.raises(TypeError, match="list"):
        await store.events(kinds="tool.call")


async def test_get(store: AuditStore) -> None:
    stored = await append_numbers(store, 1, 2)
    assert await store.get(stored[1].event.id) == stored[1]
    assert await store.get(make_event(3).id) is None


async def test_closed_store_refuses_calls(backend: Backend) -> None:
    store = backend.open()
    await append_numbers(store, 1)
    await store.close()
    await store.close()
    with pytest.raises(RuntimeError, match="closed"):
        await append_numbers(store, 2)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=st.lists(st.lists(st.integers(0, 12), max_size=6), max_size=6))
async def test_any_appends_keep_distinct_ids_in_first_order(
    backends: Backends, batches: list[list[int]]
) -> None:
    store = backends.fresh().open()
    try:
        first: dict[str, AuditEvent] = {}
        for b, numbers in enumerate(batches):
            events = [make_event(n, note=f"batch {b}") for n in numbers]
            for e in events:
                first.setdefault(e.id, e)
            stored = await store.append(events)
            assert [s.event for s in stored] == [first[e.id] for e in events]
        everything = await store.events()
        assert [s.event for s in everything] == list(first.values())
        assert [s.seq for s in everything] == list(range(1, len(first) + 1))
        verdict = await store.verify()
        assert (verdict.ok, verdict.count) == (True, len(first))
    finally:
        await store.close()
