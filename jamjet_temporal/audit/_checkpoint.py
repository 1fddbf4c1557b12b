"""Signed checkpoints of an audit store's chain head, and the signer's record of them.

The hash chain shows an edited event to whoever recomputes it, unless the editor also
recomputed every hash after it, which anyone able to write the store can do (drop the
triggers, edit, re-chain). A checkpoint is the chain's head at some ``seq`` signed with the
audit signing key, which lives outside the database: rewriting any event at or before a
checkpoint then goes unnoticed only by someone who also holds that key.

A checkpoint signs the canonical JSON (``_shared._canonical``: keys sorted, no whitespace,
UTF-8) of::

    {"type": "jamjet.audit.checkpoint/v1", "store_id": "...", "seq": 42,
     "head": "<hash of event 42>", "signed_at": "2025-01-01T00:00:00.123456+00:00",
     "signer": "sha256:<fingerprint of the public key>"}

``store_id`` is the random id a store gets when it is created, so a checkpoint copied from
another store (which may hold the very same events) does not verify here. Stores keep the
public key beside each checkpoint; whether its signer is *trusted* is the verifier's call
(fingerprints, as for export bundles).

Whoever can write the store can also delete checkpoints, rewrite the events under them and
wait for the next worker append to sign the rewritten head. So a signer keeps a high-water
mark outside the database: the newest ``(seq, head)`` its key signed for each store, in memory
and, given a marks file (``<key path>.checkpoints.json``, beside the key), on disk::

    {"type": "jamjet.audit.checkpoint-marks/v1",
     "stores": {"<store_id>": {"sha256:<fingerprint>": {"seq": 42, "head": "<hash>"}}}}

Before signing, a store asks the signer for its mark and has it checked against the event and
the checkpoint at the mark's ``seq`` (``CheckpointSigner.check``); a contradiction raises
``AuditTamperedError`` and nothing is appended. Signing and checking are pure; reading and
writing the marks file is this module's only I/O, done by stores inside ``append`` (activity
side, never in workflow code).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ValidationError

from jamjet_temporal._shared import _keys as keys
from jamjet_temporal._shared._canonical import canonical_json
from jamjet_temporal.audit._keys import fingerprint
from jamjet_temporal.errors import AuditTamperedError, ConfigError

if sys.platform != "win32":
    import fcntl

__all__ = [
    "CHECKPOINT_TYPE",
    "MARKS_TYPE",
    "AuditTamperedError",
    "Checkpoint",
    "CheckpointCheck",
    "CheckpointMark",
    "CheckpointProblem",
    "CheckpointSigner",
    "checkpoint_statement",
    "read_marks",
]

CHECKPOINT_TYPE = "jamjet.audit.checkpoint/v1"
MARKS_TYPE: Final = "jamjet.audit.checkpoint-marks/v1"

CheckpointProblem = Literal[
    "checkpoint_mismatch", "checkpoint_beyond_end", "checkpoint_invalid", "mark_missing"
]


class Checkpoint(NamedTuple):
    """One signed chain head, as stored in ``audit_checkpoints``.

    Attributes:
        seq: The ``seq`` of the event whose hash is the signed head.
        store_id: The id of the store it was signed for.
        head: That event's chain hash.
        signed_at: When it was signed (UTC).
        signer: Fingerprint of the signing key (``sha256:`` + 64 hex digits).
        public_key: The raw Ed25519 public key, base64 (rows may also hold it as the
            ``ed25519:`` public key text, which is read the same).
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
    return canonical_json(statement).encode("utf-8")


class CheckpointMark(BaseModel, frozen=True):
    """The newest chain head a signing key signed for one store (its high-water mark).

    Attributes:
        seq: The ``seq`` of that checkpoint.
        head: The chain hash it signed there.
    """

    seq: int
    head: str


class _MarksFile(BaseModel):
    type: Literal["jamjet.audit.checkpoint-marks/v1"]
    stores: dict[str, dict[str, CheckpointMark]]
    """store_id -> signer fingerprint -> mark."""


def _contradiction(
    mark: CheckpointMark,
    signer: str,
    event: str | None,
    checkpoint: tuple[str, str] | None,
    last_seq: int,
) -> str | None:
    """How the store contradicts ``mark``, or None when it still holds it.

    Args:
        mark: What ``signer`` signed.
        signer: Its fingerprint.
        event: The chain hash of the store's event at ``mark.seq`` (None: no such event).
        checkpoint: ``(head, signer)`` of the store's checkpoint at ``mark.seq``, if any.
        last_seq: The ``seq`` of the store's last event.
    """
    if event is None:
        return (
            f"the store has no event at seq {mark.seq} (its chain ends at seq {last_seq}): "
            "events were removed"
        )
    if event != mark.head:
        return (
            f"the chain now has {event} there: events at or before seq {mark.seq} were "
            "rewritten and re-chained"
        )
    if checkpoint != (mark.head, signer):
        return "that checkpoint is no longer in the store: checkpoints were removed or replaced"
    return None


def read_marks(path: Path) -> dict[str, dict[str, CheckpointMark]]:
    """The checkpoint marks a marks file holds (format in the module docstring).

    Args:
        path: The marks file.

    Returns:
        ``{store_id: {signer fingerprint: mark}}``; empty when the file does not exist (no
        checkpoint signed yet).

    Raises:
        ConfigError: The file cannot be read or is not a marks file.
    """
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(
            f"audit checkpoint marks {path}: cannot be read ({exc}) (fix: let the workers' "
            "account read and write the folder of the audit signing key)"
        ) from None
    try:
        return _MarksFile.model_validate_json(text).stores
    except ValidationError as exc:
        # Written only whole (temporary file, fsync, rename): a malformed one was edited.
        # Failing closed keeps a corrupted record from silently forgetting every mark.
        raise ConfigError(
            f"audit checkpoint marks {path}: not a marks file "
            f"({exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}); it was "
            "edited or damaged (fix: investigate, then move it away; the workers start a new "
            "one, vouching again for the stores as they are then)"
        ) from None


def _record_marks(
    path: Path, signer: str, marks: Mapping[str, CheckpointMark]
) -> dict[str, dict[str, CheckpointMark]]:
    """Merge one key's marks into the marks file, the highest ``seq`` per store winning.

    Args:
        path: The marks file.
        signer: The key's fingerprint.
        marks: Its marks, by store id.

    Returns:
        Every mark the file holds now.

    Raises:
        ConfigError: The file cannot be read, is malformed, or cannot be written.
    """
    try:
        with _exclusive(path):
            stores = read_marks(path)
            for store_id, mark in marks.items():
                held = stores.setdefault(store_id, {}).get(signer)
                if held is None or mark.seq > held.seq:
                    stores[store_id][signer] = mark
            _write_marks(path, stores)
    except OSError as exc:
        raise ConfigError(
            f"audit checkpoint marks {path}: cannot be written ({exc}) (fix: let the workers' "
            "account write the folder of the audit signing key)"
        ) from None
    return stores


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold ``<marks>.lock`` while merging (POSIX; Windows goes without).

    Two writers merging at once could each miss what the other wrote, and the file keep the
    lower mark: no false alarm, but a weaker check.
    """
    if sys.platform == "win32":
        yield
        return
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_marks(path: Path, stores: dict[str, dict[str, CheckpointMark]]) -> None:
    """Replace the marks file whole: readers see the old file or the new one, never a part."""
    text = _MarksFile(type=MARKS_TYPE, stores=stores).model_dump_json(indent=2)
    # mkstemp creates the file with mode 0600; the rename keeps it.
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
            out.flush()
            # A rename of an unsynced file can leave an empty one after a power loss, which
            # the next read would refuse.
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class CheckpointSigner:
    """Signs chain heads with the audit signing key and says when the next one is due.

    A store given a signer checkpoints inside the append that is due, in the same
    transaction as the events it covers: when asked to (the end of a run), when the store
    has no checkpoint yet, and when ``every_events`` events were appended or ``every`` has
    passed since the last checkpoint, whichever comes first. The cost is one signature
    (about 35 µs) and one row per checkpoint, nothing for the appends in between.

    The signer never vouches for a chain that contradicts what it vouched for before: under
    the store's append lock, the store reads the signer's ``mark`` for it and the rows at the
    mark's ``seq``, ``check`` refuses, and once the append has committed ``signed`` records
    the new checkpoint as the mark. With ``marks`` the mark outlives the process and is shared
    by every signer using the file (re-read before each check, merged by taking the highest
    ``seq`` per store and key, replaced whole); without, it lives as long as this object.

    Args:
        key: The audit signing key (``load_or_create_signing_key``).
        marks: The marks file (``checkpoint_marks_path(key path)``); None: in memory only.
        every_events: Events after the last checkpoint that make the next append sign one.
        every: Time after the last checkpoint that makes the next append sign one.

    Raises:
        ValueError: ``every_events`` or ``every`` is not positive.
    """

    def __init__(
        self,
        key: Ed25519PrivateKey,
        *,
        marks: Path | None = None,
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
        # Stored rows keep the raw key in base64, which every version reads.
        self._public_key = base64.b64encode(keys.raw_public_key(key)).decode("ascii")
        self.marks = marks
        self.every_events = every_events
        self.every = every
        self._marks: dict[str, CheckpointMark] = {}
        # Stores call from their own threads (SQLite) or via asyncio.to_thread (PostgreSQL).
        self._lock = threading.Lock()

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

    def mark(self, store_id: str) -> CheckpointMark | None:
        """The newest head this key signed for a store, or None before its first checkpoint.

        Re-reads the marks file, so that checkpoints other processes signed with this key
        count. Call it holding the store's append lock: every mark in the file was recorded
        after its append committed, so the store then shows each one.

        Args:
            store_id: The store's id.

        Returns:
            The mark.

        Raises:
            ConfigError: The marks file cannot be read or is malformed.
        """
        with self._lock:
            if self.marks is not None:
                self._merge(read_marks(self.marks))
            return self._marks.get(store_id)

    def check(
        self,
        store_id: str,
        mark: CheckpointMark,
        *,
        event: str | None,
        checkpoint: tuple[str, str] | None,
        last_seq: int,
    ) -> None:
        """Refuse to sign for a store that no longer holds what this key signed there.

        Args:
            store_id: The store's id.
            mark: ``mark(store_id)``.
            event: The chain hash of the store's event at ``mark.seq`` (None: no such event).
            checkpoint: ``(head, signer)`` of the store's checkpoint at ``mark.seq``, if any.
            last_seq: The ``seq`` of the store's last event (0 when empty).

        Raises:
            AuditTamperedError: The event there has another hash or is gone (a rewrite
                under the mark), or this key's checkpoint there is gone (deleted).
        """
        reason = _contradiction(mark, self.fingerprint, event, checkpoint, last_seq)
        if reason is not None:
            raise AuditTamperedError(store_id, self.fingerprint, mark, reason, self.marks)

    def signed(self, checkpoint: Checkpoint) -> None:
        """Record a committed checkpoint as this key's mark for its store.

        Call it only once the checkpoint is committed: a mark the store never got would make
        every later append look like tampering.

        Args:
            checkpoint: The checkpoint ``sign`` made.

        Raises:
            ConfigError: The marks file cannot be read, is malformed, or cannot be written
                (the mark is kept in memory all the same).
        """
        with self._lock:
            mark = CheckpointMark(seq=checkpoint.seq, head=checkpoint.head)
            self._merge({checkpoint.store_id: {self.fingerprint: mark}})
            if self.marks is None:
                return
            self._merge(_record_marks(self.marks, self.fingerprint, self._marks))

    def _merge(self, stores: Mapping[str, Mapping[str, CheckpointMark]]) -> None:
        for store_id, signers in stores.items():
            found = signers.get(self.fingerprint)
            held = self._marks.get(store_id)
            if found is not None and (held is None or found.seq > held.seq):
                self._marks[store_id] = found


def _stored_public_key(text: str) -> Ed25519PublicKey:
    """A checkpoint row's public key: raw base64, or the ``ed25519:`` public key text."""
    if text.startswith(keys.PUBLIC_KEY_PREFIX):
        return keys.parse_public_key(text, pem=False)
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))


def _invalid(checkpoint: Checkpoint, store_id: str) -> str | None:
    """Why a checkpoint's signature does not hold, or None when it does."""
    try:
        public = _stored_public_key(checkpoint.public_key)
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
        marks: This host's marks for the store (``read_marks(path)[store_id]``): the newest
            head each key signed here, which the store must still hold (else the problem is
            ``mark_missing``). Read them before the checkpoints and events.
    """

    def __init__(
        self,
        checkpoints: Iterable[Checkpoint],
        *,
        store_id: str,
        trusted: Collection[str],
        marks: Mapping[str, CheckpointMark] | None = None,
    ) -> None:
        self._pending = {c.seq: c for c in checkpoints}
        self._store_id = store_id
        self._trusted = frozenset(trusted)
        self._marks: dict[int, list[tuple[str, CheckpointMark]]] = {}
        for signer, mark in (marks or {}).items():
            self._marks.setdefault(mark.seq, []).append((signer, mark))
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
        if checkpoint is not None:
            found = self._check(checkpoint, seq, head)
            if found is not None:
                return found
        stored = None if checkpoint is None else (checkpoint.head, checkpoint.signer)
        for signer, mark in self._marks.pop(seq, ()):
            reason = _contradiction(mark, signer, head, stored, seq)
            if reason is not None:
                return "mark_missing", _missing(signer, mark, reason)
        return None

    def _check(
        self, checkpoint: Checkpoint, seq: int, head: str
    ) -> tuple[CheckpointProblem, str] | None:
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
        """After the last event: a checkpoint or a mark beyond the end of the chain is a problem.

        Args:
            last_seq: The ``seq`` of the chain's last event (0 when empty).

        Returns:
            The checkpoint's or mark's ``seq``, the problem and a sentence for people, or None.
        """
        if not self._pending:
            if not self._marks:
                return None
            seq = min(self._marks)
            signer, mark = self._marks[seq][0]
            reason = f"the chain ends at seq {last_seq}: events were removed"
            return seq, "mark_missing", _missing(signer, mark, reason)
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


def _missing(signer: str, mark: CheckpointMark, reason: str) -> str:
    return f"this host's checkpoint marks say {AuditTamperedError.detail(signer, mark, reason)}"
