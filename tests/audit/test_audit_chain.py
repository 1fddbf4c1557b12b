"""The chain rules on rows in memory: any edit, removal or reordering is found (pure)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from jamjet_temporal.audit import ChainVerdict
from jamjet_temporal.audit._chain import GENESIS_HASH, ChainRow, ChainWalker
from jamjet_temporal.audit._store import chain_batch
from tests.audit.audit_support import T0, make_event


def chain(n: int) -> list[ChainRow]:
    _, rows = chain_batch([make_event(i) for i in range(n)], {}, None, T0)
    return [
        ChainRow(
            r.stored.seq,
            r.stored.event.id,
            r.stored.event.run_id,
            r.stored.event.kind,
            r.body,
            r.stored.prev_hash,
            r.stored.hash,
        )
        for r in rows
    ]


def walk(rows: list[ChainRow]) -> ChainVerdict:
    walker = ChainWalker()
    for row in rows:
        failed = walker.check(row)
        if failed is not None:
            return failed
    return walker.verdict()


def test_a_built_chain_verifies() -> None:
    rows = chain(4)
    assert rows[0].prev_hash == GENESIS_HASH
    assert rows[1].hash == hashlib.sha256((rows[0].hash + rows[1].body).encode()).hexdigest()
    assert walk(rows) == ChainVerdict(ok=True, count=4, head=rows[-1].hash)
    assert walk([]) == ChainVerdict(ok=True, count=0, head=GENESIS_HASH)


def test_a_batch_continues_from_the_head() -> None:
    rows = chain(3)
    results, new = chain_batch([make_event(7)], {}, (rows[-1].seq, rows[-1].hash), T0)
    assert (results[0].seq, results[0].prev_hash) == (4, rows[-1].hash)
    assert [r.stored for r in new] == results


def test_hashed_content_that_is_no_event_is_reported() -> None:
    rows = chain(2)
    body = '{"not": "an event"}'
    rows[1] = rows[1]._replace(
        body=body, hash=hashlib.sha256((rows[0].hash + body).encode()).hexdigest()
    )
    verdict = walk(rows)
    assert (verdict.seq, verdict.event_id, verdict.problem) == (2, rows[1].id, "row_mismatch")


EDITS: dict[str, Callable[[ChainRow], ChainRow]] = {
    "id": lambda r: r._replace(id=r.id + "x"),
    "run_id": lambda r: r._replace(run_id=r.run_id + "x"),
    "kind": lambda r: r._replace(kind=r.kind + "x"),
    "body": lambda r: r._replace(body=r.body.replace('"note":""', '"note":" "')),
    "prev_hash": lambda r: r._replace(prev_hash="f" * 64),
    "hash": lambda r: r._replace(hash="f" * 64),
}


@given(n=st.integers(2, 8), data=st.data())
def test_any_single_tampering_is_found_at_or_next_to_it(n: int, data: st.DataObject) -> None:
    rows = chain(n)
    how = data.draw(st.sampled_from(["seq", "remove", "swap", *EDITS]))
    # Removing the newest event leaves a valid shorter chain; the head shows that instead.
    last = n - 2 if how in ("remove", "swap") else n - 1
    i = data.draw(st.integers(0, last))
    row = rows[i]
    if how == "remove":
        del rows[i]
    elif how == "swap":
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
    elif how == "seq":
        rows[i] = row._replace(seq=data.draw(st.integers(-5, 20).filter(lambda s: s != row.seq)))
    else:
        rows[i] = EDITS[how](row)

    verdict = walk(rows)

    assert not verdict.ok
    assert verdict.count in (i, i + 1)
    assert verdict.seq is not None and verdict.event_id is not None
