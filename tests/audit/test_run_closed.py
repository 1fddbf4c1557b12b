"""A run's trail ends with ``run.closed``, durable before Temporal learns the run is over.

The worker's runner appends it as it completes the run (no local activity, no second workflow
activation per run): these tests show it is there, checkpointed and stored before the close;
that a store which cannot take it holds the run open (the workflow task fails and is retried)
until it can, stored once; that a ``debug_mode`` worker records it too; and that replaying a
closed run stores nothing.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.worker import Replayer, Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal._shared._wire import CLOSED_BY_WORKER_PATCH, RUN_CLOSED
from jamjet_temporal.audit import StoredEvent, open_store
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.plugin import AuditConfig
from tests.audit.closing_workflows import ForgesARecord, NotesThenWaits, note
from tests.task_failures import first_task_failure


@pytest.fixture
def audit_db(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
async def governed(temporal_server: DevServer, audit_db: Path) -> Client:
    config = JamJetConfig(audit=AuditConfig(store=f"sqlite:///{audit_db}"))
    return await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])


async def stored(audit_db: Path, run_id: str | None = None) -> list[StoredEvent]:
    store = open_store(f"sqlite:///{audit_db}")
    try:
        return await store.events(run_id)
    finally:
        await store.close()


async def start(client: Client, queue: str) -> WorkflowHandle[NotesThenWaits, str]:
    return await client.start_workflow(
        NotesThenWaits.run, "hello", id=f"close-{uuid.uuid4().hex[:8]}", task_queue=queue
    )


async def noted(audit_db: Path, run_id: str) -> None:
    """Until the run's tool call is recorded (the run then waits for ``finish``)."""
    for _ in range(200):
        if any(s.event.kind == "tool.call" for s in await stored(audit_db, run_id)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the run's tool call was never recorded")


async def completed(
    client: Client, audit_db: Path, **worker: object
) -> WorkflowHandle[NotesThenWaits, str]:
    """One run on a worker of ours (``worker``: more of its options), finished and checked."""
    queue = f"q-{uuid.uuid4().hex[:6]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[NotesThenWaits],
        activities=[note],
        **worker,  # type: ignore[arg-type]
    ):
        handle = await start(client, queue)
        await noted(audit_db, handle.id)
        await handle.signal(NotesThenWaits.finish, "complete")
        assert await handle.result() == "noted: hello"
    return handle


async def test_run_closed_is_stored_and_checkpointed_before_the_run_closes_with_no_activity(
    governed: Client, audit_db: Path
) -> None:
    handle = await completed(governed, audit_db)
    closed = [s for s in await stored(audit_db, handle.id) if s.event.kind == RUN_CLOSED]
    assert [s.event.data["outcome"] for s in closed] == ["completed"]
    description = await handle.describe()
    assert description.close_time is not None
    assert closed[0].recorded_at <= description.close_time
    history = (await handle.fetch_history()).events
    markers = [
        e.marker_recorded_event_attributes
        for e in history
        if e.HasField("marker_recorded_event_attributes")
    ]
    # The patch marker of the hand-over, and no local activity (Temporal records each as a
    # marker), so no activation of its own; no activity of the runtime's either.
    assert any(CLOSED_BY_WORKER_PATCH in str(m.details) for m in markers), markers
    assert not [m for m in markers if m.marker_name == "core_local_activity"]
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled == ["test-closing.note"]
    with sqlite3.connect(audit_db) as db:
        (signed,) = db.execute("SELECT max(seq) FROM audit_checkpoints").fetchone()
    assert signed >= closed[0].seq, "no checkpoint covers the run's trail"


async def test_a_locked_store_holds_the_run_open_until_run_closed_is_durable(
    governed: Client, audit_db: Path
) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    async with Worker(governed, task_queue=queue, workflows=[NotesThenWaits], activities=[note]):
        handle = await start(governed, queue)
        await noted(audit_db, handle.id)
        # Another process holds the store's write lock while the run completes.
        lock = sqlite3.connect(audit_db, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            await handle.signal(NotesThenWaits.finish, "fail")
            failure = await first_task_failure(handle)
            assert "run.closed audit event could not be recorded" in failure, failure
            assert (await handle.describe()).status.name == "RUNNING"
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    closed = [s for s in await stored(audit_db, handle.id) if s.event.kind == RUN_CLOSED]
    assert [s.event.data["outcome"] for s in closed] == ["failed"]
    store = open_store(f"sqlite:///{audit_db}")
    try:
        assert (await store.verify()).ok
    finally:
        await store.close()


async def test_a_debug_mode_worker_records_run_closed(governed: Client, audit_db: Path) -> None:
    # In debug mode, activations run on the worker's event loop itself.
    handle = await completed(governed, audit_db, debug_mode=True)
    kinds = [s.event.kind for s in await stored(audit_db, handle.id)]
    assert kinds.count(RUN_CLOSED) == 1, kinds


async def test_replaying_a_closed_run_stores_nothing(governed: Client, audit_db: Path) -> None:
    handle = await completed(governed, audit_db)
    # Replayed with the trail moved away: a completion in history was only ever sent after
    # its run.closed was durable, so a replay has nothing to record.
    os.replace(audit_db, audit_db.with_name("kept.db"))
    config = JamJetConfig(audit=AuditConfig(store=f"sqlite:///{audit_db}"))
    replayer = Replayer(workflows=[NotesThenWaits], plugins=[JamJetPlugin(config)])
    await replayer.replay_workflow(await handle.fetch_history())
    assert not await asyncio.to_thread(audit_db.exists) or await stored(audit_db) == []


async def test_workflow_code_cannot_slip_events_through_the_hand_over(
    governed: Client, audit_db: Path
) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    async with Worker(governed, task_queue=queue, workflows=[ForgesARecord]):
        handle = await governed.start_workflow(
            ForgesARecord.run, id=f"forge-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
        failure = await first_task_failure(handle)
        assert "not this run's run.closed" in failure, failure
        assert (await handle.describe()).status.name == "RUNNING"
        await handle.terminate()
    kinds = [s.event.kind for s in await stored(audit_db, handle.id)]
    assert "approval.decided" not in kinds and RUN_CLOSED not in kinds, kinds
