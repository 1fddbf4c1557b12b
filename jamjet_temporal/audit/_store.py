"""The audit store contract (activity side: implementations do I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, Protocol, TypeAlias

from jamjet_temporal.audit._chain import GENESIS_HASH, ChainVerdict, canonical_json, link_hash
from jamjet_temporal.audit._checkpoint import CheckpointSigner
from jamjet_temporal.audit._types import AuditEvent, StoredEvent

__all__ = [
    "GATHER_MAX",
    "GATHER_S",
    "AuditStore",
    "GroupPlan",
    "NewRow",
    "Outcome",
    "PendingAppend",
    "chain_batch",
    "chain_group",
    "check_kinds",
    "settle",
    "stored_event",
]


GATHER_S = 0.005
"""Under load, how long a store waits for more appends before committing the next group.

A store under concurrent appends (some arrived while it was committing) holds its next
transaction open to newcomers this long, so that one transaction (an fsync, a round trip and
a checkpoint's mark) serves more of them: a transaction costs the worker far more CPU than an
event in it. An append on an idle store is committed at once, so a lone run pays nothing.
"""

GATHER_MAX = 100
"""Appends a gathering store waits for at most: with this many queued it commits at once."""


class AuditStore(Protocol):
    """An append-only, hash-chained store of audit events, with signed checkpoints.

    Every implementation keeps one chain per store, refuses updates and deletes in the
    database itself, and is durable when ``append`` returns. Appends that arrive while the
    store is committing are written together in its next transaction (group commit: one
    fsync or one round trip for all of them), each still atomic and chained in call order;
    under load that transaction waits up to ``GATHER_S`` for more. An append on an idle store
    is committed at once. A store opened with a ``CheckpointSigner`` also signs the chain's
    head now and then (``audit_checkpoints``, append-only too), in the same transaction as the
    events it covers, and never over a chain that contradicts the signer's mark (the newest
    head its key signed there).
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
    plan = chain_group([(events, False)], existing, head, recorded_at)
    return plan.results[0], plan.rows


Outcome: TypeAlias = list[StoredEvent] | BaseException
"""What one ``append`` call gets: its ``StoredEvent``s, or the error to raise."""


class GroupPlan(NamedTuple):
    """The batches of one group commit, chained one after the other onto the store's head.

    Attributes:
        results: Per batch, one ``StoredEvent`` per given event (what its ``append`` returns).
        rows: The rows to insert, in ``seq`` order.
        heads: The checkpoints due: ``(batch index, the event whose hash to sign)``, in
            ``seq`` order.
    """

    results: list[list[StoredEvent]]
    rows: list[NewRow]
    heads: list[tuple[int, StoredEvent]]

    def outcomes(self, signing_error: Exception | None = None) -> list[Outcome]:
        """Each batch's outcome once the group has committed.

        Args:
            signing_error: Recording the newest checkpoint as the signer's mark failed
                (``CheckpointSigner.signed``): the batches that carried a checkpoint get this
                error, as a lone append would; the others their events.
        """
        if signing_error is None:
            return [*self.results]
        carriers = {index for index, _ in self.heads}
        return [
            signing_error if index in carriers else results
            for index, results in enumerate(self.results)
        ]


def chain_group(
    batches: Sequence[tuple[Sequence[AuditEvent], bool]],
    existing: Mapping[str, StoredEvent],
    head: tuple[int, str] | None,
    recorded_at: datetime,
    *,
    signer: CheckpointSigner | None = None,
    last_checkpoint: tuple[int, datetime] | None = None,
) -> GroupPlan:
    """Chain batches onto the head of a store as consecutive appends, skipping stored ids.

    The result is what appending the batches one after the other would store: an id stored
    before, or earlier in the group, is returned as stored and not written again; a batch
    carries a checkpoint at its newest event when it asks for one or the signer's cadence
    calls for it, counting from the checkpoints due earlier in the group.

    Call it while holding the store's append lock, with the head read under that lock.

    Args:
        batches: ``(events, checkpoint)`` per append, in call order.
        existing: The already stored events among all of them, by id.
        head: ``(seq, hash)`` of the store's last event, None when it is empty.
        recorded_at: The time to record the new events (and sign checkpoints) at.
        signer: The store's signer; None: no checkpoints.
        last_checkpoint: ``(seq, signed_at)`` of the store's newest checkpoint, if any.

    Returns:
        The plan; the caller checks the signer's mark before signing ``heads``.
    """
    seq, prev = head if head is not None else (0, GENESIS_HASH)
    known = dict(existing)
    plan = GroupPlan([], [], [])
    last = last_checkpoint
    for index, (events, force) in enumerate(batches):
        new_before = len(plan.rows)
        results: list[StoredEvent] = []
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
                plan.rows.append(NewRow(stored, body))
            results.append(stored)
        plan.results.append(results)
        if signer is not None and len(plan.rows) > new_before:
            newest = plan.rows[-1].stored
            if force or signer.due(last, newest.seq, recorded_at):
                plan.heads.append((index, newest))
                last = (newest.seq, recorded_at)
    return plan


class PendingAppend(NamedTuple):
    """An ``append`` call waiting for the transaction that writes its batch.

    Attributes:
        events: Its events, in order.
        checkpoint: Its ``checkpoint`` argument.
        future: Resolved, on the caller's event loop, with its outcome (see ``settle``).
    """

    events: list[AuditEvent]
    checkpoint: bool
    future: asyncio.Future[list[StoredEvent]]


def settle(settled: Iterable[tuple[PendingAppend, Outcome]]) -> None:
    """Hand each waiting ``append`` its outcome; call it on the callers' event loop.

    A caller cancelled meanwhile is skipped: its batch may have been written all the same
    (at most once, as its retry will find).
    """
    for pending, outcome in settled:
        if pending.future.done():
            continue
        if isinstance(outcome, BaseException):
            pending.future.set_exception(outcome)
        else:
            pending.future.set_result(outcome)
