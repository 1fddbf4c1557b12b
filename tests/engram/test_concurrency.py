"""Two stores (two workers) on one database, writing one user's memory at the same time.

Supersession reads a fact's chain and then extends it, so concurrent writers to one user must
take turns: otherwise both would supersede the same value and leave two current ones (or
insert the same fact twice). Runs on SQLite and on PostgreSQL (see conftest).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from jamjet_temporal.memory import ContextRequest, FactInput, IngestRequest, Message
from jamjet_temporal.memory._store import SQLMemory

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SESSIONS = 30


def session(n: int) -> IngestRequest:
    """Session ``n``: the user moved to city ``n``, and says one more thing about it."""
    return IngestRequest(
        user="sunil",
        session=f"s{n}",
        at=T0 + timedelta(days=n),
        messages=[
            Message(content=f"I moved to city{n} this week"),
            Message(role="assistant", content="Noted"),
        ],
        facts=[
            FactInput(attribute="location", value=f"city{n}", sources=[f"s{n}:1"]),
            FactInput(value="sunil likes the harbour walk", sources=[f"s{n}:1"]),
        ],
    )


def run_together(*jobs: Callable[[], object]) -> None:
    """Run the jobs on threads started at one barrier; re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def worker(job: Callable[[], object]) -> None:
        try:
            barrier.wait()
            job()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"
    if errors:
        raise errors[0]


def test_two_stores_ingesting_one_user_keep_one_consistent_chain(
    open_store: Callable[[], SQLMemory],
) -> None:
    first, second = open_store(), open_store()
    order = list(range(1, SESSIONS + 1))

    # Both start on a store never used (first use creates the tables: concurrently too), one
    # oldest session first, the other newest first, so they keep inserting into each other's
    # chain; every session is ingested by both (an activity retried on another worker).
    run_together(
        lambda: [first.ingest(session(n)) for n in order],
        lambda: [second.ingest(session(n)) for n in reversed(order)],
    )

    for memory in (first, second):
        history = memory.facts("sunil", attribute="location", include_superseded=True)
        assert [f.value for f in history] == [f"city{n}" for n in order]
        assert [f.value for f in memory.facts("sunil", attribute="location")] == [f"city{SESSIONS}"]
        assert [f.sessions for f in history] == [[f"s{n}"] for n in order]
        for older, newer in pairwise(history):
            assert older.superseded_by == newer.id and newer.supersedes == older.id
            assert older.valid_to == newer.valid_from
            assert older.superseded_at is not None
        assert history[0].supersedes is None
        assert history[-1].superseded_by is None and history[-1].valid_to is None
        plain = [f for f in memory.facts("sunil") if f.attribute is None]
        assert len(plain) == 1 and sorted(plain[0].sessions) == sorted(f"s{n}" for n in order)
        assert len(memory.episodes("sunil")) == 2 * SESSIONS

    context = first.context(ContextRequest(user="sunil", topic="location city", budget_tokens=200))
    assert context.facts[0].text == f"location: city{SESSIONS}"
    assert context.facts[0].superseded[:2] == [f"city{SESSIONS - 1}", f"city{SESSIONS - 2}"]


def test_writers_to_different_users_do_not_disturb_each_other(
    open_store: Callable[[], SQLMemory],
) -> None:
    stores = [open_store() for _ in range(3)]
    users = ["ana", "bo", "cy"]

    def write(memory: SQLMemory, user: str) -> Callable[[], None]:
        def job() -> None:
            for n in range(1, 11):
                memory.ingest(session(n).model_copy(update={"user": user}))

        return job

    run_together(*(write(memory, user) for memory, user in zip(stores, users, strict=True)))

    for user in users:
        current = stores[0].facts(user, attribute="location")
        assert [f.value for f in current] == ["city10"]
        assert len(stores[0].facts(user, include_superseded=True)) == 11
