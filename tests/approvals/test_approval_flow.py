"""Durable approvals on the real dev server: signal, update, refusals, thresholds, crashes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.bank import send
from jamjet_temporal import JamJetConfig, JamJetPlugin, acting_as, engram
from jamjet_temporal._shared._wire import DECIDE_SIGNAL, PENDING_QUERY
from jamjet_temporal.approvals._client import find_pending, list_pending, sign, submit
from jamjet_temporal.approvals._identity import action_digest
from jamjet_temporal.approvals._workflow import PendingApproval
from jamjet_temporal.audit import AuditEvent, open_store
from jamjet_temporal.cli._devserver import DevServer, temporal_cli
from jamjet_temporal.plugin import AuditConfig, MemoryConfig
from jamjet_temporal.policy import Policy
from tests.approvals.approval_workflows import pay
from tests.approvals.conftest import Approvals
from tests.engram import engram_workflows
from tests.identities import PORTAL
from workflows.transfer import transfer

ROOT = Path(__file__).resolve().parent.parent.parent


async def start_transfer(
    client: Client, queue: str, amount: float, *, requester: str = "requester@example.com"
) -> tuple[WorkflowHandle[object, str], PendingApproval]:
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    with acting_as(requester, signer=PORTAL):
        handle = await client.start_workflow(
            transfer.run, args=[amount, "ACME GmbH"], id=run_id, task_queue=queue
        )
    return handle, await wait_pending(client, run_id)


async def wait_pending(client: Client, run_id: str) -> PendingApproval:
    for _ in range(100):
        try:
            return await find_pending(client, run_id, None)
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{run_id} never asked for approval")


async def audit_of(approvals: Approvals, run_id: str) -> list[AuditEvent]:
    store = open_store(approvals.audit_url)
    try:
        return [s.event for s in await store.events(run_id)]
    finally:
        await store.close()


def transfers_booked(ledger: Path, txn: str | None = None) -> int:
    with sqlite3.connect(ledger) as db:
        return int(db.execute("SELECT count(*) FROM transfers").fetchone()[0])


@pytest.mark.usefixtures("approval_worker")
async def test_approve_by_signal_from_the_temporal_cli(
    approval_client: Client, task_queue: str, approvals: Approvals, temporal_server: DevServer
) -> None:
    handle, request = await start_transfer(approval_client, task_queue, 50_000)
    signed = sign(approvals.who["alice"], request, "approved", "looks right")
    await asyncio.to_thread(
        subprocess.run,
        [
            temporal_cli(),
            "workflow",
            "signal",
            "--address",
            temporal_server.address,
            "--workflow-id",
            handle.id,
            "--name",
            DECIDE_SIGNAL,
            "--input",
            signed.model_dump_json(),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    txn = await handle.result()
    assert txn.startswith("txn_")
    kinds = [(e.kind, e.data.get("approver")) for e in await audit_of(approvals, handle.id)]
    assert ("approval.requested", None) in kinds
    assert ("approval.decision", "alice@example.com") in kinds


@pytest.mark.usefixtures("approval_worker")
async def test_approve_by_update_answers_at_once_and_the_run_resumes(
    approval_client: Client, task_queue: str, approvals: Approvals
) -> None:
    handle, request = await start_transfer(approval_client, task_queue, 50_000)
    assert request.action == "wire_transfer" and request.args == {
        "amount": 50000,
        "to": "ACME GmbH",
    }
    assert request.requester == "requester@example.com" and request.required == 1
    result = await submit(approval_client, sign(approvals.who["bob"], request, "approved", "ok"))
    assert result.accepted and result.complete
    assert (await handle.result()).startswith("txn_")


@pytest.mark.usefixtures("approval_worker")
async def test_reject_fails_the_run_and_nothing_is_sent(
    approval_client: Client, task_queue: str, approvals: Approvals
) -> None:
    before = transfers_booked(approvals.ledger) if approvals.ledger.exists() else 0
    handle, request = await start_transfer(approval_client, task_queue, 50_000)
    result = await submit(
        approval_client, sign(approvals.who["bob"], request, "rejected", "unknown payee")
    )
    assert result.accepted and result.complete
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ApprovalRejectedError"
    assert "rejected by bob@example.com: unknown payee" in cause.message
    after = transfers_booked(approvals.ledger) if approvals.ledger.exists() else 0
    assert after == before


@pytest.mark.usefixtures("approval_worker")
async def test_refused_attempts_are_recorded_and_do_not_count(
    approval_client: Client, task_queue: str, approvals: Approvals
) -> None:
    handle, request = await start_transfer(
        approval_client, task_queue, 50_000, requester="alice@example.com"
    )
    attempts = {
        # four-eyes: the requester cannot approve their own request
        "self": sign(approvals.who["alice"], request, "approved"),
        # not registered at all
        "stranger": sign(approvals.who["mallory"], request, "approved"),
        # mallory's signature, claiming to be bob: the signature does not verify
        "forged": sign(approvals.who["mallory"], request, "approved").model_copy(
            update={"approver": "bob@example.com"}
        ),
        # bob approving a different amount than the run asked for
        "changed": approvals.who["bob"].sign(
            approval_id=request.approval_id,
            run_id=request.run_id,
            workflow_run_id=request.workflow_run_id,
            nonce=request.nonce,
            digest=action_digest("wire_transfer", {"amount": 5000, "to": "ACME GmbH"}),
            decision="approved",
        ),
        # dave is registered, but not an approver of wire transfers
        "ineligible": sign(approvals.who["dave"], request, "approved"),
    }
    for name, decision in attempts.items():
        result = await submit(approval_client, decision)
        assert not result.accepted, name
        assert not result.complete, name
    # still waiting: none of them counted
    pending = await handle.query(PENDING_QUERY, result_type=list[PendingApproval])
    assert pending and pending[0].approved_by == []
    good = sign(approvals.who["bob"], request, "approved")
    assert (await submit(approval_client, good)).complete
    duplicate = await submit(approval_client, good)
    assert not duplicate.accepted, "a late duplicate is refused"
    await handle.result()
    events = await audit_of(approvals, handle.id)
    refused = [e for e in events if e.kind == "approval.refused"]
    assert len(refused) == len(attempts) + 1
    assert {e.data["approver"] for e in refused} == {
        "alice@example.com",
        "mallory@example.com",
        "bob@example.com",
        "dave@example.com",
    }
    assert all(e.data["reason"] for e in refused)
    accepted = [e for e in events if e.kind == "approval.decision"]
    assert [e.data["approver"] for e in accepted] == ["bob@example.com"]


@pytest.mark.usefixtures("approval_worker")
async def test_two_distinct_approvers_above_the_threshold(
    approval_client: Client, task_queue: str, approvals: Approvals
) -> None:
    handle, request = await start_transfer(approval_client, task_queue, 250_000)
    assert request.required == 2
    first = await submit(approval_client, sign(approvals.who["alice"], request, "approved"))
    assert first.accepted and not first.complete
    again = await submit(approval_client, sign(approvals.who["alice"], request, "approved", "x"))
    assert not again.accepted, "the same approver twice is one approver"
    second = await submit(approval_client, sign(approvals.who["carol"], request, "approved"))
    assert second.accepted and second.complete
    assert (await handle.result()).startswith("txn_")


@pytest.mark.usefixtures("approval_worker")
async def test_approvals_list_finds_waiting_runs(
    approval_client: Client, task_queue: str, approvals: Approvals, temporal_server: DevServer
) -> None:
    handle, request = await start_transfer(approval_client, task_queue, 75_000)
    for _ in range(50):  # visibility is eventually consistent
        if any(p.run_id == handle.id for p in await list_pending(approval_client)):
            break
        await asyncio.sleep(0.1)
    env = {**os.environ, "TEMPORAL_ADDRESS": temporal_server.address}
    # In a thread: this test's event loop also runs the worker that answers the CLI's query.
    listed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "jamjet_temporal", "approvals", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith(handle.id))
    assert "wire_transfer(amount=75000, to=ACME GmbH)" in line
    assert "requested by requester@example.com" in line
    approved = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "jamjet_temporal",
            "approve",
            handle.id,
            "--key",
            str(approvals.key_files["carol"]),
            "--comment",
            "via CLI",
            "--digest",  # not a terminal: the digest the approver was shown by `list`
            request.digest,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith(f"✓ wire_transfer {request.approval_id}")
    await handle.result()


async def test_worker_killed_while_waiting_then_approved_sends_once(
    approval_client: Client, approvals: Approvals, temporal_server: DevServer
) -> None:
    from starters.transfer_worker import TASK_QUEUE  # the example worker's queue

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "starters.transfer_worker",
                temporal_server.address,
                str(approvals.config_file),
                approvals.audit_url,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            env={**os.environ, "JAMJET_BANK_LEDGER": str(approvals.ledger)},
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"worker ready"
        return proc

    first = start()
    try:
        handle, request = await start_transfer(approval_client, TASK_QUEUE, 60_000)
        first.kill()  # SIGKILL while the run waits
        first.wait()
        second = start()
        try:
            result = await submit(
                approval_client, sign(approvals.who["alice"], request, "approved")
            )
            assert result.accepted and result.complete
            txn = await handle.result()
        finally:
            second.terminate()
            second.wait()
    finally:
        if first.poll() is None:
            first.kill()
    key_suffix = txn.removeprefix("txn_")
    with sqlite3.connect(approvals.ledger) as db:
        booked = db.execute(
            "SELECT count(*) FROM transfers WHERE substr(key, 4, 12) = ?", (key_suffix,)
        ).fetchone()[0]
    assert booked == 1, "the transfer happened exactly once"


async def test_a_memory_call_the_policy_holds_waits_for_an_approval(
    temporal_server: DevServer, approvals: Approvals, task_queue: str, tmp_path: Path
) -> None:
    memory = f"sqlite:///{tmp_path / 'memory.db'}"
    config = JamJetConfig(
        policy=Policy(require_approval_for=("engram.forget",)),
        approvals=approvals.config,
        audit=AuditConfig(store=approvals.audit_url),
        memory=MemoryConfig(store=memory),
    )
    user = f"lee-{uuid.uuid4().hex[:6]}@example.com"
    await engram.record(user, "Lisbon", attribute="location", session="s1", store=memory)
    client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=task_queue, workflows=[engram_workflows.forget]):
        with acting_as(user, signer=PORTAL):
            handle = await client.start_workflow(
                engram_workflows.forget.run, user, id=run_id, task_queue=task_queue
            )
        request = await wait_pending(client, run_id)
        # Approvers see whose memory would be erased, not the memory.
        assert request.action == "engram.forget"
        assert request.args == {"activity": "jamjet.engram.forget", "user": user}
        assert len(await engram.facts(user, store=memory)) == 1  # nothing erased yet
        result = await submit(client, sign(approvals.who["alice"], request, "approved"))
        assert result.complete
        assert (await handle.result()).facts == 1
    assert await engram.facts(user, store=memory) == []
    events = await audit_of(approvals, run_id)
    decision = next(e for e in events if e.kind == "policy.decision")
    assert decision.data["subject"] == "engram.forget"
    assert decision.data["reason"] == "approved by alice@example.com (apr_1)"
    assert [e.data["facts"] for e in events if e.kind == "memory.forget"] == [1]


async def test_policy_require_approval_holds_a_tool_call_until_approved(
    temporal_server: DevServer, approvals: Approvals, task_queue: str
) -> None:
    config = JamJetConfig(
        policy=Policy(require_approval_for=("bank.*",)),
        approvals=approvals.config,
        audit=AuditConfig(store=approvals.audit_url),
    )
    client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=task_queue, workflows=[pay], activities=[send]):
        with acting_as("requester@example.com", signer=PORTAL):
            handle = await client.start_workflow(
                pay.run, args=[120.0, "Vendor"], id=run_id, task_queue=task_queue
            )
        request = await wait_pending(client, run_id)
        # The approver is shown the tool's arguments by name.
        assert request.action == "bank.send" and request.args == {"amount": 120, "to": "Vendor"}
        result = await submit(client, sign(approvals.who["alice"], request, "approved"))
        assert result.complete
        assert (await handle.result()).startswith("txn_")
    events = await audit_of(approvals, run_id)
    decisions = [e for e in events if e.kind == "policy.decision"]
    assert len(decisions) == 1
    assert decisions[0].data["decision"] == "ALLOWED"
    assert decisions[0].data["reason"] == "approved by alice@example.com (apr_1)"
    assert decisions[0].data["rule"] == "bank.*"
