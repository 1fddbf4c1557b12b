"""Durable approvals, workflow side: suspend until approvers decide; verify every decision.

Runs inside the workflow sandbox. A request waits on a durable condition (no worker holds it;
a restarted worker replays to the same wait). Decisions arrive as the signal
``jamjet.approval.decide`` (Temporal CLI, Web UI) or the update ``jamjet.approval.submit``
(our clients: an immediate accept/refuse); both go through one ``submit`` that checks the
approver's Ed25519 signature, eligibility, four-eyes and the arguments' digest, records the
outcome in the audit trail, and only then lets the run go on. A signal whose payload is not a
decision at all is recorded as refused too, never dropped unseen.

Four-eyes needs to know who asked: a run whose user is not proven (no signed ``acting_as``)
cannot have anything approved; its requests are refused and recorded at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue
from temporalio import workflow
from temporalio.common import RawValue

from jamjet_temporal._shared._details import show
from jamjet_temporal._shared._observe import ApprovalOutcome, observer
from jamjet_temporal._shared._wire import (
    DECIDE_SIGNAL,
    DECIDE_UPDATE,
    PENDING_ATTRIBUTE,
    PENDING_QUERY,
)
from jamjet_temporal.approvals._check import (
    ApprovalRequest,
    ApprovalState,
    Check,
    check_decision,
    required_approvals,
)
from jamjet_temporal.approvals._details import approval_line
from jamjet_temporal.approvals._identity import SignedDecision, action_digest
from jamjet_temporal.approvals._load import ApprovalConfig, ApprovalRule
from jamjet_temporal.audit._types import AuditEvent, event_id
from jamjet_temporal.errors import ApprovalRejectedError, ApprovalTimeoutError

if TYPE_CHECKING:
    from jamjet_temporal.gate._workflow import Gate


class ApprovalDecision(BaseModel):
    """What ``guard.requires_approval`` returns once the action is approved."""

    model_config = ConfigDict(frozen=True)

    approval_id: str
    action: str
    approved_by: list[str]
    decided_at: AwareDatetime
    comments: list[str] = Field(default_factory=list)
    event_ids: list[str] = Field(default_factory=list)


class PendingApproval(BaseModel):
    """One open request, as the ``jamjet.approval.pending`` query shows it."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    workflow_run_id: str | None
    nonce: str | None
    workflow_type: str
    approval_id: str
    action: str
    args: dict[str, JsonValue]
    digest: str
    requester: str | None
    requested_at: AwareDatetime
    stage: Literal["primary", "escalated"]
    eligible: list[str]
    required: int
    approved_by: list[str]
    deadline: AwareDatetime | None


class SubmitResult(BaseModel):
    """The immediate answer to a submitted decision."""

    model_config = ConfigDict(frozen=True)

    accepted: bool
    reason: str
    complete: bool
    event_id: str


@dataclass
class _Entry:
    request: ApprovalRequest
    rule: ApprovalRule | None
    state: ApprovalState = field(default_factory=ApprovalState)
    deadline: datetime | None = None
    outcome: Literal["approved", "rejected", "timed out"] | None = None
    decided_by: list[SignedDecision] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)


class ApprovalBook:
    """One run's approval requests and the handlers that decide them."""

    def __init__(self, gate: Gate, config: ApprovalConfig | None) -> None:
        self._gate = gate
        self._config = config or ApprovalConfig()
        self._entries: dict[str, _Entry] = {}
        self._count = 0
        self._submissions = 0
        # Decisions are checked and recorded one at a time: two approvals arriving together
        # must not both be counted against the same state.
        self._lock = asyncio.Lock()
        self._shown: dict[str, str | None] = {}  # approval id -> its line in current details

    def install(self) -> None:
        """Register the signal, update and query handlers on the running workflow."""
        workflow.set_signal_handler(DECIDE_SIGNAL, self._on_signal)
        workflow.set_update_handler(DECIDE_UPDATE, self.submit, validator=self._validate)
        workflow.set_query_handler(PENDING_QUERY, self.pending)

    async def _on_signal(self, payload: RawValue) -> None:
        try:
            decision = workflow.payload_converter().from_payloads(
                [payload.payload], [SignedDecision]
            )[0]
        except Exception as exc:  # whatever was sent, it is recorded, never dropped unseen
            if self._gate.pinned:  # runs from before the pin dropped it, and replay as they ran
                await self._malformed(payload, exc)
            return
        await self.submit(decision)

    async def _malformed(self, payload: RawValue, exc: Exception) -> None:
        info = workflow.info()
        async with self._lock:
            self._submissions += 1
            text = payload.payload.data.decode("utf-8", "replace")
            event = AuditEvent(
                id=event_id(
                    info.workflow_id, info.run_id, "approval.submission", str(self._submissions)
                ),
                run_id=info.workflow_id,
                workflow_run_id=info.run_id,
                kind="approval.refused",
                at=workflow.now(),
                actor=self._gate.actor(),
                data={
                    "accepted": False,
                    "code": "malformed",
                    "reason": f"the signal's payload is not a signed decision: {_first_line(exc)}",
                    "payload_excerpt": text[:500],
                },
            )
            await self._gate.record([event])

    def _validate(self, decision: SignedDecision) -> None:
        run_id = workflow.info().workflow_id
        if decision.run_id != run_id:
            raise ValueError(f"the decision is for run {decision.run_id}, this is run {run_id}")

    def pending(self) -> list[PendingApproval]:
        """Open requests of this run."""
        info = workflow.info()
        return [
            PendingApproval(
                run_id=info.workflow_id,
                workflow_run_id=entry.request.workflow_run_id,
                nonce=entry.request.nonce,
                workflow_type=info.workflow_type,
                approval_id=entry.request.approval_id,
                action=entry.request.action,
                args=entry.request.args,
                digest=entry.request.digest,
                requester=entry.request.requester,
                requested_at=entry.request.requested_at,
                stage=entry.state.stage,
                eligible=sorted(self._config.eligible(entry.rule, entry.state.stage)),
                required=required_approvals(self._config, entry.rule, entry.request),
                approved_by=[d.approver for d in entry.state.approvals],
                deadline=entry.deadline,
            )
            for entry in self._entries.values()
            if entry.outcome is None and entry.rule is not None
        ]

    def _event(self, kind: str, entry: _Entry, key: str, data: dict[str, JsonValue]) -> AuditEvent:
        info = workflow.info()
        return AuditEvent(
            id=event_id(info.workflow_id, info.run_id, kind, entry.request.approval_id, key),
            run_id=info.workflow_id,
            workflow_run_id=info.run_id,
            kind=kind,
            at=workflow.now(),
            actor=self._gate.actor(),
            data={
                "approval_id": entry.request.approval_id,
                "action": entry.request.action,
                "digest": entry.request.digest,
                **data,
            },
        )

    def _mark_pending(self) -> None:
        waiting = any(e.outcome is None for e in self._entries.values())
        workflow.upsert_search_attributes([PENDING_ATTRIBUTE.value_set(waiting)])
        self._show()

    def _show(self) -> None:
        """Say in the run's current details (Temporal's Web UI) what each open request waits
        for; take closed ones away. Not in history: a replay says the same again."""
        pending = {p.approval_id: p for p in self.pending()}
        for approval_id in self._entries:
            request = pending.get(approval_id)
            line = approval_line(request, several=len(pending) > 1) if request else None
            before = self._shown.get(approval_id)
            if line != before:
                self._shown[approval_id] = show(line, instead_of=before)

    async def request(
        self,
        action: str,
        args: dict[str, JsonValue],
        timeout: timedelta | None,  # noqa: ASYNC109 - a durable Temporal timer, not asyncio's
    ) -> ApprovalDecision:
        """Suspend until the action is approved; raise if rejected or timed out."""
        waiting = self._request(action, args, timeout)
        watch = observer()  # tracing: a span from request to decision (None when off)
        if watch is None:
            return await waiting
        approval_id = f"apr_{self._count + 1}"
        return await watch.approval(action, approval_id, waiting, lambda: self._traced(approval_id))

    def _traced(self, approval_id: str) -> ApprovalOutcome:
        """How a request ended, for its trace span."""
        entry = self._entries.get(approval_id)
        if entry is None:
            return ApprovalOutcome(None)
        return ApprovalOutcome(
            entry.outcome,
            tuple(d.approver for d in entry.decided_by),
            tuple(entry.event_ids),
            tuple(sorted(self._config.eligible(entry.rule, entry.state.stage)))
            if entry.rule is not None
            else (),
            required_approvals(self._config, entry.rule, entry.request)
            if entry.rule is not None
            else 0,
        )

    async def _request(
        self,
        action: str,
        args: dict[str, JsonValue],
        timeout: timedelta | None,  # noqa: ASYNC109 - a durable Temporal timer, not asyncio's
    ) -> ApprovalDecision:
        self._count += 1
        approval_id = f"apr_{self._count}"
        info = workflow.info()
        request = ApprovalRequest(
            approval_id=approval_id,
            run_id=info.workflow_id,
            # Runs started before the pin replay as they ran: no run id or nonce (drawing one
            # would change the random numbers their later code sees).
            workflow_run_id=info.run_id if self._gate.pinned else None,
            nonce=str(workflow.uuid4()) if self._gate.pinned else None,
            action=action,
            args=args,
            digest=action_digest(action, args),
            requester=self._gate.user,
            requested_at=workflow.now(),
        )
        rule = self._config.rule_for(action)
        entry = _Entry(request, rule)
        self._entries[approval_id] = entry
        if rule is None:
            entry.outcome = "rejected"
            refused = self._event(
                "approval.refused",
                entry,
                "no-rule",
                {"reason": f"no approval rule for action '{action}' (fail closed)"},
            )
            await self._gate.record([refused])
            raise ApprovalRejectedError(
                action,
                f"no approval rule for action '{action}'",
                scope="approval",
                event_id=refused.id,
            )
        if request.requester is None and self._gate.pinned:
            entry.outcome = "rejected"
            reason = (
                "the run's user is not proven, so four-eyes cannot tell who may not approve: "
                "start the run with acting_as(user, signer=...) from a client the approvals "
                "config trusts"
            )
            refused = self._event("approval.refused", entry, "no-requester", {"reason": reason})
            await self._gate.record([refused])
            raise ApprovalRejectedError(action, reason, scope="approval", event_id=refused.id)
        stage_timeout = _seconds(timeout) or rule.timeout_seconds
        requested = self._event(
            "approval.requested",
            entry,
            "requested",
            {
                "args": args,
                "eligible": cast(JsonValue, sorted(self._config.eligible(rule, "primary"))),
                "required": required_approvals(self._config, rule, request),
                "timeout_seconds": stage_timeout,
            },
        )
        await self._gate.record([requested])
        entry.event_ids.append(requested.id)
        self._mark_pending()
        while True:
            if await self._wait_stage(entry, rule, stage_timeout):
                break
            # The stage timed out: escalate, or give up (fail closed).
            async with self._lock:
                if entry.outcome is not None:
                    break
                if entry.state.stage == "primary" and rule.on_timeout == "escalate":
                    entry.state = entry.state.model_copy(update={"stage": "escalated"})
                    escalated = self._event(
                        "approval.escalated",
                        entry,
                        "escalated",
                        {
                            "eligible": cast(
                                JsonValue, sorted(self._config.eligible(rule, "escalated"))
                            )
                        },
                    )
                    await self._gate.record([escalated])
                    entry.event_ids.append(escalated.id)
                    stage_timeout = rule.escalation_timeout_seconds
                    continue
                entry.outcome = "timed out"
                entry.state = entry.state.model_copy(update={"closed": True})
                expired = self._event(
                    "approval.timeout",
                    entry,
                    "timeout",
                    {"stage": entry.state.stage, "waited_seconds": stage_timeout},
                )
                await self._gate.record([expired])
                self._mark_pending()
                raise ApprovalTimeoutError(
                    action,
                    f"nobody decided within {stage_timeout:g} s ({entry.state.stage} stage)",
                    scope="approval",
                    event_id=expired.id,
                ) from None
        self._mark_pending()
        last = entry.decided_by[-1]
        if entry.outcome == "rejected":
            raise ApprovalRejectedError(
                action,
                f"rejected by {last.approver}" + (f": {last.comment}" if last.comment else ""),
                scope="approval",
                event_id=entry.event_ids[-1],
            )
        return ApprovalDecision(
            approval_id=approval_id,
            action=action,
            approved_by=[d.approver for d in entry.decided_by],
            decided_at=last.signed_at,
            comments=[d.comment for d in entry.decided_by if d.comment],
            event_ids=entry.event_ids,
        )

    async def _wait_stage(
        self, entry: _Entry, rule: ApprovalRule, stage_timeout: float | None
    ) -> bool:
        """Wait for a decision in this stage, reminding as configured; False on timeout."""
        now = workflow.now()
        entry.deadline = now + timedelta(seconds=stage_timeout) if stage_timeout else None
        self._show()
        reminders = 0
        while True:
            waits = [rule.remind_every_seconds]
            if entry.deadline is not None:
                waits.append((entry.deadline - workflow.now()).total_seconds())
            wait = min((w for w in waits if w is not None), default=None)
            if wait is not None and wait <= 0:
                return False
            at_deadline = entry.deadline is not None and wait == waits[-1]
            timer = "approval timeout" if at_deadline else "approval reminder"
            try:
                await workflow.wait_condition(
                    lambda: entry.outcome is not None,
                    timeout=None if wait is None else timedelta(seconds=wait),
                    timeout_summary=timer,
                )
                return True
            except TimeoutError:
                if entry.outcome is not None:
                    return True
                if entry.deadline is not None and workflow.now() >= entry.deadline:
                    return False
                reminders += 1
                reminder = self._event(
                    "approval.reminder",
                    entry,
                    f"reminder-{entry.state.stage}-{reminders}",
                    {
                        "eligible": cast(
                            JsonValue, sorted(self._config.eligible(rule, entry.state.stage))
                        ),
                        "reminder": reminders,
                    },
                )
                await self._gate.record([reminder])

    async def submit(self, decision: SignedDecision) -> SubmitResult:
        """Check one decision, record it (accepted or refused), then apply it."""
        async with self._lock:
            entry = self._entries.get(decision.approval_id)
            check: Check | None = None
            if entry is None:
                accepted, reason, complete = False, "no such approval request in this run", False
            elif entry.outcome is not None:
                accepted, reason, complete = False, "the request is already closed (late)", False
            else:
                check = check_decision(
                    self._config, entry.request, entry.state, decision, workflow.now()
                )
                accepted, reason, complete = check.accepted, check.reason, check.complete
            info = workflow.info()
            approval_id = decision.approval_id
            # Every submission is its own attempt (a replayed duplicate is still an attempt);
            # handlers run in history order, so the counter is the same on replay.
            self._submissions += 1
            event = AuditEvent(
                id=event_id(
                    info.workflow_id, info.run_id, "approval.submission", str(self._submissions)
                ),
                run_id=info.workflow_id,
                workflow_run_id=info.run_id,
                kind="approval.decision" if accepted else "approval.refused",
                at=workflow.now(),
                actor=self._gate.actor(),
                data={
                    "approval_id": approval_id,
                    "action": entry.request.action if entry else None,
                    "digest": entry.request.digest if entry else None,
                    "approver": decision.approver,
                    "decision": decision.decision,
                    "comment": decision.comment,
                    "shown_digest": decision.digest,
                    "signed_at": decision.signed_at.isoformat(),
                    "key_id": decision.key_id,
                    "accepted": accepted,
                    "reason": reason,
                    "code": check.code if check else "late" if entry else "wrong_request",
                },
            )
            # Durable before visible: the run resumes only after this is in the audit trail.
            await self._gate.record([event])
            if entry is not None and check is not None:
                entry.state = entry.state.after(decision, check)
                if accepted:
                    entry.event_ids.append(event.id)
                    entry.decided_by.append(decision)
                    if complete:
                        entry.outcome = decision.decision
                self._show()
            return SubmitResult(
                accepted=accepted, reason=reason, complete=complete, event_id=event.id
            )


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()
