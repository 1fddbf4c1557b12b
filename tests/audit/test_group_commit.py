"""Group commit: concurrent appends share transactions, each keeping its own guarantees.

On SQLite and on PostgreSQL alike (see conftest.py). Transactions are counted twice: by the
store's private counter and from the rows themselves (on SQLite the distinct ``recorded_at``
times, one per transaction; on PostgreSQL the distinct ``xmin``, the id of the transaction
that inserted each row).
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jamjet_temporal.audit import AuditEvent, AuditStore, StoredEvent
from jamjet_temporal.audit._checkpoint import read_marks
from jamjet_temporal.audit._store import chain_batch, chain_group
from jamjet_temporal.errors import AuditTamperedError
from tests.audit.audit_support import T0, Backend, make_event, make_signer

REFUSED = (sqlite3.DatabaseError, psycopg.Error)


def commits(store: AuditStore) -> int:
    """Append transactions the store committed (its private counter)."""
    return int(store._commits)  # type: ignore[attr-defined]


def transactions_in_rows(backend: Backend) -> int:
    """Transactions that inserted events, as the stored rows show them."""
    column = "recorded_at" if backend.kind == "sqlite" else "xmin::text"
    return int(str(backend.query(f"SELECT count(DISTINCT {column}) FROM {{t}}")[0][0]))


def checkpoint_seqs(backend: Backend) -> list[int]:
    return [int(str(row[0])) for row in backend.query("SELECT seq FROM {c} ORDER BY seq")]


def by_id(stored: list[StoredEvent]) -> dict[str, StoredEvent]:
    return {s.event.id: s for s in stored}


async def test_concurrent_appends_share_transactions(backend: Backend) -> None:
    # 200 appenders of 2 events; every 10th repeats an event of an earlier appender (a
    # different copy: the first one stands), a few repeat an event within their batch.
    batches: list[list[AuditEvent]] = []
    for i in range(200):
        batch = [make_event(2 * i, run=f"exec_{i}"), make_event(2 * i + 1, run=f"exec_{i}")]
        if i % 10 == 5:
            batch[1] = make_event(2 * (i - 5), run=f"exec_{i - 5}", note="a later copy")
        if i % 25 == 7:
            batch.append(batch[0])
        batches.append(batch)
    store = backend.open()
    try:
        results = await asyncio.gather(*(store.append(batch) for batch in batches))
        stored = await store.events()
        verdict = await store.verify()
        transactions = commits(store)
    finally:
        await store.close()

    first = {e.id: e for batch in reversed(batches) for e in reversed(batch)}
    order = list(dict.fromkeys(event.id for batch in batches for event in batch))
    # Every event exactly once, chained in call order, the first copy of each id standing.
    assert [s.event.id for s in stored] == order
    assert [s.seq for s in stored] == list(range(1, len(order) + 1))
    assert all(s.event == first[s.event.id] for s in stored)
    assert "a later copy" not in str([s.event.data for s in stored])
    assert (verdict.ok, verdict.count) == (True, len(order))
    # Each caller got what is stored, one StoredEvent per event it gave.
    stored_by_id = by_id(stored)
    for batch, got in zip(batches, results, strict=True):
        assert got == [stored_by_id[event.id] for event in batch]
    # 200 appends, a handful of transactions (an fsync or a round trip each).
    assert transactions <= 10
    assert transactions_in_rows(backend) == transactions


async def test_appends_one_after_another_each_commit_at_once(backend: Backend) -> None:
    store = backend.open()
    try:
        for n in range(10):
            got = await store.append([make_event(n)])
            # Committed when append returns: another connection sees it.
            assert backend.query("SELECT count(*) FROM {t} WHERE id = ?", [got[0].event.id])
        transactions = commits(store)
    finally:
        await store.close()
    assert transactions == transactions_in_rows(backend) == 10


@pytest.mark.parametrize("gather_s", [2.0, 0.0])
async def test_under_load_a_group_waits_for_more_appends(backend: Backend, gather_s: float) -> None:
    # An append arrives while another commits (held up by another writer's lock): the store
    # is under load, so its next group waits (up to gather_s) for the appends that follow.
    store = backend.open(gather_s=gather_s)
    try:
        with backend.append_lock_held():
            first = asyncio.create_task(store.append([make_event(0)]))
            await asyncio.sleep(0.3)  # the first group is waiting for the lock
            during = asyncio.create_task(store.append([make_event(1)]))
            await asyncio.sleep(0.1)
        await first
        later = []
        for n in range(2, 6):
            later.append(asyncio.create_task(store.append([make_event(n)])))
            await asyncio.sleep(0.05)
        await asyncio.gather(during, *later)
        transactions = commits(store)
    finally:
        await store.close()
    assert transactions_in_rows(backend) == transactions
    if gather_s:
        # The one that arrived during the commit and the four after it: one transaction.
        assert transactions == 2
    else:
        assert transactions >= 3


async def test_a_full_group_commits_without_waiting_out_the_gather_time(backend: Backend) -> None:
    store = backend.open(gather_s=600.0)
    try:
        with backend.append_lock_held():
            first = asyncio.create_task(store.append([make_event(0)]))
            await asyncio.sleep(0.3)
            waiting = [asyncio.create_task(store.append([make_event(n)])) for n in range(1, 50)]
            await asyncio.sleep(0.1)
        await first
        # 49 wait for more; 51 more make GATHER_MAX (100) and the group goes at once.
        more = [asyncio.create_task(store.append([make_event(n)])) for n in range(50, 101)]
        await asyncio.wait_for(asyncio.gather(*waiting, *more), timeout=60)
        transactions = commits(store)
    finally:
        await store.close()
    assert transactions == 2


async def test_closing_a_gathering_store_commits_what_waits(backend: Backend) -> None:
    store = backend.open(gather_s=600.0)
    with backend.append_lock_held():
        first = asyncio.create_task(store.append([make_event(0)]))
        await asyncio.sleep(0.3)
        waiting = asyncio.create_task(store.append([make_event(1)]))
        await asyncio.sleep(0.1)
    await first
    await asyncio.sleep(0.1)  # the second group is gathering
    await asyncio.wait_for(store.close(), timeout=60)
    assert (await waiting)[0].seq == 2
    assert len(backend.query("SELECT id FROM {t}")) == 2


def poison(backend: Backend) -> None:
    """Make the database refuse any event of run ``poisoned`` (a trigger, as the admin)."""
    refusal = "poisoned batch refused"
    if backend.kind == "sqlite":
        backend.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON audit_events WHEN NEW.run_id = 'poisoned'"
            f" BEGIN SELECT RAISE(ABORT, '{refusal}'); END"
        )
        return
    function = f"{backend.schema}.poison"
    backend.execute(
        f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF NEW.run_id = 'poisoned' THEN RAISE EXCEPTION '{refusal}'; END IF;"
        " RETURN NEW; END $$"
    )
    backend.execute(
        f"CREATE TRIGGER poison BEFORE INSERT ON {{t}} FOR EACH ROW EXECUTE FUNCTION {function}()"
    )


async def test_a_batch_the_database_refuses_fails_alone(backend: Backend) -> None:
    bad = {0, 17, 18, 39}
    batches = [
        [
            make_event(2 * i, run=f"exec_{i}"),
            make_event(2 * i + 1, run="poisoned" if i in bad else f"exec_{i}"),
        ]
        for i in range(40)
    ]
    store = backend.open()
    try:
        await store.events(kinds=[])  # the file made (SQLite)
        poison(backend)
        outcomes = await asyncio.gather(
            *(store.append(batch) for batch in batches), return_exceptions=True
        )
        # The store goes on appending afterwards.
        more = await store.append([make_event(1000)])
        stored = await store.events()
        verdict = await store.verify()
    finally:
        await store.close()

    stored_by_id = by_id(stored)
    for i, (batch, outcome) in enumerate(zip(batches, outcomes, strict=True)):
        if i in bad:
            assert isinstance(outcome, REFUSED), outcome
            assert "poisoned batch refused" in str(outcome)
        else:
            assert outcome == [stored_by_id[event.id] for event in batch]
    # A refused batch is atomic: not even its good first event is stored.
    good = [e.id for i, batch in enumerate(batches) if i not in bad for e in batch]
    assert [s.event.id for s in stored] == [*good, more[0].event.id]
    assert (verdict.ok, verdict.count) == (True, len(good) + 1)


async def test_only_the_batches_due_a_checkpoint_are_refused_over_a_rewrite(
    backend: Backend,
) -> None:
    signer = make_signer()  # signs the store's first append, then only when asked
    store = backend.open(signer)
    try:
        await store.append([make_event(1), make_event(2)])  # the signer's mark: seq 2
        backend.rewrite(1, {"note": "rewritten and re-chained"})
        batches = [([make_event(10 + i)], i % 4 == 1) for i in range(20)]
        outcomes = await asyncio.gather(
            *(store.append(events, checkpoint=forced) for events, forced in batches),
            return_exceptions=True,
        )
    finally:
        await store.close()

    for (events, forced), outcome in zip(batches, outcomes, strict=True):
        if forced:
            assert isinstance(outcome, AuditTamperedError), outcome
        else:
            assert isinstance(outcome, list) and [s.event for s in outcome] == events
    stored_ids = {str(row[0]) for row in backend.query("SELECT id FROM {t}")}
    assert stored_ids == {make_event(n).id for n in (1, 2)} | {
        events[0].id for events, forced in batches if not forced
    }
    # Nothing was signed over the rewrite.
    assert checkpoint_seqs(backend) == [2]


async def test_checkpoints_in_a_group_are_those_of_appends_in_turn(
    backend: Backend, tmp_path: Path
) -> None:
    marks = tmp_path / "audit.checkpoints.json"
    signer = make_signer(marks=marks, every_events=7)
    batches = [
        ([make_event(2 * i, ns="cp"), make_event(2 * i + 1, ns="cp")], i % 9 == 4)
        for i in range(100)
    ]
    batches[50] = ([make_event(0, ns="cp")], True)  # nothing new: nothing to sign
    store = backend.open(signer)
    try:
        results = await asyncio.gather(
            *(store.append(events, checkpoint=forced) for events, forced in batches)
        )
        verdict = await store.verify(trusted_keys=[signer.fingerprint], marks=marks)
        transactions = commits(store)
    finally:
        await store.close()

    # What the same appends, one after the other, would have signed.
    expected: list[int] = []
    head = 0
    for (_, forced), got in zip(batches, results, strict=True):
        newest = max(s.seq for s in got)
        if newest > head:
            if forced or not expected or newest - expected[-1] >= 7:
                expected.append(newest)
            head = newest
    assert transactions <= 10
    assert checkpoint_seqs(backend) == expected
    assert (verdict.ok, verdict.count, verdict.checkpoints) == (True, 198, len(expected))
    assert verdict.covered == expected[-1]
    # The signer's mark is the newest checkpoint, recorded once its group committed.
    store_id = str(backend.query("SELECT store_id FROM {s}")[0][0])
    assert read_marks(marks)[store_id][signer.fingerprint].seq == expected[-1]


async def test_a_cancelled_waiter_leaves_the_others_fine(backend: Backend) -> None:
    cancelled = {0, 1, 30, 59}
    batches = [[make_event(2 * i + 1), make_event(2 * i + 2)] for i in range(60)]
    store = backend.open()
    try:
        await store.append([make_event(0)])
        tasks = [asyncio.create_task(store.append(batch)) for batch in batches]
        await asyncio.sleep(0)  # every append queued, the first group committing
        for i in cancelled:
            tasks[i].cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        more = await store.append([make_event(1000)])
        stored = await store.events()
        verdict = await store.verify()
    finally:
        await store.close()

    stored_by_id = by_id(stored)
    for i, (batch, outcome) in enumerate(zip(batches, outcomes, strict=True)):
        if i in cancelled:
            assert isinstance(outcome, asyncio.CancelledError)
            # Written whole or not at all (it may have been in the transaction already).
            assert sum(event.id in stored_by_id for event in batch) in (0, 2)
        else:
            assert outcome == [stored_by_id[event.id] for event in batch]
    assert stored[-1] == more[0]
    assert [s.seq for s in stored] == list(range(1, len(stored) + 1))
    assert (verdict.ok, verdict.count) == (True, len(stored))


async def test_closing_answers_every_pending_append(backend: Backend) -> None:
    store = backend.open()
    queued = [[make_event(2 * i), make_event(2 * i + 1)] for i in range(50)]
    late = [[make_event(1000 + i)] for i in range(5)]
    before = [asyncio.create_task(store.append(batch)) for batch in queued]
    await asyncio.sleep(0)  # all of them waiting for a transaction
    closing = asyncio.create_task(store.close())
    after = [asyncio.create_task(store.append(batch)) for batch in late]
    # No hang: closing waits for the pending appends, which complete.
    await asyncio.wait_for(closing, timeout=30)
    committed = await asyncio.wait_for(asyncio.gather(*before), timeout=30)
    refused = await asyncio.gather(*after, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "closed" in str(r) for r in refused)

    reopened = backend.open()
    try:
        stored = await reopened.events()
        verdict = await reopened.verify()
    finally:
        await reopened.close()
    assert [s for got in committed for s in got] == stored
    assert (verdict.ok, verdict.count) == (True, 100)


@settings(deadline=None)
@given(
    batches=st.lists(
        st.tuples(st.lists(st.integers(0, 15), max_size=5), st.booleans()), max_size=8
    ),
    stored_before=st.integers(0, 4),
    checkpoint_before=st.sampled_from([None, 0, 1, 2]),
)
def test_chain_group_is_appending_in_turn(
    batches: list[tuple[list[int], bool]], stored_before: int, checkpoint_before: int | None
) -> None:
    """The pure plan: a group chains exactly as its batches appended one after another."""
    signer = make_signer(every_events=3)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    # The store already holds events 100.., some of which the batches repeat.
    prior, _ = chain_batch([make_event(100 + n) for n in range(stored_before)], {}, None, T0)
    existing = {s.event.id: s for s in prior}
    head = (prior[-1].seq, prior[-1].hash) if prior else None
    last = None
    if checkpoint_before is not None and checkpoint_before <= stored_before:
        last = (checkpoint_before, now - timedelta(minutes=1))
    group = [
        ([make_event(n if n < 12 else 88 + n, note=f"batch {b}") for n in numbers], force)
        for b, (numbers, force) in enumerate(batches)
    ]

    plan = chain_group(group, existing, head, now, signer=signer, last_checkpoint=last)

    # The same batches appended one after another.
    known, results, rows = dict(existing), [], []
    heads: list[tuple[int, StoredEvent]] = []
    for b, (events, force) in enumerate(group):
        got, new = chain_batch(events, known, head, now)
        results.append(got)
        rows += new
        known.update({r.stored.event.id: r.stored for r in new})
        if new:
            newest = new[-1].stored
            head = (newest.seq, newest.hash)
            if force or signer.due(last, newest.seq, now):
                heads.append((b, newest))
                last = (newest.seq, now)
    assert (plan.results, plan.rows, plan.heads) == (results, rows, heads)
    error = ValueError("the marks file cannot be written")
    carriers = {b for b, _ in heads}
    assert plan.outcomes() == results
    assert plan.outcomes(error) == [error if b in carriers else r for b, r in enumerate(results)]


@pytest.mark.parametrize("size", [1, 3])
async def test_a_group_with_nothing_new_commits_nothing_new(backend: Backend, size: int) -> None:
    signer = make_signer(every_events=1)
    store = backend.open(signer)
    try:
        first = await store.append([make_event(1), make_event(2)])
        again = await asyncio.gather(
            *(store.append([make_event(2), make_event(1)], checkpoint=True) for _ in range(size))
        )
    finally:
        await store.close()
    assert again == [[first[1], first[0]]] * size
    assert checkpoint_seqs(backend) == [2]
