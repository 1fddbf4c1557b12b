"""A separate OS process appending to an audit store, for the concurrency test."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Protocol

from jamjet_temporal.audit import open_store
from tests.audit.audit_support import make_event


class Barrier(Protocol):
    def wait(self, timeout: float | None = None) -> int: ...


class Event(Protocol):
    def set(self) -> None: ...


def write(url: str, first: int, count: int, seed: int, start: Barrier, out: Path) -> None:
    """Append events ``first .. first+count-1`` in batches of 1 to 5, then record the seqs.

    Opens the store (creating it, racing the other writers) before waiting at ``start``, so
    that all writers append at the same moment. Writes ``{event id: seq}`` as JSON to ``out``.
    """
    out.write_text(json.dumps(asyncio.run(_write(url, first, count, seed, start))))


async def _write(url: str, first: int, count: int, seed: int, start: Barrier) -> dict[str, int]:
    rng = random.Random(seed)
    numbers = list(range(first, first + count))
    store = open_store(url)
    try:
        await store.events(kinds=[])
        start.wait(timeout=30)
        seqs: dict[str, int] = {}
        while numbers:
            size = rng.randint(1, 5)
            batch, numbers = numbers[:size], numbers[size:]
            stored = await store.append([make_event(n, ns="concurrent") for n in batch])
            seqs.update({s.event.id: s.seq for s in stored})
        return seqs
    finally:
        await store.close()


def write_until_killed(url: str, started: Event) -> None:
    """Append batches of 5 events (batch k holds events 5k..5k+4) until killed."""
    asyncio.run(_write_until_killed(url, started))


async def _write_until_killed(url: str, started: Event) -> None:
    store = open_store(url)
    for k in range(1_000_000):
        await store.append([make_event(n, ns="killed") for n in range(5 * k, 5 * k + 5)])
        if k == 3:
            started.set()
