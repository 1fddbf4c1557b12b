"""Whether a signed decision counts: pure, deterministic, safe in workflow code.

:func:`check_decision` is a function of the config, the request, what happened so far and the
decision, with the current time passed in (``workflow.now()``): replay gives the same answer.
It never raises on a bad decision; it refuses it with a reason. Checks, in order:

1. the request is still open (else ``late``), and a rule covers its action (else ``no_rule``:
   fail closed, nobody can approve);
2. the decision is for this request, this workflow id, this Temporal run and this request's
   nonce (``wrong_request``): a decision read from one run's history approves nothing else;
3. who signed: a registered approver (``unknown_approver``), with their registered key
   (``key_mismatch``), and the signature verifies (``forged``);
4. from here on the decision is authentic: not processed before (``duplicate``), made for the
   arguments of this request (``digest_mismatch``), signed neither in the future
   (``clock_skew``) nor before the request (``stale``), with a tolerance of :data:`CLOCK_SKEW`;
5. the approver is not approving their own request (``self_approval``, four-eyes: ids compared
   with :func:`~jamjet_temporal._shared._principal.principal_key`, so case, spaces and look-alike
   characters make no difference), is eligible at this stage (``not_eligible``) and has not
   approved already (``already_approved``).

:func:`verify_run_user` decides whether a run's claimed user (the ``JamJetUser`` header) is
proven, the same way: pure, from the config and what Temporal says about the run.

A valid rejection closes the request; a valid approval completes it once the distinct
approvers reach :func:`required_approvals`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, JsonValue

from jamjet_temporal._shared._principal import same_principal
from jamjet_temporal.approvals._identity import (
    RunUser,
    SignedDecision,
    public_key_id,
    verify_run_user_signature,
    verify_signature,
)
from jamjet_temporal.approvals._load import ApprovalConfig, ApprovalRule, Stage

__all__ = [
    "CLOCK_SKEW",
    "ApprovalRequest",
    "ApprovalState",
    "Check",
    "CheckCode",
    "check_decision",
    "required_approvals",
    "verify_run_user",
]

CLOCK_SKEW: Final = timedelta(minutes=5)
"""How far an approver's clock may be from the workflow's."""

RUN_USER_MAX_AGE: Final = timedelta(minutes=10)
"""How long before its workflow started a signed run user may have been issued."""

CheckCode = Literal[
    "approved",
    "rejected",
    "late",
    "no_rule",
    "wrong_request",
    "unknown_approver",
    "key_mismatch",
    "forged",
    "duplicate",
    "digest_mismatch",
    "clock_skew",
    "stale",
    "self_approval",
    "not_eligible",
    "already_approved",
    "malformed",
]
"""Why a decision was accepted (``approved``, ``rejected``) or refused (every other code)."""

_CONFIG: Final = ConfigDict(frozen=True, extra="forbid")


class ApprovalRequest(BaseModel):
    """One approval the workflow waits for, built when it suspends.

    Attributes:
        approval_id: Unique within the run, e.g. ``"apr_1"``.
        run_id: The Temporal workflow id.
        workflow_run_id: The Temporal run id.
        nonce: Random per request (``workflow.uuid4()``, recorded in history): what a
            decision signs along with the ids, so it cannot be replayed into another run.
            Both are None only in runs started before requests had them (they replay so).
        action: The action's name; the config's rule for it decides who approves.
        args: The arguments shown to approvers.
        digest: :func:`~jamjet_temporal.approvals._identity.action_digest` of action and args.
        requester: The user the run acts for, who may not approve it; ``None`` if unknown.
        requested_at: When the workflow asked (``workflow.now()``).
    """

    model_config = _CONFIG

    approval_id: str
    run_id: str
    workflow_run_id: str | None
    nonce: str | None
    action: str
    args: dict[str, JsonValue]
    digest: str
    requester: str | None
    requested_at: AwareDatetime


class Check(BaseModel):
    """The verdict on one decision.

    Attributes:
        accepted: Whether the decision counts.
        reason: What happened, for the audit trail and the approver.
        complete: With this decision the request is decided (approved by enough distinct
            approvers, or rejected).
        code: The verdict in one word (see :data:`CheckCode`).
        authentic: The decision verified with its approver's registered key. Only then does
            its signature go into ``seen_signatures``: a forged decision carrying a copied
            signature must not make the genuine one look like a duplicate.
    """

    model_config = _CONFIG

    accepted: bool
    reason: str
    complete: bool
    code: CheckCode
    authentic: bool = False


class ApprovalState(BaseModel):
    """What has happened to one request so far; the workflow keeps it.

    Attributes:
        stage: ``primary``, or ``escalated`` after a timeout with ``on_timeout: escalate``.
        approvals: Accepted approvals, one per distinct approver.
        seen_signatures: Signatures of the authentic decisions already processed (accepted or
            refused), for replay-safe duplicate detection.
        closed: The request is decided (or timed out); every later decision is refused.
    """

    model_config = _CONFIG

    stage: Stage = "primary"
    approvals: tuple[SignedDecision, ...] = ()
    seen_signatures: tuple[str, ...] = ()
    closed: bool = False

    def after(self, decision: SignedDecision, check: Check) -> ApprovalState:
        """The state once ``decision``, checked as ``check``, has been processed.

        Args:
            decision: The decision.
            check: What :func:`check_decision` said about it against this state.

        Returns:
            The new state: the signature recorded if authentic, the approval added if
            accepted, closed if complete.
        """
        seen = self.seen_signatures
        if check.authentic and decision.signature not in seen:
            seen = (*seen, decision.signature)
        approvals = self.approvals
        if check.accepted and decision.decision == "approved":
            approvals = (*approvals, decision)
        return self.model_copy(
            update={
                "seen_signatures": seen,
                "approvals": approvals,
                "closed": self.closed or check.complete,
            }
        )


def required_approvals(config: ApprovalConfig, rule: ApprovalRule, request: ApprovalRequest) -> int:
    """How many distinct approvers this request needs under ``rule``.

    Args:
        config: The approvals config (the rule's owner).
        rule: The rule for the request's action.
        request: The request; its arguments decide which thresholds apply.

    Returns:
        The rule's ``required``, or the highest ``required`` of the thresholds that apply.
    """
    del config  # the count depends on the rule and the arguments only
    return max(
        (
            rule.required,
            *(
                threshold.required
                for threshold in rule.thresholds
                if threshold.applies(request.args)
            ),
        )
    )


def check_decision(
    config: ApprovalConfig,
    request: ApprovalRequest,
    state: ApprovalState,
    decision: SignedDecision,
    now: datetime,
) -> Check:
    """Decides whether ``decision`` counts towards ``request``. Pure and deterministic.

    Args:
        config: Approvers and rules.
        request: The request decided on.
        state: What has happened to it so far.
        decision: The signed decision received.
        now: The workflow's current time (``workflow.now()``), timezone-aware.

    Returns:
        The verdict; a refusal names what is wrong.

    Raises:
        ValueError: ``now`` is naive (a programming error, not a bad decision).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("check_decision needs a timezone-aware `now` (use workflow.now())")
    if state.closed:
        return _refuse("late", "the request is already closed: this decision came too late")
    rule = config.rule_for(request.action)
    if rule is None:
        return _refuse(
            "no_rule",
            f"no approval rule for action '{request.action}': nobody can approve it (fail closed)",
        )
    if (decision.approval_id, decision.run_id) != (request.approval_id, request.run_id):
        return _refuse(
            "wrong_request",
            f"the decision is for approval '{decision.approval_id}' of run '{decision.run_id}', "
            f"not approval '{request.approval_id}' of run '{request.run_id}'",
        )
    if (decision.workflow_run_id, decision.nonce) != (request.workflow_run_id, request.nonce):
        return _refuse(
            "wrong_request",
            f"the decision was signed for another execution of run '{request.run_id}' "
            f"(Temporal run {decision.workflow_run_id}, nonce {decision.nonce}), not this "
            f"request (Temporal run {request.workflow_run_id}, nonce {request.nonce}): a "
            "decision approves one request only",
        )
    approver = config.approver(decision.approver)
    if approver is None:
        return _refuse("unknown_approver", f"'{decision.approver}' is not a registered approver")
    registered = public_key_id(approver.public_key)
    if decision.key_id != registered:
        return _refuse(
            "key_mismatch",
            f"the decision was signed with key {decision.key_id}, but the key registered for "
            f"'{approver.id}' is {registered}",
        )
    if not verify_signature(decision, approver.public_key):
        return _refuse(
            "forged",
            f"the signature does not verify with the key registered for '{approver.id}': "
            "the decision is forged or was altered after signing",
        )
    return _check_authentic(config, rule, request, state, decision, now)


def _check_authentic(
    config: ApprovalConfig,
    rule: ApprovalRule,
    request: ApprovalRequest,
    state: ApprovalState,
    decision: SignedDecision,
    now: datetime,
) -> Check:
    who = decision.approver
    if decision.signature in state.seen_signatures:
        return _refuse("duplicate", "this decision was already processed (same signature)", True)
    if decision.digest != request.digest:
        return _refuse(
            "digest_mismatch",
            f"decision was made for different arguments: shown digest {decision.digest}, "
            f"request digest {request.digest}",
            True,
        )
    if decision.signed_at > now + CLOCK_SKEW:
        return _refuse(
            "clock_skew",
            f"signed_at {decision.signed_at.isoformat()} is more than "
            f"{_minutes(CLOCK_SKEW)} after the workflow's time {now.isoformat()}: check the "
            "approver's clock and sign again",
            True,
        )
    if decision.signed_at < request.requested_at - CLOCK_SKEW:
        return _refuse(
            "stale",
            f"signed_at {decision.signed_at.isoformat()} is before the request was made "
            f"({request.requested_at.isoformat()}): a decision for an earlier request cannot "
            "be replayed",
            True,
        )
    if decision.decision == "approved" and same_principal(who, request.requester):
        return _refuse(
            "self_approval",
            f"'{who}' requested this action and cannot approve it (four-eyes rule)",
            True,
        )
    eligible = config.eligible(rule, state.stage)
    if who not in eligible:
        return _refuse(
            "not_eligible",
            f"'{who}' may not decide '{request.action}' at the {state.stage} stage "
            f"(eligible: {', '.join(sorted(eligible))})",
            True,
        )
    required = required_approvals(config, rule, request)
    approvers = {approval.approver for approval in state.approvals}
    if decision.decision == "rejected":
        comment = f": {decision.comment}" if decision.comment else ""
        return Check(
            accepted=True,
            reason=f"rejected by '{who}'{comment}",
            complete=True,
            code="rejected",
            authentic=True,
        )
    if who in approvers:
        return _refuse(
            "already_approved",
            f"'{who}' has already approved this request ({len(approvers)} of {required} "
            "distinct approvals so far); another approver is needed",
            True,
        )
    count = len(approvers) + 1
    complete = count >= required
    status = "approved" if complete else f"{required - count} more needed"
    return Check(
        accepted=True,
        reason=f"approval by '{who}' ({count} of {required} distinct approvals; {status})",
        complete=complete,
        code="approved",
        authentic=True,
    )


def verify_run_user(
    config: ApprovalConfig,
    claim: RunUser,
    *,
    workflow_id: str,
    workflow_type: str,
    started_at: datetime,
    parent_run_id: str | None,
    continued_run_id: str | None,
    attempt: int,
) -> str | None:
    """Why ``claim`` does not prove who the run acts for, or None when it does. Pure.

    Args:
        config: The approvals config: its clients and approvers are who may sign.
        claim: The ``JamJetUser`` header.
        workflow_id: The run's workflow id.
        workflow_type: The run's workflow type.
        started_at: When this run started (``workflow.info().workflow_start_time``).
        parent_run_id: The parent's Temporal run id, for a child workflow (Temporal says so).
        continued_run_id: The previous run's id, for a run that continues one (continue-as-new,
            retry, cron; Temporal says so).
        attempt: The run's attempt under the workflow's retry policy.

    Returns:
        None when proven; else the reason, for the refusal.
    """
    if claim.signer is None:
        handed_by = {parent_run_id, continued_run_id} - {None}
        if claim.from_run_id is not None and claim.from_run_id in handed_by:
            return None
        return (
            "the run says it inherited its user, but not from a run Temporal shows as its parent "
            "or predecessor: a client cannot hand a run a user without signing it"
        )
    key: str | None = None
    client = config.client(claim.signer)
    approver = config.approver(claim.signer)
    if client is not None:
        key = client.public_key
    elif approver is not None:
        key = approver.public_key
    else:
        return f"'{claim.signer}' is not a client or approver the approvals config trusts"
    if not verify_run_user_signature(claim, key):
        return (
            f"the signature does not verify with the key registered for '{claim.signer}': "
            "the user claim is forged or was altered"
        )
    if client is not None and not client.may_act_for(claim.user):
        return (
            f"client '{claim.signer}' may not act for '{claim.user}' (its acts_for does not "
            "cover it)"
        )
    if client is None and not same_principal(claim.user, claim.signer):
        return f"approver '{claim.signer}' may only start runs for themselves, not '{claim.user}'"
    if (claim.workflow_id, claim.workflow_type) != (workflow_id, workflow_type):
        return (
            f"the claim was signed for workflow '{claim.workflow_id}' "
            f"({claim.workflow_type}), not '{workflow_id}' ({workflow_type})"
        )
    # A retry (attempt 2 on) re-runs a start whose first attempt already accepted this claim
    # (a refusal is final, never retried); every other run, cron runs included, must be fresh.
    if attempt == 1 and not (
        started_at - RUN_USER_MAX_AGE <= claim.issued_at <= started_at + CLOCK_SKEW
    ):
        return (
            f"the claim was issued at {claim.issued_at.isoformat()}, too far from the run's "
            f"start {started_at.isoformat()}: a signed user cannot be reused for a later run"
        )
    return None


def _refuse(code: CheckCode, reason: str, authentic: bool = False) -> Check:
    return Check(accepted=False, reason=reason, complete=False, code=code, authentic=authentic)


def _minutes(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:g} minutes"
