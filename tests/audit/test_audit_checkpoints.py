"""Signed checkpoints: a rewrite by someone with write access to the store is caught.

The attacks are run as they would be: on SQLite by whoever can write the file, on PostgreSQL
by the admin who owns the tables (the superuser ``root``), each dropping the append-only
triggers first. The worker role itself cannot even do that (the PostgreSQL tests at the end).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from jamjet_temporal.audit import AuditStore, PostgresAuditStore, open_store
from jamjet_temporal.audit._chain import ChainRow, ChainVerdict, ChainWalker
from jamjet_temporal.audit._checkpoint import (
    CheckpointCheck,
    CheckpointMark,
    CheckpointSigner,
    read_marks,
)
from jamjet_temporal.audit._keys import (
    checkpoint_marks_path,
    fingerprint,
    load_or_create_signing_key,
)
from jamjet_temporal.audit._store import chain_batch
from jamjet_temporal.errors import AuditTamperedError, ConfigError, JamJetError
from tests.audit.audit_support import (
    PG_ADDRESS,
    PG_DSN,
    T0,
    Backend,
    Backends,
    append_signing,
    make_event,
    make_signer,
    pg_worker_dsn,
)

REFUSED = (sqlite3.DatabaseError, psycopg.Error)


def checkpoint_seqs(backend: Backend) -> list[int]:
    return [int(str(row[0])) for row in backend.query("SELECT seq FROM {c} ORDER BY seq")]


async def append_numbers(store: AuditStore, *numbers: int, checkpoint: bool = False) -> None:
    await store.append([make_event(n) for n in numbers], checkpoint=checkpoint)


def chain_only(backend: Backend) -> ChainVerdict:
    """What verification said before checkpoints: the chain's links alone."""
    walker = ChainWalker()
    rows = backend.query(
        "SELECT seq, id, run_id, kind, body, prev_hash, hash FROM {t} ORDER BY seq"
    )
    for seq, *rest in rows:
        failed = walker.check(ChainRow(int(str(seq)), *(str(v) for v in rest)))
        if failed is not None:
            return failed
    return walker.verdict()


async def test_checkpoints_follow_the_cadence_and_the_end_of_runs(backend: Backend) -> None:
    signer = make_signer(every_events=3)
    store = backend.open(signer)
    try:
        await append_numbers(store, 1)  # the store's first checkpoint
        await append_numbers(store, 2)
        await append_numbers(store, 3, 4)  # 3 events since the last one
        await append_numbers(store, 5, checkpoint=True)  # a run closed
        await append_numbers(store, 5, checkpoint=True)  # a retry: nothing new, nothing signed
        assert checkpoint_seqs(backend) == [1, 4, 5]

        trusted = await store.verify(trusted_keys=[signer.fingerprint])
        assert (trusted.ok, trusted.count, trusted.checkpoints, trusted.covered) == (True, 5, 3, 5)
        assert trusted.signers == {signer.fingerprint: True} and trusted.covered_all
        # Signatures are checked either way; only trusted ones count as coverage.
        untrusted = await store.verify()
        assert (untrusted.ok, untrusted.checkpoints, untrusted.covered) == (True, 3, 0)
        assert untrusted.signers == {signer.fingerprint: False} and not untrusted.covered_all
    finally:
        await store.close()

    hurried = backend.open(make_signer(every=timedelta(microseconds=1)))
    try:
        await append_numbers(hurried, 6)
        await append_numbers(hurried, 7)
    finally:
        await hurried.close()
    assert checkpoint_seqs(backend) == [1, 4, 5, 6, 7]


async def test_checkpointing_needs_a_signer(store: AuditStore) -> None:
    with pytest.raises(ValueError, match="signer"):
        await store.append([make_event(1)], checkpoint=True)
    assert await store.events() == []


async def test_a_rewrite_rechained_under_a_checkpoint_is_named(backend: Backend) -> None:
    signer = make_signer(every_events=2)
    store = backend.open(signer)
    try:
        for pair in ((1, 2), (3, 4), (5, 6)):
            await append_numbers(store, *pair)
        signed_head = (await store.events())[3].hash
        assert checkpoint_seqs(backend) == [2, 4, 6]

        backend.rewrite(3, {"n": 3, "note": "nothing to see here"})

        assert chain_only(backend).ok, "the re-chained links all hold: the chain alone is fooled"
        verdict = await store.verify(trusted_keys=[signer.fingerprint])
    finally:
        await store.close()
    now_head = str(backend.query("SELECT hash FROM {t} WHERE seq = 4")[0][0])
    assert (verdict.ok, verdict.problem, verdict.seq) == (False, "checkpoint_mismatch", 4)
    assert verdict.event_id == make_event(4).id
    assert verdict.detail == (
        f"checkpoint at seq 4 signed head {signed_head}, but the chain now has {now_head} "
        "there: events at or before seq 4 (after seq 2, whose checkpoint still matches) were "
        "rewritten"
    )


async def test_removed_checkpoints_leave_the_store_uncovered(backend: Backend) -> None:
    signer = make_signer(every_events=2)
    store = backend.open(signer)
    try:
        for pair in ((1, 2), (3, 4), (5, 6)):
            await append_numbers(store, *pair)
        backend.drop_append_only("audit_checkpoints")
        backend.execute("DELETE FROM {c} WHERE seq = 6")
        newest_gone = await store.verify(trusted_keys=[signer.fingerprint])
        backend.execute("DELETE FROM {c}")
        backend.rewrite(3, {"n": 3, "note": "rewritten, checkpoints deleted"})
        all_gone = await store.verify(trusted_keys=[signer.fingerprint])
    finally:
        await store.close()
    assert (newest_gone.ok, newest_gone.covered, newest_gone.count) == (True, 4, 6)
    assert not newest_gone.covered_all
    # Nothing contradicts the rewritten chain any more, but nothing vouches for it either.
    assert (all_gone.ok, all_gone.checkpoints, all_gone.covered, all_gone.signers) == (
        True,
        0,
        0,
        {},
    )
    assert not all_gone.covered_all


# ------------------------------------------------------------ the signer's high-water mark


def store_id_of(backend: Backend) -> str:
    return str(backend.query("SELECT store_id FROM {s}")[0][0])


def event_count(backend: Backend) -> int:
    return int(str(backend.query("SELECT count(*) FROM {t}")[0][0]))


async def test_a_worker_refuses_to_re_sign_a_rewrite_whose_checkpoints_were_deleted(
    backend: Backend, tmp_path: Path
) -> None:
    """The attack end to end: rewrite, re-chain, delete the checkpoints, wait for a worker."""
    key = load_or_create_signing_key(tmp_path / "audit-signing.key")
    marks = checkpoint_marks_path(tmp_path / "audit-signing.key")
    signer = make_signer(key, marks=marks, every_events=2)
    store = backend.open(signer)
    try:
        for pair in ((1, 2), (3, 4), (5, 6)):
            await append_numbers(store, *pair)
        signed_head = (await store.events())[5].hash
        assert checkpoint_seqs(backend) == [2, 4, 6]

        # The database's owner: triggers dropped, event 3 edited, every hash after it
        # recomputed, the checkpoints that would give it away (seq >= 3) deleted.
        backend.rewrite(3, {"n": 3, "note": "nothing to see here"})
        backend.drop_append_only("audit_checkpoints")
        backend.execute("DELETE FROM {c} WHERE seq >= 3")
        rewritten_head = str(backend.query("SELECT hash FROM {t} WHERE seq = 6")[0][0])
        assert chain_only(backend).ok

        # The next worker append (a checkpoint is due: 5 events since seq 2) is refused...
        with pytest.raises(AuditTamperedError) as live:
            await append_numbers(store, 7)
    finally:
        await store.close()
    # ...and so is the first append of a worker restarted since: the mark is on disk.
    restarted = backend.open(make_signer(key, marks=marks))
    try:
        with pytest.raises(AuditTamperedError) as after_restart:
            await append_numbers(restarted, 7, checkpoint=True)
        uncovered = await restarted.verify(trusted_keys=[signer.fingerprint])
        with_marks = await restarted.verify(trusted_keys=[signer.fingerprint], marks=marks)
    finally:
        await restarted.close()

    store_id = store_id_of(backend)
    for refused in (live.value, after_restart.value):
        assert isinstance(refused, JamJetError)
        assert (refused.store_id, refused.signer, refused.mark, refused.marks) == (
            store_id,
            signer.fingerprint,
            CheckpointMark(seq=6, head=signed_head),
            marks,
        )
        assert refused.reason == (
            f"the chain now has {rewritten_head} there: events at or before seq 6 were "
            "rewritten and re-chained"
        )
        assert str(refused).startswith(
            f"audit store {store_id} contradicts what its signing key signed: key "
            f"{signer.fingerprint} signed head {signed_head} at seq 6, but the chain now has"
        )
        assert "Nothing was appended and no checkpoint signed" in str(refused)
        assert "jamjet audit verify-store" in str(refused)
        assert str(refused).endswith(
            "fix: put back a copy of the store that still holds that head, or, only if its loss "
            f"is accepted, remove store {store_id} from {marks} and restart the workers"
        )
    # Nothing appended, nothing signed: the rewrite stays uncovered, never vouched for.
    assert event_count(backend) == 6
    assert checkpoint_seqs(backend) == [2]
    assert (uncovered.ok, uncovered.covered, uncovered.count) == (True, 2, 6)
    assert not uncovered.covered_all
    # With this host's marks, verification names the contradiction itself.
    assert (with_marks.ok, with_marks.problem, with_marks.seq) == (False, "mark_missing", 6)
    assert with_marks.event_id == make_event(6).id
    assert with_marks.detail == (
        f"this host's checkpoint marks say key {signer.fingerprint} signed head {signed_head} "
        f"at seq 6, but the chain now has {rewritten_head} there: events at or before seq 6 "
        "were rewritten and re-chained"
    )


GONE = "that checkpoint is no longer in the store: checkpoints were removed or replaced"


def delete_checkpoints(backend: Backend) -> None:
    backend.drop_append_only("audit_checkpoints")
    backend.execute("DELETE FROM {c} WHERE seq >= 3")


def cut_the_newest_events(backend: Backend) -> None:
    backend.drop_append_only("audit_checkpoints")
    backend.drop_append_only()
    backend.execute("DELETE FROM {c} WHERE seq >= 3")
    backend.execute("DELETE FROM {t} WHERE seq >= 3")


def replace_the_checkpoint(backend: Backend) -> None:
    backend.drop_append_only("audit_checkpoints")
    backend.execute("DELETE FROM {c} WHERE seq >= 3")
    backend.forge_checkpoint(Ed25519PrivateKey.generate(), 4)


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        (delete_checkpoints, GONE),
        (
            cut_the_newest_events,
            "the store has no event at seq 4 (its chain ends at seq 2): events were removed",
        ),
        (replace_the_checkpoint, GONE),
    ],
    ids=["checkpoints-deleted", "newest-events-cut", "checkpoint-replaced"],
)
async def test_a_worker_refuses_a_store_that_lost_what_its_key_signed(
    backend: Backend, attack: Callable[[Backend], None], reason: str
) -> None:
    # In memory only (no marks file): a running worker is protected all the same.
    signer = make_signer(every_events=2)
    store = backend.open(signer)
    try:
        await append_numbers(store, 1, 2)
        await append_numbers(store, 3, 4)
        attack(backend)
        before = (event_count(backend), checkpoint_seqs(backend))
        with pytest.raises(AuditTamperedError) as refused:
            await append_numbers(store, 5, 6, checkpoint=True)
    finally:
        await store.close()
    assert (refused.value.mark.seq, refused.value.marks) == (4, None)
    assert refused.value.reason == reason
    assert (event_count(backend), checkpoint_seqs(backend)) == before


async def test_a_fresh_marks_file_is_made_on_first_use(backend: Backend, tmp_path: Path) -> None:
    marks = tmp_path / "keys" / "audit-signing.key.checkpoints.json"
    marks.parent.mkdir()
    signer = make_signer(marks=marks)
    store = backend.open(signer)
    try:
        assert (await store.verify(marks=marks)).ok  # no file yet: no marks
        await append_numbers(store, 1, 2)  # first use: no mark to hold, signs seq 2
        first = json.loads(marks.read_text())
        await append_numbers(store, 3)  # not due: the mark stays
        await append_numbers(store, 4, checkpoint=True)
        heads = {s.seq: s.hash for s in await store.events()}
        verdict = await store.verify(trusted_keys=[signer.fingerprint], marks=marks)
    finally:
        await store.close()
    store_id = store_id_of(backend)
    assert first == {
        "type": "jamjet.audit.checkpoint-marks/v1",
        "stores": {store_id: {signer.fingerprint: {"seq": 2, "head": heads[2]}}},
    }
    assert read_marks(marks) == {
        store_id: {signer.fingerprint: CheckpointMark(seq=4, head=heads[4])}
    }
    lock = marks.with_name(marks.name + ".lock")
    assert {stat.S_IMODE(f.stat().st_mode) for f in (marks, lock)} == {0o600}
    assert sorted(os.listdir(marks.parent)) == [marks.name, lock.name]  # no temporary file
    assert verdict.ok and verdict.covered_all


async def test_signers_sharing_a_marks_file_interleave_without_false_alarms(
    backends: Backends, tmp_path: Path
) -> None:
    """Two workers with one key and one marks file, a third with another key, two stores."""
    marks = tmp_path / "shared.checkpoints.json"
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    here, there = backends.fresh(), backends.fresh()
    signers = [make_signer(k, marks=marks, every_events=1) for k in (key, key, other)]
    stores = [b.open(s) for b in (here, there) for s in signers]
    try:
        for round_ in range(4):
            await asyncio.gather(
                *(
                    store.append([make_event(10 * round_ + i, ns="interleaved")])
                    for i, store in enumerate(stores)
                )
            )
        # A restarted worker picks the marks up from the file and goes on.
        restarted = here.open(make_signer(key, marks=marks, every_events=1))
        stores.append(restarted)
        await append_numbers(restarted, 99)
        trusted = [signers[0].fingerprint, signers[2].fingerprint]
        verdicts = [
            await s.verify(trusted_keys=trusted, marks=marks) for s in (stores[0], stores[3])
        ]
    finally:
        for store in stores:
            await store.close()
    assert [(v.ok, v.count, v.covered_all) for v in verdicts] == [
        (True, 13, True),
        (True, 12, True),
    ]
    recorded = read_marks(marks)
    for backend in (here, there):
        newest = {
            str(by): int(str(seq))
            for by, seq in backend.query("SELECT signer, max(seq) FROM {c} GROUP BY signer")
        }
        assert {fp: m.seq for fp, m in recorded[store_id_of(backend)].items()} == newest


async def test_processes_sharing_a_marks_file_never_corrupt_it(
    backend: Backend, tmp_path: Path
) -> None:
    key_path = tmp_path / "audit-signing.key"
    key = load_or_create_signing_key(key_path)
    marks = checkpoint_marks_path(key_path)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.audit.audit_support"])
    start = ctx.Barrier(3)
    # Every append signs a checkpoint and rewrites the marks file: 3 x 15 of each, racing.
    workers = [
        ctx.Process(
            target=append_signing,
            args=(backend.url, key_path, marks, range(20 * i, 20 * i + 15), start),
        )
        for i in range(3)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    # A false alarm, or a marks file read half-written, would have failed a worker.
    assert [w.exitcode for w in workers] == [0, 0, 0]
    # No writer merged over another's newer mark: the file holds the newest checkpoint.
    assert read_marks(marks)[store_id_of(backend)][fingerprint(key)].seq == 45

    store = backend.open(make_signer(key, marks=marks, every_events=1))
    try:
        await append_numbers(store, 100)
        verdict = await store.verify(trusted_keys=[fingerprint(key)], marks=marks)
    finally:
        await store.close()
    assert (verdict.ok, verdict.count, verdict.checkpoints) == (True, 46, 46)
    assert read_marks(marks)[store_id_of(backend)][fingerprint(key)].seq == 46


async def test_a_malformed_marks_file_fails_closed(backend: Backend, tmp_path: Path) -> None:
    marks = tmp_path / "audit-signing.key.checkpoints.json"
    signer = make_signer(marks=marks)
    store = backend.open(signer)
    try:
        await append_numbers(store, 1)
        marks.write_text('{"type": "jamjet.audit.checkpoint-marks/v1", "stores": []}')
        with pytest.raises(ConfigError, match="not a marks file") as refused:
            await append_numbers(store, 2, checkpoint=True)
        with pytest.raises(ConfigError, match="not a marks file"):
            await store.verify(marks=marks)
    finally:
        await store.close()
    assert f"audit checkpoint marks {marks}: not a marks file" in str(refused.value)
    assert event_count(backend) == 1


async def test_a_checkpoint_forged_with_another_key_is_refused(backend: Backend) -> None:
    signer = make_signer()
    store = backend.open(signer)
    try:
        await append_numbers(store, 1, 2, 3)
        backend.drop_append_only("audit_checkpoints")
        backend.execute("DELETE FROM {c}")
        backend.rewrite(2, {"n": 2, "note": "forged"})
        other = Ed25519PrivateKey.generate()
        backend.forge_checkpoint(other, 3)
        by_other_key = await store.verify(trusted_keys=[signer.fingerprint])
        backend.execute("DELETE FROM {c}")
        backend.forge_checkpoint(other, 3, claim=signer)
        impersonated = await store.verify(trusted_keys=[signer.fingerprint])
    finally:
        await store.close()
    other_fp = CheckpointSigner(other).fingerprint
    # A valid signature, but by a key nobody trusts: it covers nothing.
    assert (by_other_key.ok, by_other_key.covered, by_other_key.signers) == (
        True,
        0,
        {other_fp: False},
    )
    assert not by_other_key.covered_all
    assert (impersonated.ok, impersonated.problem, impersonated.seq) == (
        False,
        "checkpoint_invalid",
        3,
    )
    assert "its signature does not verify: it was forged or edited" in impersonated.detail


async def test_a_checkpoint_copied_from_another_store_is_refused(backends: Backends) -> None:
    signer = make_signer()
    here, there = backends.fresh(), backends.fresh()
    for backend in (here, there):
        store = backend.open(signer)
        try:
            await append_numbers(store, 1, 2)  # the same events: the same chain hashes
        finally:
            await store.close()
    copied = there.query(
        "SELECT seq, store_id, head, signed_at, signer, public_key, signature FROM {c}"
    )
    here.drop_append_only("audit_checkpoints")
    here.execute("DELETE FROM {c}")
    here.execute(
        "INSERT INTO {c} (seq, store_id, head, signed_at, signer, public_key, signature)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        list(copied[0]),
    )
    store = here.open()
    try:
        verdict = await store.verify(trusted_keys=[signer.fingerprint])
    finally:
        await store.close()
    assert (verdict.ok, verdict.problem, verdict.seq) == (False, "checkpoint_invalid", 2)
    assert f"it was signed for store {copied[0][1]}, not for this one" in verdict.detail


async def test_cutting_events_under_a_checkpoint_is_caught(backend: Backend) -> None:
    signer = make_signer()
    store = backend.open(signer)
    try:
        await append_numbers(store, 1, 2, 3)
        backend.drop_append_only()
        backend.execute("DELETE FROM {t} WHERE seq >= 2")
        verdict = await store.verify(trusted_keys=[signer.fingerprint])
    finally:
        await store.close()
    assert (verdict.ok, verdict.problem, verdict.seq, verdict.count) == (
        False,
        "checkpoint_beyond_end",
        3,
        1,
    )
    assert "but the chain ends at seq 1: events 2..3 were removed" in verdict.detail


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {c} SET head = 'x'",
        "DELETE FROM {c}",
        "UPDATE {s} SET store_id = 'x'",
        "DELETE FROM {s}",
    ],
)
async def test_the_database_refuses_editing_checkpoints_and_the_store_id(
    backend: Backend, statement: str
) -> None:
    store = backend.open(make_signer())
    try:
        await append_numbers(store, 1)
        with pytest.raises(REFUSED, match="append-only"):
            backend.execute(statement)
        assert (await store.verify()).checkpoints == 1
    finally:
        await store.close()


@given(
    n=st.integers(2, 10),
    marks=st.sets(st.integers(1, 10)),
    edit=st.integers(1, 10),
)
def test_no_rewrite_under_a_trusted_checkpoint_goes_unnoticed(
    n: int, marks: set[int], edit: int
) -> None:
    edit = min(edit, n)
    signer = CheckpointSigner(Ed25519PrivateKey.generate())
    _, rows = chain_batch([make_event(i) for i in range(1, n + 1)], {}, None, T0)
    checkpoints = [
        signer.sign("store", r.stored.seq, r.stored.hash, T0) for r in rows if r.stored.seq in marks
    ]
    # The attack: edit one event and re-chain every event after it.
    bodies = [r.body for r in rows]
    bodies[edit - 1] = bodies[edit - 1].replace('"note":""', '"note":"x"')
    prev = "0" * 64
    chain: list[ChainRow] = []
    for r, body in zip(rows, bodies, strict=True):
        digest = hashlib.sha256((prev + body).encode()).hexdigest()
        e = r.stored.event
        chain.append(ChainRow(r.stored.seq, e.id, e.run_id, e.kind, body, prev, digest))
        prev = digest

    walker = ChainWalker(
        CheckpointCheck(checkpoints, store_id="store", trusted=[signer.fingerprint])
    )
    verdict = next((v for row in chain if (v := walker.check(row)) is not None), None)
    verdict = verdict or walker.verdict()

    under = [seq for seq in sorted(marks) if edit <= seq <= n]
    if under:
        assert (verdict.ok, verdict.problem, verdict.seq) == (
            False,
            "checkpoint_mismatch",
            under[0],
        )
    else:
        # Above the last checkpoint: not caught, and reported as not covered.
        assert verdict.ok and verdict.covered < edit and not verdict.covered_all


# --------------------------------------------------------------------- PostgreSQL roles


@pytest.fixture
def pg(tmp_path: Path, postgres_problem: str | None) -> Iterator[Backends]:
    if postgres_problem is not None:
        pytest.skip(postgres_problem)
    made = Backends("postgres", tmp_path)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {t} SET kind = 'x'",
        "DELETE FROM {t}",
        "TRUNCATE {t}",
        "ALTER TABLE {t} DISABLE TRIGGER audit_events_append_only",
        "DROP TRIGGER audit_events_append_only ON {t}",
        "DROP TABLE {t}",
        "UPDATE {c} SET head = 'x'",
        "DELETE FROM {c}",
        "TRUNCATE {c}",
        "ALTER TABLE {c} DISABLE TRIGGER ALL",
        "UPDATE {s} SET store_id = 'x'",
        "INSERT INTO {s} VALUES (2, 'x')",
        "CREATE OR REPLACE FUNCTION {schema}.audit_events_refuse() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
        "CREATE TABLE {schema}.mine (x int)",
        "SET session_replication_role = replica",
    ],
)
async def test_the_worker_role_may_only_read_and_append(pg: Backends, statement: str) -> None:
    backend = pg.fresh()
    store = backend.open(make_signer())
    try:
        await append_numbers(store, 1, 2)
        before = await store.events()
        text = (
            statement.replace("{t}", backend.table)
            .replace("{c}", backend.name("audit_checkpoints"))
            .replace("{s}", backend.name("audit_store_id"))
            .replace("{schema}", str(backend.schema))
        )
        with psycopg.connect(pg_worker_dsn(pg.worker()), autocommit=True) as worker:
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
                worker.execute(text.encode())
        assert "permission denied" in str(refused.value) or "must be owner" in str(refused.value)
        assert await store.events() == before
        assert (await store.verify()).ok
    finally:
        await store.close()


async def test_the_store_refuses_a_superuser(pg: Backends) -> None:
    backend = pg.fresh()
    store = open_store(f"postgresql://root@{PG_ADDRESS}/test?schema={backend.schema}")
    try:
        with pytest.raises(ConfigError) as refused:
            await store.events()
    finally:
        await store.close()
    message = str(refused.value)
    assert "role root is a superuser, so it could disable" in message
    assert f"jamjet audit init-db --dsn ADMIN_DSN --schema {backend.schema}" in message


async def test_the_store_refuses_createrole_before_postgresql_16(pg: Backends) -> None:
    # Before 16, CREATEROLE may grant itself the tables' owner role, then disable the trigger.
    with psycopg.connect(PG_DSN) as conn:
        if conn.info.server_version >= 160000:
            pytest.skip("PostgreSQL 16 and later limit CREATEROLE to roles it administers")
    backend = pg.fresh()
    role = pg.role()
    with psycopg.connect(PG_DSN, autocommit=True) as root:
        root.execute(f"ALTER ROLE {role} CREATEROLE".encode())
    store = open_store(f"postgresql://{role}@{PG_ADDRESS}/test?schema={backend.schema}")
    try:
        with pytest.raises(ConfigError, match=f"role {role} has CREATEROLE"):
            await store.events()
    finally:
        await store.close()
    with pytest.raises(ConfigError, match="has CREATEROLE"):
        await PostgresAuditStore.init_db(PG_DSN, schema="jj_never", worker_role=role)


async def test_the_store_refuses_the_tables_owner_and_its_members(pg: Backends) -> None:
    admin, member = pg.role(), pg.role()
    with psycopg.connect(PG_DSN, autocommit=True) as root:
        root.execute(f"GRANT CREATE ON DATABASE test TO {admin}".encode())
        root.execute(f"GRANT {admin} TO {member}".encode())
    backend = pg.fresh(set_up=False)
    await PostgresAuditStore.init_db(
        pg_worker_dsn(admin), schema=str(backend.schema), worker_role=pg.worker()
    )
    for role, says in ((admin, f"role {admin} owns schema"), (member, f"may act as {admin}")):
        store = open_store(f"postgresql://{role}@{PG_ADDRESS}/test?schema={backend.schema}")
        try:
            with pytest.raises(ConfigError, match="init-db") as refused:
                await store.append([make_event(1)])
        finally:
            await store.close()
        assert says in str(refused.value)
    # The worker it was set up for appends.
    store = backend.open(make_signer())
    try:
        await append_numbers(store, 1)
    finally:
        await store.close()


async def test_a_schema_not_set_up_names_init_db(pg: Backends) -> None:
    backend = pg.fresh(set_up=False)
    store = backend.open()
    try:
        with pytest.raises(ConfigError, match="is not set up") as refused:
            await store.events()
    finally:
        await store.close()
    assert f"--schema {backend.schema} --worker-role" in str(refused.value)


async def test_init_db_refuses_a_missing_or_powerful_worker_role(pg: Backends) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        await PostgresAuditStore.init_db(PG_DSN, schema="jj_never", worker_role="jj_nobody")
    with pytest.raises(ConfigError, match="is a superuser"):
        await PostgresAuditStore.init_db(PG_DSN, schema="jj_never", worker_role="root")
    with psycopg.connect(PG_DSN) as conn:
        assert conn.execute("SELECT to_regnamespace('jj_never')").fetchone() == (None,)


async def test_init_db_takes_over_a_schema_the_worker_owned(pg: Backends) -> None:
    """A store made by an earlier version, created (and owned) by the worker itself."""
    worker = pg.worker()
    backend = pg.fresh(set_up=False)
    schema = str(backend.schema)
    _, rows = chain_batch([make_event(1), make_event(2)], {}, None, T0)
    with psycopg.connect(PG_DSN, autocommit=True) as root:
        root.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {worker}".encode())
        root.execute(f"SET ROLE {worker}".encode())
        root.execute(
            f"""CREATE TABLE {schema}.audit_events (
                seq bigint PRIMARY KEY CHECK (seq > 0), id text NOT NULL UNIQUE,
                run_id text NOT NULL, kind text NOT NULL, body text NOT NULL,
                prev_hash text NOT NULL, hash text NOT NULL, recorded_at timestamptz NOT NULL)
            """.encode()
        )
        root.execute(
            f"""CREATE FUNCTION {schema}.audit_events_refuse() RETURNS trigger
            LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$""".encode()
        )
        insert = f"INSERT INTO {schema}.audit_events VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        for r in rows:
            e = r.stored
            root.execute(
                insert.encode(),
                (e.seq, e.event.id, e.event.run_id, e.event.kind, r.body, e.prev_hash, e.hash, T0),
            )
    with pytest.raises(ConfigError, match=f"role {worker} owns schema"):
        store = backend.open()
        try:
            await store.events()
        finally:
            await store.close()

    store_id = await PostgresAuditStore.init_db(PG_DSN, schema=schema, worker_role=worker)
    assert await PostgresAuditStore.init_db(PG_DSN, schema=schema, worker_role=worker) == store_id

    signer = make_signer()
    store = backend.open(signer)
    try:
        before = await store.verify(trusted_keys=[signer.fingerprint])
        await append_numbers(store, 3)
        after = await store.verify(trusted_keys=[signer.fingerprint])
    finally:
        await store.close()
    assert (before.ok, before.count, before.covered) == (True, 2, 0)
    assert (after.ok, after.count, after.covered) == (True, 3, 3) and after.covered_all
    with psycopg.connect(PG_DSN) as root:
        owners = root.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
            " WHERE relnamespace = %s::regnamespace AND relkind = 'r'",
            (schema,),
        ).fetchall()
    assert owners == [("root",)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with psycopg.connect(pg_worker_dsn(worker), autocommit=True) as conn:
            conn.execute(f"ALTER TABLE {schema}.audit_events DISABLE TRIGGER ALL".encode())
