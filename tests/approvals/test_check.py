"""Whether a signed decision counts: every refusal reason, thresholds, four-eyes, escalation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from jamjet_temporal.approvals._check import (
    CLOCK_SKEW,
    ApprovalRequest,
    ApprovalState,
    Check,
    check_decision,
    required_approvals,
)
from jamjet_temporal.approvals._identity import SignedDecision, SigningIdentity, action_digest
from jamjet_temporal.approvals._load import ApprovalConfig, parse_approvals

PEOPLE = ("alice", "bob", "carol", "dave", "erin", "mallory")
WHO = {name: SigningIdentity.generate(f"{name}@example.com") for name in PEOPLE}
ALICE, BOB, CAROL, DAVE, ERIN, MALLORY = (WHO[name] for name in PEOPLE)
REQUESTED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NOW = REQUESTED + timedelta(minutes=10)

# mallory has a key but is not registered; erin is registered but named by no rule.
CONFIG = parse_approvals(
    f"""
approvers:
  - {{id: alice@example.com, public_key: "{ALICE.public_key}", groups: [treasury]}}
  - {{id: bob@example.com, public_key: "{BOB.public_key}", groups: [treasury]}}
  - {{id: carol@example.com, public_key: "{CAROL.public_key}"}}
  - {{id: dave@example.com, public_key: "{DAVE.public_key}", groups: [cfo]}}
  - {{id: erin@example.com, public_key: "{ERIN.public_key}"}}
rules:
  - action: wire_*
    approvers: [group:treasury, carol@example.com]
    thresholds:
      - {{field: amount, above: 10000, required: 2}}
      - {{field: amount, above: 1000000, required: 3}}
    timeout_seconds: 3600
    on_timeout: escalate
    escalate_to: [group:cfo]
  - action: deploy
    approvers: [alice@example.com]
""",
    "approvals.yaml",
)


def request(
    amount: JsonValue = 5000,
    *,
    action: str = "wire_transfer",
    requester: str | None = "user@example.com",
) -> ApprovalRequest:
    args: dict[str, JsonValue] = {"amount": amount, "to": "ACME"}
    return ApprovalRequest(
        approval_id="apr_1",
        run_id="transfer-42",
        workflow_run_id="run-1",
        nonce="nonce-1",
        action=action,
        args=args,
        digest=action_digest(action, args),
        requester=requester,
        requested_at=REQUESTED,
    )


def decide(
    identity: SigningIdentity,
    req: ApprovalRequest,
    decision: str = "approved",
    **changes: object,
) -> SignedDecision:
    fields: dict[str, object] = {
        "approval_id": req.approval_id,
        "run_id": req.run_id,
        "workflow_run_id": req.workflow_run_id,
        "nonce": req.nonce,
        "digest": req.digest,
        "decision": decision,
        "comment": "",
        "signed_at": NOW - timedelta(minutes=1),
    }
    fields.update(changes)
    return identity.sign(**fields)  # type: ignore[arg-type]


def check(
    decision: SignedDecision,
    req: ApprovalRequest,
    state: ApprovalState | None = None,
    *,
    config: ApprovalConfig = CONFIG,
    now: datetime = NOW,
) -> Check:
    return check_decision(config, req, state or ApprovalState(), decision, now)


def refused(result: Check, code: str) -> str:
    assert (result.accepted, result.complete, result.code) == (False, False, code), result
    return result.reason


# --------------------------------------------------------------------------------------------
# Accepting


def test_one_approval_below_the_threshold_completes() -> None:
    req = request(5000)
    assert required_approvals(CONFIG, CONFIG.rules[0], req) == 1
    result = check(decide(ALICE, req), req)
    assert (result.accepted, result.complete, result.code, result.authentic) == (
        True,
        True,
        "approved",
        True,
    )
    assert result.reason == "approval by 'alice@example.com' (1 of 1 distinct approvals; approved)"


def test_above_the_threshold_two_distinct_approvers_are_needed() -> None:
    req = request(50000)
    assert required_approvals(CONFIG, CONFIG.rules[0], req) == 2
    first = decide(ALICE, req)
    result = check(first, req)
    assert result.accepted and not result.complete
    assert "1 of 2 distinct approvals; 1 more needed" in result.reason
    state = ApprovalState().after(first, result)
    assert state.approvals == (first,) and state.seen_signatures == (first.signature,)
    again = decide(ALICE, req, comment="really")
    assert "already approved" in refused(check(again, req, state), "already_approved")
    second = decide(BOB, req)
    result = check(second, req, state)
    assert result.accepted and result.complete
    state = state.after(second, result)
    assert state.closed and len(state.approvals) == 2


def test_highest_applying_threshold_wins() -> None:
    rule = CONFIG.rules[0]
    assert required_approvals(CONFIG, rule, request(10000)) == 1  # "above" is exclusive
    assert required_approvals(CONFIG, rule, request(10000.01)) == 2
    assert required_approvals(CONFIG, rule, request(2_000_000)) == 3
    assert required_approvals(CONFIG, rule, request("5000")) == 3  # not a number: fail closed


def test_a_threshold_whose_field_is_missing_applies() -> None:
    # The attack: arguments shaped so the threshold's field is not found ({"args": [...]} from
    # the policy gate) must not lower the number of approvers. Fail closed: the most apply.
    req = ApprovalRequest(
        approval_id="apr_1",
        run_id="r",
        workflow_run_id="run-1",
        nonce="n",
        action="wire_transfer",
        args={"args": [500_000, "ACME"]},
        digest=action_digest("wire_transfer", {"args": [500_000, "ACME"]}),
        requester=None,
        requested_at=REQUESTED,
    )
    assert required_approvals(CONFIG, CONFIG.rules[0], req) == 3


def test_rejection_closes_the_request() -> None:
    req = request(50000)
    approval = decide(ALICE, req)
    state = ApprovalState().after(approval, check(approval, req))
    rejection = decide(BOB, req, "rejected", comment="unknown payee")
    result = check(rejection, req, state)
    assert (result.accepted, result.complete, result.code) == (True, True, "rejected")
    assert result.reason == "rejected by 'bob@example.com': unknown payee"
    state = state.after(rejection, result)
    assert state.closed and state.approvals == (approval,)
    late = decide(CAROL, req)
    assert "too late" in refused(check(late, req, state), "late")


def test_an_approver_may_reject_after_approving() -> None:
    req = request(50000)
    approval = decide(ALICE, req)
    state = ApprovalState().after(approval, check(approval, req))
    assert check(decide(ALICE, req, "rejected"), req, state).code == "rejected"


def test_requester_may_reject_their_own_request() -> None:
    req = request(requester="alice@example.com")
    assert check(decide(ALICE, req, "rejected"), req).code == "rejected"


# --------------------------------------------------------------------------------------------
# Refusals, one per reason


def test_late() -> None:
    req = request()
    result = check(decide(ALICE, req), req, ApprovalState(closed=True))
    assert refused(result, "late") == "the request is already closed: this decision came too late"


def test_no_rule_fails_closed() -> None:
    req = request(action="payroll")
    for identity in (ALICE, BOB, DAVE):
        reason = refused(check(decide(identity, req), req), "no_rule")
        assert reason.startswith("no approval rule for action 'payroll'")
    empty = ApprovalConfig()
    assert check(decide(ALICE, request()), request(), config=empty).code == "no_rule"


def test_wrong_approval_id() -> None:
    req = request()
    reason = refused(check(decide(ALICE, req, approval_id="apr_2"), req), "wrong_request")
    assert reason == (
        "the decision is for approval 'apr_2' of run 'transfer-42', "
        "not approval 'apr_1' of run 'transfer-42'"
    )


def test_wrong_run() -> None:
    req = request()
    reason = refused(check(decide(ALICE, req, run_id="transfer-41"), req), "wrong_request")
    assert "of run 'transfer-41'" in reason


def test_digest_mismatch() -> None:
    shown = request(50000)
    changed = request(60000)
    reason = refused(check(decide(ALICE, shown), changed), "digest_mismatch")
    assert reason == (
        "decision was made for different arguments: "
        f"shown digest {shown.digest}, request digest {changed.digest}"
    )


def test_unknown_approver() -> None:
    req = request()
    reason = refused(check(decide(MALLORY, req), req), "unknown_approver")
    assert reason == "'mallory@example.com' is not a registered approver"
    assert not check(decide(MALLORY, req), req).authentic


def test_not_eligible_for_the_action() -> None:
    req = request()
    reason = refused(check(decide(ERIN, req), req), "not_eligible")
    assert reason == (
        "'erin@example.com' may not decide 'wire_transfer' at the primary stage "
        "(eligible: alice@example.com, bob@example.com, carol@example.com)"
    )
    deploy = request(action="deploy")
    assert check(decide(BOB, deploy), deploy).code == "not_eligible"


def test_forged_signature() -> None:
    req = request()
    # mallory signs with her own key but claims to be alice (with alice's key id).
    forged = decide(MALLORY, req).model_copy(
        update={"approver": ALICE.approver, "key_id": ALICE.key_id}
    )
    reason = refused(check(forged, req), "forged")
    assert "does not verify with the key registered for 'alice@example.com'" in reason


def test_altered_after_signing() -> None:
    req = request(50000)
    original = decide(ALICE, req, "rejected")
    altered = original.model_copy(update={"decision": "approved"})
    assert check(altered, req).code == "forged"


def test_key_id_does_not_match_the_registered_key() -> None:
    req = request()
    other_key = SigningIdentity.generate(ALICE.approver)
    reason = refused(check(decide(other_key, req), req), "key_mismatch")
    assert reason == (
        f"the decision was signed with key {other_key.key_id}, but the key registered for "
        f"'alice@example.com' is {ALICE.key_id}"
    )


def test_four_eyes() -> None:
    req = request(requester="alice@example.com")
    reason = refused(check(decide(ALICE, req), req), "self_approval")
    assert reason == (
        "'alice@example.com' requested this action and cannot approve it (four-eyes rule)"
    )
    assert check(decide(BOB, req), req).accepted


def test_duplicate_signature() -> None:
    req = request(50000)
    first = decide(ALICE, req)
    state = ApprovalState().after(first, check(first, req))
    reason = refused(check(first, req, state), "duplicate")
    assert reason == "this decision was already processed (same signature)"


def test_refused_authentic_decision_is_not_reprocessed() -> None:
    req = request()
    wrong = decide(ERIN, req)
    result = check(wrong, req)
    assert result.code == "not_eligible" and result.authentic
    state = ApprovalState().after(wrong, result)
    assert state.seen_signatures == (wrong.signature,)
    assert check(wrong, req, state).code == "duplicate"


def test_forged_copy_of_a_signature_cannot_block_the_genuine_decision() -> None:
    req = request()
    genuine = decide(ALICE, req)
    forged = genuine.model_copy(update={"comment": "tampered"})
    result = check(forged, req)
    assert result.code == "forged" and not result.authentic
    state = ApprovalState().after(forged, result)
    assert state.seen_signatures == ()
    assert check(genuine, req, state).accepted


def test_signed_in_the_future() -> None:
    req = request()
    ahead = decide(ALICE, req, signed_at=NOW + CLOCK_SKEW + timedelta(seconds=1))
    reason = refused(check(ahead, req), "clock_skew")
    assert "more than 5 minutes after the workflow's time" in reason
    within = decide(ALICE, req, signed_at=NOW + CLOCK_SKEW)
    assert check(within, req).accepted


def test_signed_before_the_request() -> None:
    req = request()
    stale = decide(ALICE, req, signed_at=REQUESTED - CLOCK_SKEW - timedelta(seconds=1))
    reason = refused(check(stale, req), "stale")
    assert "before the request was made" in reason and "cannot be replayed" in reason
    within = decide(ALICE, req, signed_at=REQUESTED - CLOCK_SKEW)
    assert check(within, req).accepted


def test_naive_now_is_a_programming_error() -> None:
    req = request()
    with pytest.raises(ValueError, match="timezone-aware"):
        check(decide(ALICE, req), req, now=NOW.replace(tzinfo=None))


# --------------------------------------------------------------------------------------------
# Escalation


def test_escalation_stage_eligibility() -> None:
    req = request(50000)
    dave = decide(DAVE, req)
    reason = refused(check(dave, req), "not_eligible")
    assert "at the primary stage" in reason
    escalated = ApprovalState(stage="escalated")
    result = check(dave, req, escalated)
    assert result.accepted and not result.complete
    state = escalated.after(dave, result)
    # The rule's own approvers still count at the escalated stage.
    alice = decide(ALICE, req)
    assert check(alice, req, state).complete
    assert check(decide(ERIN, req), req, escalated).code == "not_eligible"


def test_approvals_carry_over_into_escalation() -> None:
    req = request(50000)
    alice = decide(ALICE, req)
    state = ApprovalState().after(alice, check(alice, req))
    state = state.model_copy(update={"stage": "escalated"})
    dave = decide(DAVE, req)
    assert check(dave, req, state).complete


# --------------------------------------------------------------------------------------------
# Property: sequences of valid and invalid decisions

VARIANTS = (
    "valid",
    "reject",
    "wrong_digest",
    "wrong_run",
    "forged",
    "future",
    "stale",
    "replay",
)


@st.composite
def sequences(draw: st.DrawFn) -> tuple[ApprovalRequest, str, list[tuple[str, str]]]:
    amounts: list[JsonValue] = [5000, 50000, 5_000_000, "lots"]
    amount = draw(st.sampled_from(amounts))
    requester = draw(st.sampled_from([None, "alice@example.com", "user@example.com"]))
    stage = draw(st.sampled_from(["primary", "escalated"]))
    steps = draw(
        st.lists(
            st.tuples(st.sampled_from(PEOPLE), st.sampled_from(VARIANTS)),
            max_size=12,
        )
    )
    return request(amount, requester=requester), stage, steps


@settings(max_examples=150, deadline=None)
@given(sequences())
def test_random_sequences_never_over_approve(
    case: tuple[ApprovalRequest, str, list[tuple[str, str]]],
) -> None:
    req, stage, steps = case
    rule = CONFIG.rules[0]
    state = ApprovalState(stage=stage)  # type: ignore[arg-type]
    eligible = CONFIG.eligible(rule, state.stage)
    required = required_approvals(CONFIG, rule, req)
    sent: list[SignedDecision] = []
    for name, variant in steps:
        identity = WHO[name]
        if variant == "replay" and sent:
            decision = sent[-1]
        elif variant == "reject":
            decision = decide(identity, req, "rejected")
        elif variant == "wrong_digest":
            decision = decide(identity, req, digest=action_digest("wire_transfer", {"x": 1}))
        elif variant == "wrong_run":
            decision = decide(identity, req, run_id="other")
        elif variant == "forged":
            decision = decide(MALLORY, req).model_copy(
                update={"approver": identity.approver, "key_id": identity.key_id}
            )
        elif variant == "future":
            decision = decide(identity, req, signed_at=NOW + timedelta(hours=1))
        elif variant == "stale":
            decision = decide(identity, req, signed_at=REQUESTED - timedelta(hours=1))
        else:
            decision = decide(identity, req, comment=f"#{len(sent)}")
        sent.append(decision)
        was_closed = state.closed
        result = check(decision, req, state)
        if was_closed:
            assert result.code == "late"
        if result.accepted:
            assert decision.approver in eligible
            assert decision.approver != req.requester or decision.decision == "rejected"
            assert decision.digest == req.digest and decision.run_id == req.run_id
        if result.complete and decision.decision == "approved":
            assert len(state.approvals) + 1 >= required
        state = state.after(decision, result)
        approvers = [approval.approver for approval in state.approvals]
        assert len(approvers) == len(set(approvers)) <= len(eligible)
        assert set(approvers) <= eligible
        if state.closed and state.approvals and result.code == "approved":
            assert len(approvers) >= required
        if not state.closed:
            assert len(approvers) < required
