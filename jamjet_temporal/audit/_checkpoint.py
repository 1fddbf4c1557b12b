"""Signed checkpoints of an audit store's chain head (pure: signing and checking, no I/O).

The hash chain shows an edited event to whoever recomputes it, unless the editor also
recomputed every hash after it, which anyone able to write the store can do (drop the
triggers, edit, re-chain). A checkpoint is the chain's head at some ``seq`` signed with the
audit signing key, which lives outside the database: rewriting any event at or before a
checkpoint then goes unnoticed only by someone who also holds that key.

A checkpoint signs the canonical JSON (keys sorted, no whitespace) of::

    {"type": "jamjet.audit.checkpoint/v1", "store_id": "...", "seq": 42,
     "head": "<hash of event 42>", "signed_at": "2025-01-01T00:00:00.123456+00:00",
     "signer": "sha256:<fingerprint of the public key>"}

``store_id`` is the random id a store gets when it is created, so a checkpoint copied from
another store (which may hold the very same events) does not verify here. Stores keep the
public key beside each checkpoint; whether its signer is *trusted* is the verifier's call
(fingerprints, as for export bundles).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._keys import fingerprint

__all__ = [
    "CHECKPOINT_TYPE",
    "Checkpoint",
    "CheckpointCheck",
    "CheckpointProblem",
    "CheckpointSigner",
    "checkpoint_statement",
]

CHECKPOINT_TYPE = "jamjet.audit.checkpoint/v1"

CheckpointProblem = Literal["checkpoint_mismatch", "checkpoint_beyond_end", "checkpoint_invalid"]


class Checkpoint(NamedTuple):
    """One signed chain head, as stored in ``audit_checkpoints``.

    Attributes:
        seq: The ``seq`` of the event whose hash is the signed head.
        store_id: The id of the store it was signed for.
        head: That event's chain hash.
        signed_at: When it was signed (UTC).
        signer: Fingerprint of the signing key (``sha256:`` + 64 hex digits).
        public_key: The raw Ed25519 public key, base64.
        signature: The Ed25519 signature of ``checkpoint_statement(...)``, base64.
    """

    seq: int
    store_id: str
    head: str
    signed_at: datetime
    signer: str
    public_key: str
    signature: str


def checkpoint_statement(
    store_id: str, seq: int, head: str, signed_at: datetime, signer: str
) -> bytes:
    """The bytes a checkpoint's signature covers (see the module docstring).

    Args:
        store_id: The store's id.
        seq: The checkpoint's ``seq``.
        head: The chain hash at ``seq``.
        signed_at: When it is signed; timezone-aware.
        signer: The signing key's fingerprint.

    Returns:
        The canonical JSON, UTF-8.
    """
    statement = {
        "type": CHECKPOINT_TYPE,
        "store_id": store_id,
        "seq": seq,
        "head": head,
        "signed_at": signed_at.astimezone(UTC).isoformat(),
        "signer": signer,
    }
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode("utf-8")


class CheckpointSigner:
    """Signs chain heads with the audit signing key and says when the next one is due.

    A store given a signer checkpoints inside the append that is due, in the same
    transaction as the events it covers: when asked to (the end of a run), when the store
    has no checkpoint yet, and when ``every_events`` events were appended or ``every`` has
    passed since the last checkpoint, whichever comes first. The cost is one signature
    (about 35 µs) and one row per checkpoint, nothing for the appends in between.

    Args:
        key: The audit signing key (``load_or_create_signing_key``).
        every_events: Events after the last checkpoint that make the next append sign one.
        every: Time after the last checkpoint that makes the next append sign one.

    Raises:
        ValueError: ``every_events`` or ``every`` is not positive.
    """

    def __init__(
        self,
        key: Ed25519PrivateKey,
        *,
        every_events: int = 100,
        every: timedelta = timedelta(seconds=10),
    ) -> None:
        if every_events < 1 or every <= timedelta(0):
            raise ValueError(
                f"checkpoint cadence must be positive, got every_events={every_events}, "
                f"every={every}"
            )
        self._key = key
        self.fingerprint = fingerprint(key)
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._public_key = base64.b64encode(raw).decode("ascii")
        self.every_events = every_events
        self.every = every

    def due(self, last: tuple[int, datetime] | None, seq: int, now: datetime) -> bool:
        """Whether an append that brings the chain to ``seq`` should sign a checkpoint.

        Args:
            last: ``(seq, signed_at)`` of the store's newest checkpoint; None if it has none.
            seq: The chain's new head ``seq``.
            now: The append's time.

        Returns:
            True when the cadence calls for a checkpoint.
        """
        if last is None:
            return True
        return seq - last[0] >= self.every_events or now - last[1] >= self.every

    def sign(self, store_id: str, seq: int, head: str, now: datetime) -> Checkpoint:
        """Sign the head ``(seq, head)`` of store ``store_id``.

        Args:
            store_id: The store's id.
            seq: The head's ``seq``.
            head: The head's chain hash.
            now: The signing time.

        Returns:
            The checkpoint to store.
        """
        signed_at = now.astimezone(UTC)
        statement = checkpoint_statement(store_id, seq, head, signed_at, self.fingerprint)
        signature = base64.b64encode(self._key.sign(statement)).decode("ascii")
        return Checkpoint(
            seq, store_id, head, signed_at, self.fingerprint, self._public_key, signature
        )


def _invalid(checkpoint: Checkpoint, store_id: str) -> str | None:
    """Why a checkpoint's signature does not hold, or None when it does."""
    try:
        raw = base64.b64decode(checkpoint.public_key, validate=True)
        public = Ed25519PublicKey.from_public_bytes(raw)
        signature = base64.b64decode(checkpoint.signature, validate=True)
    except (ValueError, binascii.Error):
        return "its public key or signature is malformed: it was forged or edited"
    if fingerprint(public) != checkpoint.signer:
        return (
            f"its signer {checkpoint.signer} is not the fingerprint of the public key stored "
            "with it: it was forged or edited"
        )
    if checkpoint.store_id != store_id:
        return (
            f"it was signed for store {checkpoint.store_id}, not for this one ({store_id}): "
            "it was copied from another store"
        )
    statement = checkpoint_statement(
        checkpoint.store_id,
        checkpoint.seq,
        checkpoint.head,
        checkpoint.signed_at,
        checkpoint.signer,
    )
    try:
        public.verify(signature, statement)
    except InvalidSignature:
        return "its signature does not verify: it was forged or edited"
    return None


class CheckpointCheck:
    """Checks a store's checkpoints against the chain as ``ChainWalker`` recomputes it.

    Call ``reached`` with each event's ``(seq, hash)`` once its link has checked out, in
    ``seq`` order, then ``finish``.

    Args:
        checkpoints: Every checkpoint of the store.
        store_id: The store's id.
        trusted: Fingerprints of the keys whose checkpoints count as coverage.
    """

    def __init__(
        self, checkpoints: Iterable[Checkpoint], *, store_id: str, trusted: Collection[str]
    ) -> None:
        self._pending = {c.seq: c for c in checkpoints}
        self._store_id = store_id
        self._trusted = frozenset(trusted)
        self.checked = 0
        """Checkpoints whose signature holds and whose head matches the chain."""
        self.covered = 0
        """The newest ``seq`` under a matching checkpoint signed by a trusted key."""
        self.signers: dict[str, bool] = {}
        """Fingerprint of every key with a valid checkpoint -> whether it is trusted."""
        self._matched = 0

    def reached(self, seq: int, head: str) -> tuple[CheckpointProblem, str] | None:
        """Check the checkpoint at ``seq``, if any, against the recomputed ``head``.

        Returns:
            The problem and a sentence for people, or None.
        """
        checkpoint = self._pending.pop(seq, None)
        if checkpoint is None:
            return None
        invalid = _invalid(checkpoint, self._store_id)
        if invalid is not None:
            return "checkpoint_invalid", f"checkpoint at seq {seq}: {invalid}"
        self.signers.setdefault(checkpoint.signer, checkpoint.signer in self._trusted)
        if checkpoint.head != head:
            since = (
                f" (after seq {self._matched}, whose checkpoint still matches)"
                if self._matched
                else ""
            )
            detail = (
                f"checkpoint at seq {seq} signed head {checkpoint.head}, but the chain now has "
                f"{head} there: events at or before seq {seq}{since} were rewritten"
            )
            return "checkpoint_mismatch", detail
        self.checked += 1
        self._matched = seq
        if checkpoint.signer in self._trusted:
            self.covered = seq
        return None

    def finish(self, last_seq: int) -> tuple[int, CheckpointProblem, str] | None:
        """After the last event: a checkpoint beyond the end of the chain is a problem.

        Args:
            last_seq: The ``seq`` of the chain's last event (0 when empty).

        Returns:
            The checkpoint's ``seq``, the problem and a sentence for people, or None.
        """
        if not self._pending:
            return None
        seq = min(self._pending)
        checkpoint = self._pending[seq]
        invalid = _invalid(checkpoint, self._store_id)
        if invalid is not None:
            return seq, "checkpoint_invalid", f"checkpoint at seq {seq}: {invalid}"
        self.signers.setdefault(checkpoint.signer, checkpoint.signer in self._trusted)
        gone = f"event {seq} was" if seq == last_seq + 1 else f"events {last_seq + 1}..{seq} were"
        detail = (
            f"checkpoint at seq {seq} signed head {checkpoint.head}, but the chain ends at seq "
            f"{last_seq}: {gone} removed"
        )
        return seq, "checkpoint_beyond_end", detail
