"""The hash chain: canonical JSON, link hashes and chain verification (pure, no I/O).

Each stored event is linked to the one before it::

    hash = sha256(prev_hash + canonical_json(event))

with ``prev_hash`` of the first event being ``GENESIS_HASH``. Editing, removing or reordering
any stored event breaks a link, which ``ChainWalker`` finds. Signed export bundles reuse these
functions, so their rules must not change: a change would break every stored chain.

A chain cannot reveal an edit whose author also recomputed every hash after it; the store's
signed checkpoints (``_checkpoint``) can, and ``ChainWalker`` checks them as it goes.
"""

from __future__ import annotations

import hashlib
from typing import Literal, NamedTuple

from pydantic import BaseModel, ValidationError

from jamjet_temporal._shared import _canonical
from jamjet_temporal.audit._checkpoint import CheckpointCheck, CheckpointProblem
from jamjet_temporal.audit._types import AuditEvent

__all__ = ["GENESIS_HASH", "ChainRow", "ChainVerdict", "ChainWalker", "canonical_json", "link_hash"]

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first event of every chain."""

Problem = Literal["gap", "prev_mismatch", "hash_mismatch", "row_mismatch"] | CheckpointProblem


def canonical_json(event: AuditEvent) -> str:
    """The one JSON text of an event that its chain hash covers.

    The package's canonical JSON (``_shared._canonical``) of the event's JSON-mode dump: keys
    sorted, no whitespace, non-ASCII kept as is (hashed as UTF-8), NaN refused. Every stored
    chain depends on this text: it must never change.

    Args:
        event: The event.

    Returns:
        The canonical JSON text.
    """
    return _canonical.canonical_json(event.model_dump(mode="json"))


def link_hash(prev_hash: str, canonical: str) -> str:
    """The chain hash of an event.

    Args:
        prev_hash: The hash of the event before it (``GENESIS_HASH`` for the first).
        canonical: The event's ``canonical_json``.

    Returns:
        ``sha256(prev_hash + canonical)`` as 64 lowercase hex digits.
    """
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


class ChainVerdict(BaseModel, frozen=True):
    """The outcome of recomputing a whole chain and checking its signed checkpoints.

    ``ok`` says nothing was found rewritten; ``covered_all`` says, in addition, that no
    rewrite could have gone unnoticed: every event is under a checkpoint of a trusted key.

    Attributes:
        ok: True when every link holds and every checkpoint's signature holds and matches
            the chain.
        count: Events checked (all of them when ``ok``; up to the first problem otherwise).
        head: Hash of the last event that checked out (``GENESIS_HASH`` for none).
        seq: Sequence number of the first problem (None when ``ok``).
        event_id: Id stored at that sequence number (None when ``ok`` or when no event is
            stored there).
        problem: What is wrong there: ``gap`` (sequence numbers skip: an event was removed),
            ``prev_mismatch`` (it does not link to the event before it: removed, inserted or
            reordered), ``hash_mismatch`` (its content was edited), ``row_mismatch`` (its
            indexed columns disagree with its hashed content, or the content is not an
            event), ``checkpoint_mismatch`` (the chain was rewritten and re-chained under a
            signed checkpoint), ``checkpoint_beyond_end`` (events under a checkpoint were
            removed from the end), ``checkpoint_invalid`` (a checkpoint's signature does
            not hold, or it was signed for another store) or ``mark_missing`` (the newest
            checkpoint this host's key signed, kept beside the key, is gone from the store).
        detail: A sentence for people.
        checkpoints: Checkpoints whose signature held and whose head matched the chain.
        covered: Every event up to this ``seq`` is under a matching checkpoint signed by a
            trusted key (0: none is). Events after it could be rewritten unnoticed by anyone
            able to write the store.
        signers: Fingerprint of each key that signed a checkpoint -> whether it is trusted.
    """

    ok: bool
    count: int
    head: str
    seq: int | None = None
    event_id: str | None = None
    problem: Problem | None = None
    detail: str = ""
    checkpoints: int = 0
    covered: int = 0
    signers: dict[str, bool] = {}

    @property
    def covered_all(self) -> bool:
        """``ok``, every event under a trusted checkpoint, and no checkpoint by another key."""
        return self.ok and self.covered == self.count and all(self.signers.values())


class ChainRow(NamedTuple):
    """One stored event as the backends read it for verification."""

    seq: int
    id: str
    run_id: str
    kind: str
    body: str
    prev_hash: str
    hash: str


class ChainWalker:
    """Checks stored rows in ``seq`` order, one at a time, so a chain of any length streams.

    Feed every row to ``check`` until it returns a verdict (the first problem) or the rows
    run out; then ``verdict()`` gives the result.

    Args:
        checkpoints: The store's checkpoints, checked as the walk reaches their ``seq``.
            Read them before the rows (or in the same snapshot), so that none is newer.
    """

    def __init__(self, checkpoints: CheckpointCheck | None = None) -> None:
        self._count = 0
        self._seq = 0
        self._head = GENESIS_HASH
        self._checkpoints = checkpoints

    def check(self, row: ChainRow) -> ChainVerdict | None:
        """Check the next row.

        Args:
            row: The row after the last one checked.

        Returns:
            The failing verdict if this row breaks the chain or a checkpoint, else None.
        """

        def bad(problem: Problem, detail: str) -> ChainVerdict:
            where = f"seq {row.seq} (event {row.id})"
            return self._verdict(row.seq, row.id, problem, f"{where}: {detail}")

        expected = self._seq + 1
        if row.seq != expected:
            missing = str(expected) if row.seq == expected + 1 else f"{expected}..{row.seq - 1}"
            return bad("gap", f"sequence numbers {missing} are missing: events were removed")
        if row.prev_hash != self._head:
            return bad("prev_mismatch", "does not link to the event before it")
        if link_hash(row.prev_hash, row.body) != row.hash:
            return bad("hash_mismatch", "its content does not match its hash: it was edited")
        try:
            event = AuditEvent.model_validate_json(row.body)
        except ValidationError:
            return bad("row_mismatch", "its hashed content is not an audit event")
        if (event.id, event.run_id, event.kind) != (row.id, row.run_id, row.kind):
            return bad("row_mismatch", "its id, run_id or kind column disagrees with its content")
        self._count += 1
        self._seq = row.seq
        self._head = row.hash
        if self._checkpoints is not None:
            found = self._checkpoints.reached(row.seq, row.hash)
            if found is not None:
                return self._verdict(row.seq, row.id, *found)
        return None

    def verdict(self) -> ChainVerdict:
        """The verdict once every row has been checked without a problem."""
        if self._checkpoints is not None:
            beyond = self._checkpoints.finish(self._seq)
            if beyond is not None:
                seq, problem, detail = beyond
                return self._verdict(seq, None, problem, detail)
        return self._verdict()

    def _verdict(
        self,
        seq: int | None = None,
        event_id: str | None = None,
        problem: Problem | None = None,
        detail: str = "",
    ) -> ChainVerdict:
        found = self._checkpoints
        return ChainVerdict(
            ok=problem is None,
            count=self._count,
            head=self._head,
            seq=seq,
            event_id=event_id,
            problem=problem,
            detail=detail,
            checkpoints=found.checked if found is not None else 0,
            covered=found.covered if found is not None else 0,
            signers=dict(found.signers) if found is not None else {},
        )
