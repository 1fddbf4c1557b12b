"""`jamjet approve` signs only the request the approver saw: confirmed on a terminal, or named
by its digest; a run replaced under the same workflow id gets nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import subprocess
import sys
import uuid

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from jamjet_temporal import acting_as
from jamjet_temporal.approvals._client import find_pending
from jamjet_temporal.approvals._workflow import PendingApproval
from jamjet_temporal.audit import AuditEvent, open_store
from jamjet_temporal.cli._devserver import DevServer
from tests.approvals.conftest import Approvals
from tests.identities import PORTAL
from workflows.transfer import transfer

pytestmark = pytest.mark.usefixtures("approval_worker")


async def start_transfer(
    client: Client, queue: str, amount: float, run_id: str | None = None
) -> tuple[WorkflowHandle[object, str], PendingApproval]:
    run_id = run_id or f"exec_{uuid.uuid4().hex[:8]}"
    with acting_as("requester@example.com", signer=PORTAL):
        handle = await client.start_workflow(
            transfer.run, args=[amount, "ACME GmbH"], id=run_id, task_queue=queue
        )
    for _ in range(100):
        try:
            request = await find_pending(client, run_id, None)
        except Exception:
            await asyncio.sleep(0.1)
            continue
        if request.workflow_run_id == handle.result_run_id:
            return handle, request
        await asyncio.sleep(0.1)
    raise AssertionError(f"{run_id} never asked for approval")


async def jamjet(
    server: DevServer, *args: str, answer: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI: stdin is a terminal that types ``answer``, or not a terminal at all."""
    command = [sys.executable, "-m", "jamjet_temporal", *args]
    env = {**os.environ, "TEMPORAL_ADDRESS": server.address}

    def run() -> subprocess.CompletedProcess[str]:
        if answer is None:
            return subprocess.run(
                command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=120, check=False,
            )  # fmt: skip
        keyboard, terminal = pty.openpty()
        try:
            os.write(keyboard, f"{answer}\n".encode())  # waits in the terminal until read
            return subprocess.run(
                command, env=env, stdin=terminal, capture_output=True, text=True,
                timeout=120, check=False,
            )  # fmt: skip
        finally:
            os.close(keyboard)
            os.close(terminal)

    # In a thread: this test's event loop runs the worker that answers the CLI's queries.
    return await asyncio.to_thread(run)


async def decisions_of(approvals: Approvals, run_id: str) -> list[AuditEvent]:
    store = open_store(approvals.audit_url)
    try:
        return [
            s.event
            for s in await store.events(run_id)
            if s.event.kind in ("approval.decision", "approval.refused")
        ]
    finally:
        await store.close()


async def test_approve_needs_a_terminal_or_the_digest(
    approval_client: Client, task_queue: str, approvals: Approvals, temporal_server: DevServer
) -> None:
    handle, request = await start_transfer(approval_client, task_queue, 5)
    alice = str(approvals.key_files["alice"])
    try:
        for extra in ([], ["--print-signal"]):
            refused = await jamjet(temporal_server, "approve", handle.id, "--key", alice, *extra)
            assert refused.returncode == 2, refused
            assert refused.stdout == ""
            assert "stdin is not a terminal" in refused.stderr
            assert "--digest" in refused.stderr and "nothing was signed" in refused.stderr
        assert await decisions_of(approvals, handle.id) == []

        # --print-signal signs too, so it is confirmed the same way; then prints, sends nothing.
        printed = await jamjet(
            temporal_server,
            "approve",
            handle.id,
            "--key",
            alice,
            "--print-signal",
            "--digest",
            request.digest,
        )
        assert printed.returncode == 0, printed.stderr
        assert printed.stdout.startswith(
            f"temporal workflow signal --workflow-id {handle.id} --name jamjet.approval.decide"
        )
        signed = json.loads(printed.stdout.split("--input '", 1)[1].rstrip().removesuffix("'"))
        assert (signed["digest"], signed["nonce"], signed["workflow_run_id"]) == (
            request.digest,
            request.nonce,
            request.workflow_run_id,
        )
        assert await decisions_of(approvals, handle.id) == []
    finally:
        await handle.terminate("test over")


async def test_approve_refuses_a_request_replaced_since_it_was_listed(
    approval_client: Client, task_queue: str, approvals: Approvals, temporal_server: DevServer
) -> None:
    """Alice lists $5 and approves that digest; the run was replaced, under the same workflow
    id, by one asking for $50,000: nothing is signed. The digest of what she then reads works."""
    handle, _ = await start_transfer(approval_client, task_queue, 5)
    for _ in range(50):  # visibility is eventually consistent
        listed = await jamjet(temporal_server, "approvals", "list")
        assert listed.returncode == 0, listed.stderr
        lines = [line for line in listed.stdout.splitlines() if line.startswith(handle.id)]
        if lines:
            break
    assert "wire_transfer(amount=5, to=ACME GmbH)" in lines[0]
    seen_digest = lines[0].rsplit(" · ", 1)[1]
    assert seen_digest.startswith("sha256:")

    await handle.terminate("replaced")
    replaced, big = await start_transfer(approval_client, task_queue, 50_000, run_id=handle.id)
    try:
        alice = str(approvals.key_files["alice"])
        for extra in ([], ["--print-signal"]):
            refused = await jamjet(
                temporal_server, "approve", handle.id, "--key", alice, "--digest", seen_digest,
                *extra,
            )  # fmt: skip
            assert refused.returncode == 2, refused
            assert refused.stdout == ""
            assert "arguments  amount=50000" in refused.stderr  # what it would have signed
            assert "not the request you checked" in refused.stderr
            assert "nothing was signed" in refused.stderr
        assert await decisions_of(approvals, handle.id) == []
        assert (await find_pending(approval_client, handle.id, None)).approved_by == []

        approved = await jamjet(
            temporal_server, "approve", handle.id, "--key", alice, "--digest", big.digest
        )
        assert approved.returncode == 0, approved.stderr
        assert approved.stdout.startswith(f"✓ wire_transfer {big.approval_id}")
        assert (await replaced.result()).startswith("txn_")
    finally:
        with contextlib.suppress(RPCError):  # already completed when the approval went through
            await replaced.terminate("test over")


async def test_approve_asks_on_a_terminal(
    approval_client: Client, task_queue: str, approvals: Approvals, temporal_server: DevServer
) -> None:
    handle, request = await start_transfer(approval_client, task_queue, 5)
    alice = str(approvals.key_files["alice"])
    try:
        declined = await jamjet(temporal_server, "approve", handle.id, "--key", alice, answer="n")
        assert declined.returncode == 1, declined
        assert declined.stdout == ""
        shown = declined.stderr.splitlines()
        assert shown[:6] == [
            "To sign as alice@example.com: approved",
            "  action     wire_transfer",
            '  arguments  amount=5, to="ACME GmbH"',
            "  requester  requester@example.com",
            f"  run        {handle.id} {request.approval_id} "
            f"(Temporal run {request.workflow_run_id})",
            f"  digest     {request.digest}",
        ]
        assert "Sign 'approved' for this request? [y/N]" in declined.stderr
        assert "not confirmed; nothing was signed" in declined.stderr
        assert await decisions_of(approvals, handle.id) == []

        approved = await jamjet(
            temporal_server, "approve", handle.id, "--key", alice, "--comment", "read it",
            answer="y",
        )  # fmt: skip
        assert approved.returncode == 0, approved.stderr
        assert approved.stdout.startswith(f"✓ wire_transfer {request.approval_id}")
        assert (await handle.result()).startswith("txn_")
        decided = await decisions_of(approvals, handle.id)
        assert [(e.kind, e.data["approver"], e.data["comment"]) for e in decided] == [
            ("approval.decision", "alice@example.com", "read it")
        ]
    finally:
        with contextlib.suppress(RPCError):
            await handle.terminate("test over")
