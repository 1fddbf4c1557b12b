"""Attack (by accident): the audit store fails right after a tool's side effect.

The call record used to be written after the body, and a failed write failed the activity, so
Temporal retried the BODY: the wire went out twice while the trail showed one call. Now the
result is kept in the activity's heartbeat details, the retry writes only the record, and the
tool runs once.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from pathlib import Path

from temporalio.worker import Worker

from tests.security.conftest import MakeGoverned
from tests.security.security_workflows import (
    ask,
    ask_during_outage,
    pay,
    pay_rejected,
    wire,
    wire_rejected,
)


async def test_the_tool_body_runs_once_when_recording_its_call_fails(
    governed: MakeGoverned, tmp_path: Path
) -> None:
    gov = await governed()
    audit_file = gov.audit_url.removeprefix("sqlite:///")
    os.environ["JAMJET_TEST_WIRE_LEDGER"] = str(tmp_path / "wires.db")
    os.environ["JAMJET_TEST_AUDIT_FILE"] = audit_file
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"wire-{uuid.uuid4().hex[:8]}"
    async with Worker(gov.client, task_queue=queue, workflows=[pay], activities=[wire]):
        handle = await gov.client.start_workflow(pay.run, 50_000.0, id=run_id, task_queue=queue)
        await lift_outage_after_a_failed_record(handle, audit_file, "outage")
        assert await handle.result() == "sent 50000"
    with sqlite3.connect(tmp_path / "wires.db") as db:
        sent = db.execute("SELECT count(*) FROM sent").fetchone()[0]
    assert sent == 1, "the wire went out twice"
    calls = [e for e in await gov.events(run_id) if e.kind == "tool.call"]
    assert len(calls) == 1
    assert calls[0].data["result"] == "sent 50000" and calls[0].data["attempt"] == 1
    assert await gov.chain_ok()


async def lift_outage_after_a_failed_record(handle: object, audit_file: str, trigger: str) -> None:
    """Wait until a record failed (the attempt failed with AuditRecordError), then lift it."""
    for _ in range(300):
        described = await handle.describe()  # type: ignore[attr-defined]
        failed = [
            p for p in described.raw_description.pending_activities if p.HasField("last_failure")
        ]
        if failed:
            assert "AuditRecordError" in str(failed[0].last_failure), failed[0].last_failure
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("no record failed: the test did not test anything")
    with sqlite3.connect(audit_file) as db:
        db.execute(f"DROP TRIGGER {trigger}")


async def test_a_tool_that_fails_after_its_effect_runs_once_when_recording_the_failure_fails(
    governed: MakeGoverned, tmp_path: Path
) -> None:
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import ActivityError, ApplicationError

    gov = await governed()
    audit_file = gov.audit_url.removeprefix("sqlite:///")
    os.environ["JAMJET_TEST_WIRE_LEDGER"] = str(tmp_path / "wires.db")
    os.environ["JAMJET_TEST_AUDIT_FILE"] = audit_file
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"rej-{uuid.uuid4().hex[:8]}"
    async with Worker(
        gov.client, task_queue=queue, workflows=[pay_rejected], activities=[wire_rejected]
    ):
        handle = await gov.client.start_workflow(
            pay_rejected.run, 50_000.0, id=run_id, task_queue=queue
        )
        await lift_outage_after_a_failed_record(handle, audit_file, "outage_tool_call")
        try:
            await handle.result()
            raise AssertionError("the rejection was lost")
        except WorkflowFailureError as err:
            cause = err.cause
    # The workflow sees the tool's own final error, not the bookkeeping one.
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "BankError" and cause.cause.non_retryable
    with sqlite3.connect(tmp_path / "wires.db") as db:
        assert db.execute("SELECT count(*) FROM sent").fetchone()[0] == 1, "the wire went twice"
    calls = [e.data for e in await gov.events(run_id) if e.kind == "tool.call"]
    assert [(c["outcome"], c["attempt"]) for c in calls] == [("failed", 1)]
    assert "the bank rejected the confirmation" in str(calls[0]["error"])


async def test_a_model_call_whose_record_fails_is_not_made_again(
    governed: MakeGoverned, model_server: object
) -> None:
    gov = await governed()
    audit_file = gov.audit_url.removeprefix("sqlite:///")
    os.environ["JAMJET_TEST_AUDIT_FILE"] = audit_file
    marker = uuid.uuid4().hex
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"ask-{uuid.uuid4().hex[:8]}"
    async with Worker(
        gov.client, task_queue=queue, workflows=[ask], activities=[ask_during_outage]
    ):
        handle = await gov.client.start_workflow(ask.run, marker, id=run_id, task_queue=queue)
        await lift_outage_after_a_failed_record(handle, audit_file, "outage_model_call")
        answer = await handle.result()
    assert answer.startswith("[gpt-4o-mini]")
    asked = [c for c in model_server.calls() if marker in str(c["messages"])]  # type: ignore[attr-defined]
    assert len(asked) == 1, "the model was called (and paid) again"
    kinds = [e.kind for e in await gov.events(run_id)]
    assert kinds.count("model.call") == 1 and kinds.count("tool.call") == 1
    assert await gov.chain_ok()
