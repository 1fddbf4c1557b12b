"""Signed audit export bundles: one run's events, chained, summarised and signed (client side).

A bundle is one JSON document an auditor can check offline with ``verify_bundle``::

    format      "jamjet-audit-bundle/1"
    run_id      the workflow id
    exported_at when the bundle was made (UTC, ISO 8601)
    include     the event categories it holds
    events      each event's canonical JSON object (after redaction), in store order
    chain       {"algorithm": "sha256", "genesis", "ids", "hashes", "head"}: a hash chain over
                THIS bundle's events, ``hash = sha256(prev + canonical_json(event))``
    summary     counts of events, tool and model calls, policy outcomes; approvals; budget
    redactions  [{"event_id", "path", "rule"}]: every value replaced by "[REDACTED]"
    history     the Temporal history JSON, when given (for the completeness check)
    statement   what the signature covers: run id, count, first and last event, chain head,
                digests of the chain record, redactions and history, the key's fingerprint
    public_key  the signing key's public half (PEM, as this format defines it; verifiers also
                read the ``ed25519:`` public key text of ``_shared._keys``)
    signature   base64 Ed25519 signature over the statement's canonical JSON
    dsse        the same statement as an in-toto attestation: a DSSE envelope (payload type
                ``application/vnd.in-toto+json``) of an in-toto Statement v1 whose subject is
                ``audit-events:<run_id>`` with the sha256 of the chain record (the statement's
                ``chain_digest``), predicate type ``https://jamjet.dev/audit-bundle/v1`` and
                the statement as predicate; signed by the same key, ``keyid`` its fingerprint

Redaction happens before hashing: the chain covers what the bundle contains, so a redacted
bundle still verifies, and ``redactions`` (covered by the signature) says what was masked.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from securesystemslib.dsse import Envelope

# securesystemslib.signer re-exports these without __all__, which mypy --strict does not see.
from securesystemslib.signer import CryptoSigner, SSlibKey  # type: ignore[attr-defined]

from jamjet_temporal._shared import _canonical
from jamjet_temporal.audit._chain import GENESIS_HASH, canonical_json, link_hash
from jamjet_temporal.audit._keys import fingerprint, public_key_pem
from jamjet_temporal.audit._store import AuditStore
from jamjet_temporal.errors import ExportError

__all__ = [
    "BUNDLE_FORMAT",
    "CATEGORIES",
    "DSSE_PAYLOAD_TYPE",
    "INTOTO_STATEMENT_TYPE",
    "PREDICATE_TYPE",
    "REDACTED",
    "ExportError",
    "attestation_key",
    "bundle_chain",
    "canonical_text",
    "category_of",
    "digest_of",
    "export_bundle",
    "intoto_statement",
    "read_bundle",
    "redact_event",
    "seal_bundle",
    "summarize",
    "write_attestation",
    "write_bundle",
]

BUNDLE_FORMAT = "jamjet-audit-bundle/1"
"""The ``format`` of the bundles this module writes."""

REDACTED = "[REDACTED]"
"""What a redacted value is replaced with."""

CATEGORIES = ("events", "tools", "policy", "approvals", "budget")
"""The event categories ``include`` chooses from; ``events`` is every kind not in another."""

INTOTO_STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
"""The ``_type`` of the in-toto Statement in a bundle's ``dsse`` envelope."""

PREDICATE_TYPE = "https://jamjet.dev/audit-bundle/v1"
"""The in-toto ``predicateType`` of a bundle statement."""

DSSE_PAYLOAD_TYPE = "application/vnd.in-toto+json"
"""The DSSE ``payloadType`` of an in-toto Statement."""

# Fields every event needs to stay an event; redaction rules may not touch them.
_FIXED_FIELDS = ("id", "run_id", "workflow_run_id", "kind", "at")
_REDACTABLE_ROOTS = ("actor", "data")


def canonical_text(value: object) -> str:
    """Canonical JSON text of any JSON value: sorted keys, no whitespace, UTF-8 kept as is.

    The package's one canonical JSON (``_shared._canonical.canonical_json``); for an event's
    JSON object it equals ``canonical_json`` of the event.

    Args:
        value: A JSON-compatible value.

    Returns:
        The canonical JSON text.
    """
    return _canonical.canonical_json(value)


def digest_of(value: object) -> str:
    """``"sha256:"`` + hex sha256 of ``canonical_text(value)`` (``_shared._canonical.digest``)."""
    return _canonical.digest(value)


def intoto_statement(statement: dict[str, Any]) -> dict[str, Any]:
    """The in-toto Statement v1 carrying a bundle statement as its predicate.

    Args:
        statement: The bundle's signed statement.

    Returns:
        The Statement: subject ``audit-events:<run_id>`` with the sha256 of the bundle's
        chain record (``chain_digest``), predicate type ``PREDICATE_TYPE``.
    """
    return {
        "_type": INTOTO_STATEMENT_TYPE,
        "subject": [
            {
                "name": f"audit-events:{statement.get('run_id')}",
                "digest": {"sha256": str(statement.get("chain_digest")).removeprefix("sha256:")},
            }
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": statement,
    }


def attestation_key(public_key: Ed25519PublicKey) -> SSlibKey:
    """The key as DSSE tooling (securesystemslib) names it: ``keyid`` is its fingerprint.

    Args:
        public_key: The bundle's public key.

    Returns:
        The key to verify a bundle's ``dsse`` envelope with.
    """
    return SSlibKey.from_crypto(public_key, keyid=fingerprint(public_key))


def bundle_chain(events: Sequence[object]) -> list[str]:
    """The chain hashes over a bundle's events, starting from ``GENESIS_HASH``.

    Args:
        events: The events' JSON objects, in bundle order.

    Returns:
        One hash per event; the last one is the chain head.
    """
    hashes: list[str] = []
    prev = GENESIS_HASH
    for event in events:
        prev = link_hash(prev, canonical_text(event))
        hashes.append(prev)
    return hashes


def category_of(kind: str) -> str:
    """The ``include`` category of an event kind (``tools``, ``policy``... or ``events``)."""
    if kind in ("tool.call", "model.call", "tool.refused") or kind.startswith("memory."):
        return "tools"
    if kind.startswith("policy."):
        return "policy"
    if kind.startswith("approval."):
        return "approvals"
    if kind.startswith("budget."):
        return "budget"
    return "events"


def _data(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    return data if isinstance(data, dict) else {}


def summarize(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The bundle summary, recomputable from the bundle's events.

    Args:
        events: The events' JSON objects.

    Returns:
        ``{"events", "tool_calls", "model_calls", "refused", "policy": {"allowed", "blocked",
        "waiting_for_approval", "evaluated"}, "approvals": [...], "budget": [...]}``.
    """
    count = tool_calls = model_calls = refused = 0
    policy = {"allowed": 0, "blocked": 0, "waiting_for_approval": 0, "evaluated": 0}
    approvals: list[dict[str, Any]] = []
    budget: list[dict[str, Any]] = []
    for event in events:
        count += 1
        kind = event.get("kind")
        data = _data(event)
        if kind == "tool.call":
            tool_calls += 1
        elif kind == "model.call":
            model_calls += 1
        elif kind == "tool.refused":
            refused += 1
        elif kind in ("policy.decision", "policy.model_decision"):
            policy["evaluated"] += 1
            decision = data.get("decision")
            if decision in ("ALLOWED", "AUDIT"):
                policy["allowed"] += 1
            elif decision == "BLOCKED":
                policy["blocked"] += 1
            elif decision == "WAITING_FOR_APPROVAL":
                policy["waiting_for_approval"] += 1
        elif isinstance(kind, str) and kind.startswith("approval."):
            approvals.append(
                {
                    "event_id": event.get("id"),
                    "kind": kind,
                    "time": event.get("at"),
                    "approval_id": data.get("approval_id"),
                    "action": data.get("action"),
                    "approver": data.get("approver"),
                    "decision": data.get("decision"),
                    "digest": data.get("digest"),
                }
            )
        elif isinstance(kind, str) and kind.startswith("budget."):
            budget.append(
                {
                    "event_id": event.get("id"),
                    "time": event.get("at"),
                    "decision": data.get("decision"),
                    "scope": data.get("scope"),
                    "activity_id": data.get("activity_id"),
                }
            )
    return {
        "events": count,
        "tool_calls": tool_calls,
        "model_calls": model_calls,
        "refused": refused,
        "policy": policy,
        "approvals": approvals,
        "budget": budget,
    }


def check_redaction_rules(redact: Sequence[str]) -> list[str]:
    """The redaction rules as a list; raises ``ExportError`` naming a malformed one."""
    if isinstance(redact, str):
        raise ExportError(f"redact must be a list of rules, not a string: use [{redact!r}]")
    rules = list(redact)
    for rule in rules:
        if not rule or any(not part for part in rule.split(".")):
            raise ExportError(f"redaction rule {rule!r} is empty or has an empty part")
        root = rule.split(".")[0]
        if "." in rule and root not in _REDACTABLE_ROOTS:
            raise ExportError(
                f"redaction rule {rule!r} must start with 'actor.' or 'data.' "
                f"(the fields {', '.join(_FIXED_FIELDS)} identify the event and stay)"
            )
    return rules


def _mask_key(value: Any, key: str, path: str, hits: list[str]) -> Any:
    """Replace the value of every ``key`` inside ``value``, collecting the dotted paths."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for name, item in value.items():
            here = f"{path}.{name}"
            if name == key:
                out[name] = REDACTED
                hits.append(here)
            else:
                out[name] = _mask_key(item, key, here, hits)
        return out
    if isinstance(value, list):
        return [_mask_key(item, key, f"{path}.{i}", hits) for i, item in enumerate(value)]
    return value


def _mask_path(event: dict[str, Any], parts: list[str]) -> bool:
    """Replace the value at a dotted path (through objects) in place; False when absent."""
    node: Any = event
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    if not isinstance(node, dict) or parts[-1] not in node:
        return False
    node[parts[-1]] = REDACTED
    return True


def redact_event(
    event: dict[str, Any], rules: Sequence[str]
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Apply redaction rules to one event's JSON object.

    Args:
        event: The event's JSON object (not modified).
        rules: Dotted paths (``data.args``) or key names to mask anywhere in ``actor`` and
            ``data`` (``password``).

    Returns:
        The redacted copy and one ``{"event_id", "path", "rule"}`` per masked value.
    """
    out: dict[str, Any] = json.loads(canonical_text(event))
    listed: list[dict[str, str]] = []
    for rule in rules:
        if "." in rule:
            if _mask_path(out, rule.split(".")):
                listed.append({"event_id": str(out["id"]), "path": rule, "rule": rule})
            continue
        for root in _REDACTABLE_ROOTS:
            hits: list[str] = []
            out[root] = _mask_key(out.get(root, {}), rule, root, hits)
            listed.extend({"event_id": str(out["id"]), "path": p, "rule": rule} for p in hits)
    return out, listed


async def export_bundle(
    store: AuditStore,
    run_id: str,
    *,
    include: Sequence[str] = CATEGORIES,
    history_json: str | None = None,
    redact: Sequence[str] = (),
    key: Ed25519PrivateKey,
) -> dict[str, Any]:
    """Build the signed audit bundle of one run.

    Args:
        store: The audit store to read.
        run_id: The run (workflow id) to export.
        include: Event categories to include: ``events`` (kinds not in another category),
            ``tools`` (tool and model calls, refusals), ``policy``, ``approvals``, ``budget``.
        history_json: The run's Temporal history (``WorkflowHistory.to_json()``), embedded so
            ``verify_bundle`` can check every activity in it has its audit events.
        redact: Redaction rules: dotted paths (``data.args``, ``data.result``,
            ``actor.user``) or key names masked anywhere in ``actor`` and ``data``
            (``password``, ``api_key``).
        key: The Ed25519 key to sign with (see ``load_or_create_signing_key``).

    Returns:
        The bundle (a JSON-compatible dict); write it with ``write_bundle``.

    Raises:
        ExportError: Unknown category or bad redaction rule, history that is not JSON, or no
            event of the run in the store.
    """
    if isinstance(include, str):
        raise ExportError(f"include must be a list of categories, not a string: [{include!r}]")
    unknown = sorted(set(include) - set(CATEGORIES))
    if unknown:
        raise ExportError(
            f"unknown include categories {unknown}; choose from {', '.join(CATEGORIES)}"
        )
    rules = check_redaction_rules(redact)
    history: Any = None
    if history_json is not None:
        try:
            history = json.loads(history_json)
        except json.JSONDecodeError as exc:
            raise ExportError(f"history_json is not JSON: {exc}") from None
    stored = await store.events(run_id)
    if not stored:
        raise ExportError(
            f"the audit store has no events for run {run_id!r}; check the run id and that the "
            "workers recorded to this store"
        )
    events: list[dict[str, Any]] = []
    redactions: list[dict[str, str]] = []
    for item in stored:
        if category_of(item.event.kind) not in include:
            continue
        obj = json.loads(canonical_json(item.event))
        masked, listed = redact_event(obj, rules)
        events.append(masked)
        redactions.extend(listed)
    return seal_bundle(
        run_id,
        events,
        include=[c for c in CATEGORIES if c in include],
        redactions=redactions,
        history=history,
        key=key,
    )


def seal_bundle(
    run_id: str,
    events: Sequence[dict[str, Any]],
    *,
    include: Sequence[str],
    redactions: Sequence[dict[str, str]],
    history: Any,
    key: Ed25519PrivateKey,
) -> dict[str, Any]:
    """Chain, summarise and sign already selected and redacted events into a bundle.

    Args:
        run_id: The run the events belong to.
        events: The events' JSON objects, in order.
        include: The categories they were selected by.
        redactions: What was redacted in them.
        history: The parsed Temporal history JSON, or None.
        key: The key to sign with.

    Returns:
        The bundle.
    """
    events = list(events)
    redactions = list(redactions)
    hashes = bundle_chain(events)
    head = hashes[-1] if hashes else GENESIS_HASH
    chain = {
        "algorithm": "sha256",
        "genesis": GENESIS_HASH,
        "ids": [e["id"] for e in events],
        "hashes": hashes,
        "head": head,
    }
    exported_at = datetime.now(UTC).isoformat()
    included = list(include)
    statement = {
        "format": BUNDLE_FORMAT,
        "run_id": run_id,
        "exported_at": exported_at,
        "include": included,
        "event_count": len(events),
        "first_event": events[0]["id"] if events else None,
        "last_event": events[-1]["id"] if events else None,
        "chain_head": head,
        "chain_digest": digest_of(chain),
        "redactions_digest": digest_of(redactions),
        "history_digest": None if history is None else digest_of(history),
        "public_key_fingerprint": fingerprint(key.public_key()),
    }
    signature = key.sign(canonical_text(statement).encode("utf-8"))
    envelope = Envelope(
        canonical_text(intoto_statement(statement)).encode("utf-8"), DSSE_PAYLOAD_TYPE, {}
    )
    envelope.sign(CryptoSigner(key, attestation_key(key.public_key())))
    return {
        "format": BUNDLE_FORMAT,
        "run_id": run_id,
        "exported_at": exported_at,
        "include": included,
        "events": events,
        "chain": chain,
        "summary": summarize(events),
        "redactions": redactions,
        "history": history,
        "statement": statement,
        "public_key": public_key_pem(key),
        "signature": base64.b64encode(signature).decode("ascii"),
        "dsse": envelope.to_dict(),
    }


def write_bundle(bundle: dict[str, Any], path: Path) -> None:
    """Write a bundle as canonical JSON (sorted keys, UTF-8) plus a final newline.

    Args:
        bundle: The bundle from ``export_bundle``.
        path: The file to write (replaced if it exists).
    """
    path.write_text(canonical_text(bundle) + "\n", encoding="utf-8")


def write_attestation(bundle: dict[str, Any], path: Path) -> None:
    """Write a bundle's in-toto attestation (its DSSE envelope) as one JSON line.

    Args:
        bundle: The bundle from ``export_bundle``.
        path: The file to write (replaced if it exists), by convention ``<name>.intoto.jsonl``.
    """
    path.write_text(canonical_text(bundle["dsse"]) + "\n", encoding="utf-8")


def read_bundle(path: Path) -> dict[str, Any]:
    """Read a bundle file.

    Args:
        path: The file.

    Returns:
        The bundle.

    Raises:
        ExportError: It is unreadable or not a JSON object.
    """
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"cannot read audit bundle {path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise ExportError(f"{path} is not an audit bundle (not a JSON object)")
    return loaded
