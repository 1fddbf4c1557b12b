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
from tests.security.security_workflows import pay, wire


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
        # Wait until the record has failed at least once, then end the outage.
        for _ in range(300):
            described = await handle.describe()
            failed = [
                p
                for p in described.raw_description.pending_activities
                if p.HasField("last_failure")
            ]
            if failed:
                assert "AuditRecordError" in str(failed[0].last_failure)
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the call record never failed: the test did not test anything")
        with sqlite3.connect(audit_file) as db:
            db.execute("DROP TRIGGER outage")
        assert await handle.result() == "sent 50000"
    with sqlite3.connect(tmp_path / "wires.db") as db:
        sent = db.execute("SELECT count(*) FROM sent").fetchone()[0]
    assert sent == 1, "the wire went out twice"
    calls = [e for e in await gov.events(run_id) if e.kind == "tool.call"]
    assert len(calls) == 1
    assert calls[0].data["result"] == "sent 50000" and calls[0].data["attempt"] == 1
    assert await gov.chain_ok()
