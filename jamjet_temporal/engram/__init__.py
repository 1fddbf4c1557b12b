"""Engram: long-term memory of facts, with supersession and token budgets."""

from __future__ import annotations

from ._open import open_memory
from ._types import (
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
    "open_memory",
]
