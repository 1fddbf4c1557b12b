"""The audit store contract (activity side: implementations do I/O)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, Protocol

from jamjet_temporal.audit._chain import GENESIS_HASH, ChainVerdict, canonical_json, link_hash
from jamjet_temporal.audit._types import AuditEvent, StoredEvent

__all__ = ["AuditStore", "NewRow", "chain_batch", "check_kinds", "stored_event"]


class AuditStore(Protocol):
    """An append-only, hash-chained store of audit events, with signed checkpoints.

    Every implementation keeps one chain per store, refuses updates and deletes in the
    database itself, and is durable when ``append`` returns. A store opened with a
    ``CheckpointSigner`` also signs the chain's head now and then (``audit_checkpoints``,
    append-only too), in the same transaction as the events it covers, and never over a
    chain that contradicts the signer's mark (the newest head its key signed there).
    """

    async def append(
        self, events: Sequence[AuditEvent], *, checkpoint: bool = False
    ) -> list[StoredEvent]:
        """Store events atomically, each at most once.

        An event whose id is already stored (by an earlier call, another process or earlier in
        the same batch) is not stored again: its existing ``StoredEvent`` is returned, even if
        the new copy differs. The others get the next sequence numbers and chained hashes.

        Args:
            events: The events, in the order to chain them.
            checkpoint: Sign the new head even if the signer's cadence does not call for it
                yet (the end of a run). Nothing is signed when no event is new.

        Returns:
            One ``StoredEvent`` per given event, in the same order.

        Raises:
            ValueError: ``checkpoint`` is set on a store opened without a signer.
            AuditTamperedError: A checkpoint is due, but the store no longer holds the head
                the signer's key last signed there (an event at or before it was rewritten,
                or that checkpoint deleted); nothing is appended.
            ConfigError: The signer's marks file cannot be read or written.
        """
        ...

    async def get(self, event_id: str) -> StoredEvent | None:
        """The stored event with this id, or None."""
        ...

    async def events(
        self, run_id: str | None = None, *, kinds: Sequence[str] | None = None
    ) -> list[StoredEvent]:
        """Stored events in sequence order.

        Args:
            run_id: Only this run's events (a workflow id); all runs when None.
            kinds: Only events of these kinds; all kinds when None (an empty list matches none).

        Returns:
            The matching events, oldest first.
        """
        ...

    async def verify(
        self, *, trusted_keys: Collection[str] = (), marks: Path | None = None
    ) -> ChainVerdict:
        """Recompute the whole chain, check every checkpoint, report the first problem.

        Args:
            trusted_keys: Fingerprints of the keys whose checkpoints count as coverage
                (``ChainVerdict.covered``). Every checkpoint's signature is checked anyway.
            marks: A signer's marks file (``checkpoint_marks_path()``): the store must still
                hold the newest head each key in it signed here, else the problem is
                ``mark_missing``. A missing file holds no marks.

        Returns:
            The verdict.

        Raises:
            ConfigError: The marks file cannot be read or is malformed.
        """
        ...

    async def close(self) -> None:
        """Release the store's connection; calling it again does nothing."""
        ...


def check_kinds(kinds: Sequence[str] | None) -> list[str] | None:
    """Turn a ``kinds`` filter into a list, refusing a lone string (a sequence of letters)."""
    if isinstance(kinds, str):
        raise TypeError(f"kinds must be a list of kinds, not a string: use [{kinds!r}]")
    return None if kinds is None else list(kinds)


def stored_event(
    seq: int, body: str, prev_hash: str, hash: str, recorded_at: datetime
) -> StoredEvent:
    """Build a ``StoredEvent`` from a stored row."""
    return StoredEvent(
        seq=seq,
        event=AuditEvent.model_validate_json(body),
        prev_hash=prev_hash,
        hash=hash,
        recorded_at=recorded_at.astimezone(UTC),
    )


class NewRow(NamedTuple):
    """An event to insert: its ``StoredEvent`` and the canonical JSON its hash covers."""

    stored: StoredEvent
    body: str


def chain_batch(
    events: Sequence[AuditEvent],
    existing: Mapping[str, StoredEvent],
    head: tuple[int, str] | None,
    recorded_at: datetime,
) -> tuple[list[StoredEvent], list[NewRow]]:
    """Chain a batch onto the head of a store, skipping ids already stored.

    Call it while holding the store's append lock, with the head read under that lock.

    Args:
        events: The events to append, in order.
        existing: The already stored events among ``events``, by id.
        head: ``(seq, hash)`` of the store's last event, None when it is empty.
        recorded_at: The time to record the new events at.

    Returns:
        One ``StoredEvent`` per given event, and the rows to insert.
    """
    seq, prev = head if head is not None else (0, GENESIS_HASH)
    known = dict(existing)
    results: list[StoredEvent] = []
    rows: list[NewRow] = []
    for event in events:
        stored = known.get(event.id)
        if stored is None:
            seq += 1
            body = canonical_json(event)
            digest = link_hash(prev, body)
            stored = StoredEvent(
                seq=seq, event=event, prev_hash=prev, hash=digest, recorded_at=recorded_at
            )
            prev = digest
            known[event.id] = stored
            rows.append(NewRow(stored, body))
        results.append(stored)
    return results, rows
