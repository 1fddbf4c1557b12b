"""Offline verification of audit export bundles (pure: no I/O, no network, no store).

Three separate verdicts:

- **integrity**: the signature is valid over the statement, and the in-toto attestation
  (``dsse``) carries the same statement under a valid signature of the same key; the statement
  matches the content (event count, first and last event, chain head, digests of the chain
  record, redactions and history); the chain recomputed from the events matches. Every
  edited, deleted, reordered, inserted or truncated event is named by position and id.
- **trust**: the signing key is one the caller trusts. Integrity alone proves only that
  *some* key signed the bundle: anyone can edit a bundle and re-sign it with their own key.
- **completeness** (only when the bundle embeds the Temporal history): every governed activity
  scheduled in the history (tools, model calls, memory calls) has its gate decision event,
  every completed one its call event (``memory.*`` for a memory call), and every approval
  submission its approval event.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from collections import Counter
from collections.abc import Collection
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ValidationError
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError

from jamjet_temporal._shared._runtime import is_reserved
from jamjet_temporal._shared._wire import MEMORY_EVENT_KINDS, MEMORY_SUBJECTS
from jamjet_temporal.audit._chain import GENESIS_HASH, link_hash
from jamjet_temporal.audit._export import (
    BUNDLE_FORMAT,
    DSSE_PAYLOAD_TYPE,
    attestation_key,
    bundle_chain,
    canonical_text,
    digest_of,
    intoto_statement,
    summarize,
)
from jamjet_temporal.audit._keys import fingerprint, load_public_key
from jamjet_temporal.audit._types import AuditEvent

__all__ = ["Verdict", "verify_bundle"]

_DECISIONS = ("policy.decision", "policy.model_decision")
_CALLS = ("tool.call", "model.call")
_MEMORY = tuple(sorted(set(MEMORY_EVENT_KINDS.values())))
_APPROVAL_INPUTS = frozenset({"jamjet.approval.decide", "jamjet.approval.submit"})


class Verdict(BaseModel, frozen=True):
    """The outcome of ``verify_bundle``.

    Attributes:
        integrity_ok: The bundle is exactly what its key signed.
        completeness_ok: Every activity and approval in the embedded history has its audit
            events; None when the bundle has no history.
        integrity_problems: Sentences naming each integrity problem.
        completeness_problems: Sentences naming each missing audit event.
        signer: Fingerprint of the bundle's signing key ("" when unreadable).
        trusted: The signing key is one of the trusted keys.
        attested: The bundle carries an in-toto attestation (bundles exported before
            attestations existed do not; their statement's signature covers them alone).
        event_count: Events in the bundle.
    """

    integrity_ok: bool
    completeness_ok: bool | None
    integrity_problems: list[str] = []
    completeness_problems: list[str] = []
    signer: str = ""
    trusted: bool = False
    attested: bool = False
    event_count: int = 0

    @property
    def problems(self) -> list[str]:
        """Every problem: integrity, then trust, then completeness."""
        distrust = (
            [] if self.trusted else [f"the signer {self.signer or '(unknown)'} is not trusted"]
        )
        return [*self.integrity_problems, *distrust, *self.completeness_problems]

    @property
    def ok(self) -> bool:
        """Integrity holds, the signer is trusted, completeness holds or was not checked."""
        return self.integrity_ok and self.trusted and self.completeness_ok is not False

    @property
    def exit_code(self) -> int:
        """0 ok, else the sum of 1 integrity failed, 2 completeness failed, 4 not trusted."""
        return (
            (0 if self.integrity_ok else 1)
            | (2 if self.completeness_ok is False else 0)
            | (0 if self.trusted else 4)
        )


def _name(position: int, event: object) -> str:
    eid = event.get("id") if isinstance(event, dict) else None
    return f"event {position} ({eid})" if isinstance(eid, str) else f"event {position}"


def _check_signature(
    bundle: dict[str, Any], statement: dict[str, Any], problems: list[str]
) -> Ed25519PublicKey | None:
    """Check the signature and key; returns the embedded key (None if unreadable)."""
    pem = bundle.get("public_key")
    try:
        public = load_public_key(pem if isinstance(pem, str) else "")
    except (ValueError, TypeError) as exc:
        problems.append(f"the bundle's public key is not a readable Ed25519 key ({exc})")
        return None
    actual = fingerprint(public)
    if statement.get("public_key_fingerprint") != actual:
        problems.append(
            f"the statement names key {statement.get('public_key_fingerprint')} but the "
            f"bundle carries key {actual}"
        )
    try:
        signature = base64.b64decode(str(bundle.get("signature", "")), validate=True)
        public.verify(signature, canonical_text(statement).encode("utf-8"))
    except (InvalidSignature, binascii.Error, ValueError):
        problems.append(
            f"the signature does not match the statement under key {actual}: the statement "
            "was changed after signing or signed by another key"
        )
    return public


def _check_attestation(
    bundle: dict[str, Any],
    statement: dict[str, Any],
    public: Ed25519PublicKey,
    problems: list[str],
) -> None:
    """Check the DSSE envelope is the statement's in-toto attestation, signed by ``public``."""
    raw = bundle.get("dsse")
    if raw is None:
        # Bundles exported before attestations existed; the statement's own signature still
        # covers everything, so the bundle stays verifiable (the verdict says it is unattested).
        return
    if not isinstance(raw, dict):
        problems.append("the in-toto attestation (dsse) is not a DSSE envelope")
        return
    try:
        # from_dict rewrites the signature dicts it is given: hand it a copy.
        envelope = Envelope.from_dict(copy.deepcopy(raw))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        problems.append(f"the in-toto attestation (dsse) is not a DSSE envelope ({exc!r})")
        return
    if envelope.payload_type != DSSE_PAYLOAD_TYPE:
        problems.append(
            f"the in-toto attestation's payload type is {envelope.payload_type!r}, "
            f"not {DSSE_PAYLOAD_TYPE!r}"
        )
    try:
        envelope.verify([attestation_key(public)], 1)
    except VerificationError:
        problems.append(
            f"the in-toto attestation's signature does not verify under key {fingerprint(public)}"
        )
    try:
        carried = json.loads(envelope.payload)
    except ValueError:
        carried = None
    if carried != intoto_statement(statement):
        problems.append("the in-toto attestation does not carry the bundle's statement")


def _check_events(
    events: list[Any], chain: dict[str, Any], run_id: object, problems: list[str]
) -> None:
    """Name every inserted, deleted, reordered, edited or truncated event."""
    for i, event in enumerate(events, 1):
        try:
            parsed = AuditEvent.model_validate(event)
        except ValidationError as exc:
            problems.append(f"{_name(i, event)} is not a valid audit event: {exc.errors()[0]}")
            continue
        if parsed.run_id != run_id:
            problems.append(f"{_name(i, event)} belongs to run {parsed.run_id}, not {run_id}")
    ids = [e.get("id") if isinstance(e, dict) else None for e in events]
    for eid, times in Counter(ids).items():
        if eid is not None and times > 1:
            problems.append(f"event {eid} appears {times} times: a copy was inserted")
    signed_ids = chain.get("ids")
    signed_hashes = chain.get("hashes")
    if not (
        isinstance(signed_ids, list)
        and isinstance(signed_hashes, list)
        and len(signed_ids) == len(signed_hashes)
    ):
        return
    where = {eid: j for j, eid in enumerate(signed_ids)}
    present = set(ids)
    for i, event in enumerate(events, 1):
        eid = ids[i - 1]
        j = where.get(eid)
        if j is None:
            problems.append(f"{_name(i, event)} was inserted: it is not in the signed chain")
            continue
        prev = GENESIS_HASH if j == 0 else str(signed_hashes[j - 1])
        if link_hash(prev, canonical_text(event)) != signed_hashes[j]:
            problems.append(f"{_name(i, event)} was edited: hash mismatch")
    # Order: the signed ids still present must appear in signed order.
    kept_signed = [eid for eid in signed_ids if eid in present]
    kept_bundle = [eid for eid in ids if eid in where]
    if kept_signed != kept_bundle:
        for i, eid in enumerate(ids, 1):
            if eid in where and kept_bundle.index(eid) != kept_signed.index(eid):
                problems.append(
                    f"event {i} ({eid}) was reordered: it was signed at position {where[eid] + 1}"
                )
    last_kept = max((where[eid] for eid in ids if eid in where), default=-1)
    for j, eid in enumerate(signed_ids):
        if eid in present:
            continue
        if j > last_kept:
            problems.append(f"event {j + 1} ({eid}) was removed from the end (truncated)")
        else:
            problems.append(f"event {j + 1} ({eid}) was deleted")


def _check_integrity(bundle: dict[str, Any], problems: list[str]) -> tuple[str, int]:
    if bundle.get("format") != BUNDLE_FORMAT:
        problems.append(f"format is {bundle.get('format')!r}, not {BUNDLE_FORMAT!r}")
    statement = bundle.get("statement")
    events = bundle.get("events")
    chain = bundle.get("chain")
    if not isinstance(statement, dict) or not isinstance(events, list):
        problems.append("the bundle has no statement or no event list: it is not a bundle")
        return "", 0
    if not isinstance(chain, dict):
        chain = {}
    public = _check_signature(bundle, statement, problems)
    key = ""
    if public is not None:
        key = fingerprint(public)
        _check_attestation(bundle, statement, public, problems)
    run_id = statement.get("run_id")
    for field in ("run_id", "format", "exported_at", "include"):
        if field in bundle and bundle[field] != statement.get(field):
            problems.append(
                f"{field} is {bundle[field]!r} but the statement says {statement.get(field)!r}"
            )
    chain_intact = digest_of(chain) == statement.get("chain_digest")
    if not chain_intact:
        problems.append("the chain record (ids and hashes) was changed after signing")
    count = statement.get("event_count")
    if len(events) != count:
        how = (
            "events missing or truncated"
            if isinstance(count, int) and len(events) < count
            else ("events inserted")
        )
        problems.append(f"event count {len(events)} but statement says {count} ({how})")
    first = events[0].get("id") if events and isinstance(events[0], dict) else None
    last = events[-1].get("id") if events and isinstance(events[-1], dict) else None
    if first != statement.get("first_event"):
        problems.append(f"first event is {first} but statement says {statement.get('first_event')}")
    if last != statement.get("last_event"):
        problems.append(f"last event is {last} but statement says {statement.get('last_event')}")
    try:
        hashes = bundle_chain(events)
    except (TypeError, ValueError) as exc:
        problems.append(f"the events are not canonical JSON ({exc})")
        return key, len(events)
    head = hashes[-1] if hashes else GENESIS_HASH
    if head != statement.get("chain_head"):
        problems.append(f"recomputed chain head {head} differs from the signed chain head")
    if chain_intact:
        _check_events(events, chain, run_id, problems)
    if digest_of(bundle.get("redactions", [])) != statement.get("redactions_digest"):
        problems.append("the redaction list was changed after signing")
    history = bundle.get("history")
    expected = None if history is None else digest_of(history)
    if expected != statement.get("history_digest"):
        problems.append("the embedded Temporal history was changed, added or removed after signing")
    if bundle.get("summary") != summarize(e for e in events if isinstance(e, dict)):
        problems.append("the summary does not match the events")
    return key, len(events)


def _history_events(history: Any) -> list[dict[str, Any]]:
    if isinstance(history, dict) and isinstance(history.get("events"), list):
        return [e for e in history["events"] if isinstance(e, dict)]
    return []


def _check_completeness(bundle: dict[str, Any], problems: list[str]) -> None:
    history = _history_events(bundle.get("history"))
    if not history:
        problems.append("the embedded history has no events: nothing to check against")
        return
    events = [e for e in bundle.get("events", []) if isinstance(e, dict)]
    included = bundle.get("statement", {}).get("include") or []
    run_ids: set[str] = set()
    for h in history:
        started = h.get("workflowExecutionStartedEventAttributes")
        if isinstance(started, dict):
            run_ids.update(
                str(started[k])
                for k in ("originalExecutionRunId", "firstExecutionRunId")
                if started.get(k)
            )
    own = [e for e in events if e.get("workflow_run_id") in run_ids] or events

    def recorded(kinds: tuple[str, ...], activity_id: str) -> bool:
        return any(
            e.get("kind") in kinds and (e.get("data") or {}).get("activity_id") == activity_id
            for e in own
        )

    scheduled: dict[str, tuple[str, str]] = {}
    submissions = 0
    for h in history:
        attrs = h.get("activityTaskScheduledEventAttributes")
        if isinstance(attrs, dict):
            name = str((attrs.get("activityType") or {}).get("name", ""))
            # Memory calls are decided and recorded like tools (as memory.* events).
            if not is_reserved(name) or name in MEMORY_SUBJECTS:
                scheduled[str(h.get("eventId"))] = (str(attrs.get("activityId")), name)
                if "policy" in included and not recorded(
                    (*_DECISIONS, "tool.refused"), str(attrs.get("activityId"))
                ):
                    problems.append(
                        f"activity {attrs.get('activityId')} ({name}, history event "
                        f"{h.get('eventId')}) was scheduled but has no policy decision event"
                    )
        done = h.get("activityTaskCompletedEventAttributes")
        if isinstance(done, dict) and "tools" in included:
            found = scheduled.get(str(done.get("scheduledEventId")))
            memory = found is not None and found[1] in MEMORY_SUBJECTS
            if found is not None and not recorded(_MEMORY if memory else _CALLS, found[0]):
                what = "memory.* event" if memory else "tool.call or model.call event"
                problems.append(
                    f"activity {found[0]} ({found[1]}) completed in history event "
                    f"{h.get('eventId')} but has no {what}"
                )
        signal = h.get("workflowExecutionSignaledEventAttributes")
        if isinstance(signal, dict) and signal.get("signalName") in _APPROVAL_INPUTS:
            submissions += 1
        update = h.get("workflowExecutionUpdateAcceptedEventAttributes")
        if isinstance(update, dict):
            request = (update.get("acceptedRequest") or {}).get("input") or {}
            if request.get("name") in _APPROVAL_INPUTS:
                submissions += 1
    if "approvals" in included:
        answered = sum(1 for e in own if e.get("kind") in ("approval.decision", "approval.refused"))
        if answered < submissions:
            problems.append(
                f"the history has {submissions} approval submissions but the bundle records "
                f"only {answered} approval decisions"
            )


def verify_bundle(bundle: dict[str, Any], *, trusted_keys: Collection[str] = ()) -> Verdict:
    """Verify an audit bundle offline.

    Args:
        bundle: The bundle (e.g. from ``read_bundle``).
        trusted_keys: Fingerprints (``"sha256:..."``, as ``jamjet audit key`` prints them) of
            the keys trusted to sign bundles; a bundle signed by any other key is not trusted,
            however intact (anyone can re-sign an edited bundle with their own key).

    Returns:
        The verdict: integrity, trust and completeness separately, each problem named.

    Raises:
        TypeError: ``trusted_keys`` is one string rather than a collection of fingerprints.
    """
    if isinstance(trusted_keys, str):
        raise TypeError(f"trusted_keys must be a collection of fingerprints: [{trusted_keys!r}]")
    integrity: list[str] = []
    completeness: list[str] = []
    if not isinstance(bundle, dict):
        return Verdict(
            integrity_ok=False, completeness_ok=None, integrity_problems=["not a JSON object"]
        )
    key, count = _check_integrity(bundle, integrity)
    checked: bool | None = None
    if bundle.get("history") is not None:
        _check_completeness(bundle, completeness)
        checked = not completeness
    return Verdict(
        integrity_ok=not integrity,
        completeness_ok=checked,
        integrity_problems=integrity,
        completeness_problems=completeness,
        signer=key,
        trusted=bool(key) and key in {k.lower() for k in trusted_keys},
        attested=isinstance(bundle.get("dsse"), dict),
        event_count=count,
    )
