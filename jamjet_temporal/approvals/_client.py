"""Deciding approvals from outside the workflow (client side): list, sign, submit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError

from jamjet_temporal._shared._wire import DECIDE_UPDATE, PENDING_ATTRIBUTE, PENDING_QUERY
from jamjet_temporal.approvals._identity import SignedDecision, SigningIdentity, action_digest
from jamjet_temporal.approvals._workflow import PendingApproval, SubmitResult
from jamjet_temporal.errors import JamJetError

logger = logging.getLogger(__name__)

#: How long one run may take to answer; a run whose task queue no worker polls never does.
QUERY_TIMEOUT = timedelta(seconds=2)
#: How many runs are asked at once.
QUERY_CONCURRENCY = 16
#: How long asking all runs may take; runs not answered by then are reported, not waited for.
LISTING_TIMEOUT = timedelta(seconds=8)

#: Visibility query for runs waiting on an approval.
PENDING_RUNS = f'{PENDING_ATTRIBUTE.name} = true AND ExecutionStatus = "Running"'


@dataclass(frozen=True)
class PendingListing:
    """Open approval requests across runs, and the waiting runs that did not answer.

    Attributes:
        requests: The open requests of the runs that answered, oldest first.
        unanswered: Workflow ids of runs waiting on an approval that did not answer the
            ``jamjet.approval.pending`` query in time (most often: no worker polls their task
            queue), so their requests cannot be shown.
    """

    requests: tuple[PendingApproval, ...]
    unanswered: tuple[str, ...]


async def survey_pending(client: Client) -> PendingListing:
    """Open approval requests across runs, and which waiting runs did not answer.

    Runs are found through Temporal visibility (the ``JamJetApprovalPending`` search
    attribute); each run is then asked for its open requests with the
    ``jamjet.approval.pending`` query, so what is shown is the run's own state. Runs are asked
    concurrently, each for at most :data:`QUERY_TIMEOUT` and all within
    :data:`LISTING_TIMEOUT`: runs without a worker cost one short wait, not one each.
    """
    runs = [(run.id, run.run_id) async for run in client.list_workflows(PENDING_RUNS)]
    answers: dict[tuple[str, str], list[PendingApproval]] = {}
    slots = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def ask(workflow_id: str, run_id: str) -> None:
        handle: WorkflowHandle[object, object] = client.get_workflow_handle(
            workflow_id, run_id=run_id
        )
        async with slots:
            try:
                answers[workflow_id, run_id] = await handle.query(
                    PENDING_QUERY, result_type=list[PendingApproval], rpc_timeout=QUERY_TIMEOUT
                )
            except (RPCError, WorkflowQueryFailedError) as err:
                logger.warning(
                    "run %s did not answer the pending-approvals query: %s", workflow_id, err
                )

    # At the deadline the queries still out are cancelled; their runs count as unanswered.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LISTING_TIMEOUT.total_seconds()), asyncio.TaskGroup() as group:
            for workflow_id, run_id in runs:
                group.create_task(ask(workflow_id, run_id))
    found = [request for answer in answers.values() for request in answer]
    return PendingListing(
        requests=tuple(sorted(found, key=lambda p: (p.requested_at, p.run_id, p.approval_id))),
        unanswered=tuple(
            workflow_id for workflow_id, run_id in runs if (workflow_id, run_id) not in answers
        ),
    )


async def list_pending(client: Client) -> list[PendingApproval]:
    """The open requests of :func:`survey_pending`, oldest first.

    Runs that did not answer are only logged: where a person reads the list, use
    :func:`survey_pending` and show its ``unanswered`` runs.
    """
    return list((await survey_pending(client)).requests)


async def find_pending(client: Client, run_id: str, approval_id: str | None) -> PendingApproval:
    """The open request ``approval_id`` of run ``run_id`` (the only open one if None).

    Raises:
        JamJetError: There is no such open request, or several and none was named.
    """
    handle: WorkflowHandle[object, object] = client.get_workflow_handle(run_id)
    pending = await handle.query(PENDING_QUERY, result_type=list[PendingApproval])
    if approval_id is not None:
        pending = [p for p in pending if p.approval_id == approval_id]
    if not pending:
        raise JamJetError(f"run {run_id} has no open approval request {approval_id or ''}".strip())
    if len(pending) > 1:
        ids = ", ".join(p.approval_id for p in pending)
        raise JamJetError(f"run {run_id} has several open requests ({ids}); name one")
    found: PendingApproval = pending[0]
    return found


def sign(
    identity: SigningIdentity,
    request: PendingApproval,
    decision: Literal["approved", "rejected"],
    comment: str = "",
) -> SignedDecision:
    """Sign a decision about exactly what ``request`` shows (its digest).

    Raises:
        JamJetError: The request's digest is not the digest of its action and arguments (what
            was shown would not be what gets approved).
    """
    if request.digest != action_digest(request.action, request.args):
        raise JamJetError(
            f"{request.run_id} {request.approval_id}: the digest does not match the action and "
            "arguments shown; refusing to sign"
        )
    return identity.sign(
        approval_id=request.approval_id,
        run_id=request.run_id,
        workflow_run_id=request.workflow_run_id,
        nonce=request.nonce,
        digest=request.digest,
        decision=decision,
        comment=comment,
        signed_at=datetime.now(UTC),
    )


async def submit(client: Client, decision: SignedDecision) -> SubmitResult:
    """Send a signed decision as the ``jamjet.approval.submit`` update; the run answers at once."""
    handle: WorkflowHandle[object, object] = client.get_workflow_handle(decision.run_id)
    result: SubmitResult = await handle.execute_update(
        DECIDE_UPDATE, decision, result_type=SubmitResult
    )
    return result
