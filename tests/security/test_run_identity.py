"""Attacks on four-eyes: who requested an action must be proven, and compared as people read it.

The requester used to come from a client-set header: a run started without ``acting_as`` had
no requester (so anyone could approve), a child workflow lost it, and ids were compared byte for
byte, so alice approved her own transfer as ``Alice@example.com``, ``alice@example.com `` or
``аlice@example.com`` (Cyrillic ``а``).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from jamjet_temporal import acting_as
from jamjet_temporal._shared._keys import b64url_encode
from jamjet_temporal._shared._wire import USER_HEADER
from jamjet_temporal.approvals._client import find_pending, sign, submit
from jamjet_temporal.approvals._identity import RunUser, SigningIdentity
from jamjet_temporal.approvals._load import (
    ApprovalConfig,
    ApprovalRule,
    Approver,
    TrustedClient,
)
from jamjet_temporal.approvals._workflow import PendingApproval
from tests.identities import PORTAL
from tests.security.conftest import Governed, MakeGoverned
from tests.security.security_workflows import approval, parent

ALICE = SigningIdentity.generate("alice@example.com")
BOB = SigningIdentity.generate("bob@example.com")
CONFIG = ApprovalConfig(
    approvers=(
        Approver(id="alice@example.com", public_key=ALICE.public_key),
        Approver(id="bob@example.com", public_key=BOB.public_key),
    ),
    rules=(
        ApprovalRule(action="wire_transfer", approvers=("alice@example.com", "bob@example.com")),
    ),
    clients=(TrustedClient(id="portal", public_key=PORTAL.public_key, acts_for=("*",)),),
)


async def pending(client: Client, run_id: str) -> PendingApproval:
    for _ in range(100):
        try:
            return await find_pending(client, run_id, None)
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{run_id} never asked for approval")


async def failure(gov: Governed, queue: str, run_id: str) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as failed:
        await gov.client.get_workflow_handle(run_id).result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def test_a_run_without_a_proven_user_cannot_have_anything_approved(
    governed: MakeGoverned,
) -> None:
    gov = await governed(approvals=CONFIG)
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"anon-{uuid.uuid4().hex[:8]}"
    async with Worker(gov.client, task_queue=queue, workflows=[approval]):
        await gov.client.start_workflow(approval.run, 50_000.0, id=run_id, task_queue=queue)
        cause = await failure(gov, queue, run_id)
    assert cause.type == "ApprovalRejectedError"
    assert "user is not proven" in cause.message
    refused = [e for e in await gov.events(run_id) if e.kind == "approval.refused"]
    assert len(refused) == 1 and "four-eyes" in str(refused[0].data["reason"])


@pytest.mark.parametrize(
    "claimed",
    ["alice@example.com", "Alice@example.com", "alice@example.com ", "аlice@example.com"],
    ids=["same", "case", "trailing-space", "cyrillic-a"],
)
async def test_alice_cannot_approve_her_own_request_under_a_look_alike_id(
    governed: MakeGoverned, claimed: str
) -> None:
    gov = await governed(approvals=CONFIG)
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"self-{uuid.uuid4().hex[:8]}"
    async with Worker(gov.client, task_queue=queue, workflows=[approval]):
        with acting_as(claimed, signer=PORTAL):
            handle = await gov.client.start_workflow(
                approval.run, 50_000.0, id=run_id, task_queue=queue
            )
        request = await pending(gov.client, run_id)
        assert request.requester == claimed
        result = await submit(gov.client, sign(ALICE, request, "approved"))
        assert not result.accepted and "four-eyes" in result.reason
        result = await submit(gov.client, sign(BOB, request, "approved"))
        assert result.accepted and result.complete
        assert await handle.result() == ["bob@example.com"]


async def test_a_child_workflow_keeps_the_parents_user(governed: MakeGoverned) -> None:
    gov = await governed(approvals=CONFIG)
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"parent-{uuid.uuid4().hex[:8]}"
    async with Worker(gov.client, task_queue=queue, workflows=[parent, approval]):
        with acting_as("alice@example.com", signer=PORTAL):
            handle = await gov.client.start_workflow(
                parent.run, 50_000.0, id=run_id, task_queue=queue
            )
        request = await pending(gov.client, f"{run_id}-child")
        assert request.requester == "alice@example.com"
        refused = await submit(gov.client, sign(ALICE, request, "approved"))
        assert not refused.accepted and "four-eyes" in refused.reason
        assert (await submit(gov.client, sign(BOB, request, "approved"))).complete
        assert await handle.result() == ["bob@example.com"]


async def start_with_header(gov: Governed, queue: str, run_id: str, claim: RunUser) -> None:
    """What a client without the portal's key can do: put any header on a start."""
    payload = gov.client.data_converter.payload_converter.to_payloads(
        [claim.model_dump(mode="json")]
    )
    await gov.client.workflow_service.start_workflow_execution(
        _start_request(gov.client, queue, run_id, {USER_HEADER: payload[0]})
    )


def _start_request(client: Client, queue: str, run_id: str, headers: dict[str, object]) -> object:
    from temporalio.api.common.v1 import Header, Payloads, WorkflowType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest

    args = client.data_converter.payload_converter.to_payloads([50_000.0])
    return StartWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_id=run_id,
        workflow_type=WorkflowType(name="test-security.approval"),
        task_queue=TaskQueue(name=queue),
        input=Payloads(payloads=args),
        header=Header(fields=headers),  # type: ignore[arg-type]
        request_id=str(uuid.uuid4()),
    )


def _resign(claim: RunUser, identity: SigningIdentity) -> RunUser:
    unsigned = claim.model_copy(update={"signature": None, "key_id": identity.key_id})
    signature = identity._private_key.sign(unsigned.signing_bytes())
    return unsigned.model_copy(update={"signature": b64url_encode(signature)})


def _claim(run_id: str, **changes: object) -> RunUser:
    return PORTAL.sign_run_user(
        "carol@example.com", workflow_id=run_id, workflow_type="test-security.approval"
    ).model_copy(update=changes)


@pytest.mark.parametrize(
    ("attack", "expected"),
    [
        ("unsigned-inherited", "not from a run Temporal shows as its parent"),
        ("stranger-key", "is not a client or approver"),
        ("altered-user", "forged or was altered"),
        ("other-workflow", "signed for workflow"),
        ("stale", "too far from the run's start"),
        ("outside-acts-for", "may not act for"),
        ("approver-for-someone-else", "may only start runs for themselves"),
    ],
)
async def test_a_run_user_that_is_not_proven_stops_the_run_and_is_recorded(
    governed: MakeGoverned, attack: str, expected: str
) -> None:
    narrow = (
        CONFIG.model_copy(
            update={
                "clients": (
                    TrustedClient(
                        id="portal", public_key=PORTAL.public_key, acts_for=("*@corp.example",)
                    ),
                )
            }
        )
        if attack == "outside-acts-for"
        else CONFIG
    )
    gov = await governed(approvals=narrow)
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"claim-{uuid.uuid4().hex[:8]}"
    stranger = SigningIdentity.generate("portal")
    claim = {
        "unsigned-inherited": RunUser(
            user="carol@example.com",
            workflow_id="someone-else",
            workflow_type="x",
            issued_at=datetime.now(UTC),
        ),
        "stranger-key": _resign(_claim(run_id, signer="mallory-portal"), stranger),
        "altered-user": _claim(run_id, user="cfo@example.com"),
        "other-workflow": _claim(f"{run_id}-earlier"),
        "stale": _resign(_claim(run_id, issued_at=datetime.now(UTC) - timedelta(hours=2)), PORTAL),
        "outside-acts-for": _claim(run_id),
        "approver-for-someone-else": ALICE.sign_run_user(
            "carol@example.com", workflow_id=run_id, workflow_type="test-security.approval"
        ),
    }[attack]
    async with Worker(gov.client, task_queue=queue, workflows=[approval]):
        await start_with_header(gov, queue, run_id, claim)
        cause = await failure(gov, queue, run_id)
    assert cause.type == "IdentityError", cause
    assert expected in cause.message
    refused = [e for e in await gov.events(run_id) if e.kind == "identity.refused"]
    assert len(refused) == 1 and expected in str(refused[0].data["reason"])


@pytest.mark.parametrize("attack", ["unsigned-inherited", "stale"])
async def test_a_retry_policy_does_not_give_a_refused_user_a_second_chance(
    governed: MakeGoverned, attack: str
) -> None:
    """Temporal copies a start's header into its retries, which say they continue a run: a
    claim refused on attempt 1 must not pass on attempt 2."""
    from datetime import timedelta as td

    from temporalio.api.common.v1 import RetryPolicy as RetryProto
    from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest

    gov = await governed(approvals=CONFIG)
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"retry-{uuid.uuid4().hex[:8]}"
    claim = (
        RunUser(
            user="alice@example.com",
            workflow_id=run_id,
            workflow_type="test-security.approval",
            issued_at=datetime.now(UTC),
            from_run_id="guessed-run-id",
        )
        if attack == "unsigned-inherited"
        else _resign(_claim(run_id, issued_at=datetime.now(UTC) - td(hours=2)), PORTAL)
    )
    payload = gov.client.data_converter.payload_converter.to_payloads(
        [claim.model_dump(mode="json")]
    )
    request = _start_request(gov.client, queue, run_id, {USER_HEADER: payload[0]})
    assert isinstance(request, StartWorkflowExecutionRequest)
    request.retry_policy.CopyFrom(RetryProto(maximum_attempts=3))
    request.retry_policy.initial_interval.FromTimedelta(td(milliseconds=100))
    async with Worker(gov.client, task_queue=queue, workflows=[approval]):
        await gov.client.workflow_service.start_workflow_execution(request)
        cause = await failure(gov, queue, run_id)
    assert cause.type == "IdentityError" and cause.non_retryable
    refused = [e for e in await gov.events(run_id) if e.kind == "identity.refused"]
    assert len(refused) == 1, "a second attempt ran"
    assert [e.kind for e in await gov.events(run_id)] == ["identity.refused", "run.closed"]
