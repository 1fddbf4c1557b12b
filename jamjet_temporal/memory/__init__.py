"""Engram: long-term memory of facts, with supersession and token budgets.

    context = await engram.context_for(user="sunil", topic="release notes", budget_tokens=400)

``remember`` extracts durable facts from a conversation (a model call with structured output)
and keeps the turns they came from; ``record`` stores one fact directly; a new value of an
attribute supersedes the old one, which stays, marked (bi-temporal); ``forget`` deletes a user's
memory for real. Each call works in workflow code (as a built-in activity) and in ordinary
code. Storage: SQLite with FTS5 by default, PostgreSQL for workers on several hosts
(``JamJetConfig(memory=MemoryConfig(store=...))``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal.memory._api import (
        DEFAULT_MEMORY_STORE,
        context_for,
        facts,
        forget,
        record,
        remember,
    )
    from jamjet_temporal.memory._open import open_memory
    from jamjet_temporal.memory._store import SQLMemory
    from jamjet_temporal.memory._types import (
        Context,
        ContextItem,
        ContextRequest,
        Episode,
        Fact,
        FactInput,
        Forgotten,
        Ingested,
        IngestRequest,
        Message,
    )

__all__ = [
    "DEFAULT_MEMORY_STORE",
    "Context",
    "ContextItem",
    "ContextRequest",
    "Episode",
    "Fact",
    "FactInput",
    "Forgotten",
    "IngestRequest",
    "Ingested",
    "Message",
    "SQLMemory",
    "context_for",
    "facts",
    "forget",
    "open_memory",
    "record",
    "remember",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "._store": ["SQLMemory"],
        "._api": ["DEFAULT_MEMORY_STORE", "context_for", "facts", "forget", "record", "remember"],
        "._open": ["open_memory"],
        "._types": [
            "Context",
            "ContextItem",
            "ContextRequest",
            "Episode",
            "Fact",
            "FactInput",
            "Forgotten",
            "Ingested",
            "IngestRequest",
            "Message",
        ],
    },
)
