"""Attacks on signed approvals: replaying one, sending garbage, and dodging a threshold."""

from __future__ import annotations

import uuid

from temporalio.worker import Worker

from jamjet_temporal import acting_as
from jamjet_temporal._shared._wire import DECIDE_SIGNAL, PENDING_QUERY
from jamjet_temporal.approvals._client import sign, submit
from jamjet_temporal.approvals._identity import SignedDecision
from jamjet_temporal.approvals._load import (
    ApprovalRule,
    Threshold,
)
from jamjet_temporal.approvals._workflow import PendingApproval
from jamjet_temporal.policy import Policy
from tests.identities import PORTAL
from tests.security.conftest import MakeGoverned
from tests.security.security_workflows import approval, pay_vendor, transfer_funds
from tests.security.test_run_identity import ALICE, BOB, pending
from tests.security.test_run_identity import CONFIG as IDENTITY_CONFIG

# The identity tests' approvers and portal, plus a rule with an amount threshold.
CONFIG = IDENTITY_CONFIG.model_copy(
    update={
        "rules": (
            *IDENTITY_CONFIG.rules,
            ApprovalRule(
                action="test-security.*",
                approvers=("alice@example.com", "bob@example.com"),
                thresholds=(Threshold(field="amount", above=10_000, required=2),),
            ),
        )
    }
)


async def test_a_decision_from_one_run_does_not_approve_the_next_run_with_the_same_id(
    governed: MakeGoverned,
) -> None:
    gov = await governed(approvals=CONFIG)
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"replay-{uuid.uuid4().hex[:8]}"
    async with Worker(gov.client, task_queue=queue, workflows=[approval]):
        with acting_as("carol@example.com", signer=PORTAL):
            first = await gov.client.start_workflow(
                approval.run, 50_000.0, id=run_id, task_queue=queue
            )
        decision = sign(ALICE, await pending(gov.client, run_id), "approved")
        assert (await submit(gov.client, decision)).complete
        assert await first.result() == ["alice@example.com"]
        # The attacker reads alice's signed decision out of run 1's history...
        history = await first.fetch_history()
        signals = [
            e.workflow_execution_update_accepted_event_attributes.accepted_request.input.args
            for e in history.events
            if e.HasField("workflow_execution_update_accepted_event_attributes")
        ]
        replayed = gov.client.data_converter.payload_converter.from_payloads(
            signals[0].payloads, [SignedDecision]
        )[0]
        assert replayed == decision
        # ...starts run 2 under the same workflow id with the same arguments, and signals it.
        with acting_as("carol@example.com", signer=PORTAL):
            second = await gov.client.start_workflow(
                approval.run, 50_000.0, id=run_id, task_queue=queue
            )
        await pending(gov.client, run_id)
        await second.signal(DECIDE_SIGNAL, replayed)
        result = await submit(gov.client, replayed)
        assert not result.accepted and "another execution" in result.reason
        still = await second.query(PENDING_QUERY, result_type=list[PendingApproval])
        assert still and still[0].approved_by == [], "one signature approved two runs"
        await second.terminate("test over")
    refused = [
        e.data
        for e in await gov.events(run_id)
        if e.kind == "approval.refused" and e.workflow_run_id == second.result_run_id
    ]
    assert [r["code"] for r in refused] == ["wrong_request", "wrong_request"]


async def test_a_malformed_approval_signal_is_recorded_not_dropped(
    governed: MakeGoverned,
) -> None:
    gov = await governed(approvals=CONFIG)
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"junk-{uuid.uuid4().hex[:8]}"
    async with Worker(gov.client, task_queue=queue, workflows=[approval]):
        with acting_as("carol@example.com", signer=PORTAL):
            handle = await gov.client.start_workflow(
                approval.run, 50_000.0, id=run_id, task_queue=queue
            )
        await pending(gov.client, run_id)
        await handle.signal(DECIDE_SIGNAL, {"approval_id": "apr_1", "decision": "approved"})
        await handle.signal(DECIDE_SIGNAL, "approve it please")
        # Processed in order: once a valid decision is recorded, both junk ones are too.
        assert (
            await submit(gov.client, sign(BOB, await pending(gov.client, run_id), "approved"))
        ).complete
        await handle.result()
    refused = [e.data for e in await gov.events(run_id) if e.kind == "approval.refused"]
    assert [r["code"] for r in refused] == ["malformed", "malformed"]
    assert "approve it please" in str(refused[1]["payload_excerpt"])


async def test_an_amount_threshold_applies_to_approvals_the_policy_gate_raises(
    governed: MakeGoverned,
) -> None:
    gov = await governed(approvals=CONFIG, policy=Policy(require_approval_for=("test-security.*",)))
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"thr-{uuid.uuid4().hex[:8]}"
    async with Worker(
        gov.client, task_queue=queue, workflows=[pay_vendor], activities=[transfer_funds]
    ):
        with acting_as("carol@example.com", signer=PORTAL):
            handle = await gov.client.start_workflow(
                pay_vendor.run, 500_000.0, id=run_id, task_queue=queue
            )
        request = await pending(gov.client, run_id)
        assert request.args == {"amount": 500_000, "to": "Vendor"}
        assert request.required == 2, "a $500,000 wire with one approver"
        first = await submit(gov.client, sign(ALICE, request, "approved"))
        assert first.accepted and not first.complete
        second = await submit(gov.client, sign(BOB, request, "approved"))
        assert second.complete
        assert await handle.result() == "moved 500000 to Vendor"


def test_a_threshold_applies_when_the_arguments_do_not_name_its_field() -> None:
    # Plain workflow code has no argument names: the gate shows {"args": [...]}, and the
    # threshold whose field it cannot find applies (fail closed), so two approvers it is.
    from datetime import UTC, datetime

    from jamjet_temporal.approvals._check import ApprovalRequest, required_approvals

    args = {"args": [500_000, "Vendor"]}
    request = ApprovalRequest(
        approval_id="apr_1",
        run_id="r",
        workflow_run_id="w",
        nonce="n",
        action="test-security.transfer",
        args=args,
        digest="sha256:x",
        requester="carol@example.com",
        requested_at=datetime.now(UTC),
    )
    rule = CONFIG.rule_for("test-security.transfer")
    assert rule is not None and required_approvals(CONFIG, rule, request) == 2
