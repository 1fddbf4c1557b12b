"""Engram's built-in activities (activity side: the store's I/O happens here)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from jamjet_temporal._shared._activity import auto_heartbeat
from jamjet_temporal._shared._wire import (
    CONTEXT_ACTIVITY,
    FACTS_ACTIVITY,
    FORGET_ACTIVITY,
    INGEST_ACTIVITY,
)
from jamjet_temporal.memory._embed import Embedder
from jamjet_temporal.memory._names import FactsRequest, ForgetRequest
from jamjet_temporal.memory._open import open_memory
from jamjet_temporal.memory._store import MemoryStore
from jamjet_temporal.memory._types import (
    Context,
    ContextRequest,
    Fact,
    Forgotten,
    Ingested,
    IngestRequest,
)

__all__ = ["EngramActivities"]


class EngramActivities:
    """The memory activities of one plugin, on the store its config names.

    Args:
        url: The memory store URL (``JamJetConfig.memory.store``); None turns memory off, and
            every memory call fails with a non-retryable error saying so.
        embedder: Gives facts and turns their vectors; None: WordLlama (offline).
    """

    def __init__(self, url: str | None, embedder: Embedder | None = None) -> None:
        self._url = url
        self._embedder = embedder
        self._store: MemoryStore | None = None
        self._lock = asyncio.Lock()

    async def store(self) -> MemoryStore:
        """The store, opened on first use."""
        if self._url is None:
            raise ApplicationError(
                "engram: memory is off on this worker (JamJetConfig.memory.store is None); "
                "set it to a sqlite:/// or postgresql:// URL",
                type="EngramError",
                non_retryable=True,
            )
        async with self._lock:
            if self._store is None:
                memory = open_memory(self._url)
                memory.embedder = self._embedder
                self._store = MemoryStore(memory)
            return self._store

    @activity.defn(name=CONTEXT_ACTIVITY)
    async def context(self, request: ContextRequest) -> Context:
        """``engram.context_for``: current memory for a topic, under a token budget."""
        async with auto_heartbeat():
            store = await self.store()
            return await store.call(store.memory.context, request)

    @activity.defn(name=INGEST_ACTIVITY)
    async def ingest(self, request: IngestRequest) -> Ingested:
        """``engram.remember`` / ``engram.record``: store a session's turns and facts."""
        async with auto_heartbeat():
            store = await self.store()
            return await store.call(store.memory.ingest, request)

    @activity.defn(name=FACTS_ACTIVITY)
    async def facts(self, request: FactsRequest) -> list[Fact]:
        """``engram.facts``: a user's facts (current, historical, as of a time)."""
        async with auto_heartbeat():
            store = await self.store()
            return await store.call(
                store.memory.facts,
                request.user,
                request.org,
                attribute=request.attribute,
                include_superseded=request.include_superseded,
                as_of=request.as_of,
                valid_at=request.valid_at,
            )

    @activity.defn(name=FORGET_ACTIVITY)
    async def forget(self, request: ForgetRequest) -> Forgotten:
        """``engram.forget``: delete everything remembered about a user."""
        async with auto_heartbeat():
            store = await self.store()
            return await store.call(store.memory.forget, request.user, request.org)

    async def run(self, name: str, request: Any) -> Any:
        """Call the activity named ``name`` directly (ordinary code: no Temporal involved)."""
        method: dict[str, Callable[[Any], Awaitable[Any]]] = {
            CONTEXT_ACTIVITY: self.context,
            INGEST_ACTIVITY: self.ingest,
            FACTS_ACTIVITY: self.facts,
            FORGET_ACTIVITY: self.forget,
        }
        return await method[name](request)

    async def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            await self._store.close()
            self._store = None
