"""Wire names and payloads of Engram's activities (pure: they cross into workflow history).

Renaming an activity breaks running workflows.
"""

from __future__ import annotations

from pydantic import AwareDatetime

from jamjet_temporal._shared._wire import (
    CONTEXT_ACTIVITY,
    ENGRAM_ACTIVITIES,
    FACTS_ACTIVITY,
    FORGET_ACTIVITY,
    INGEST_ACTIVITY,
)
from jamjet_temporal.memory._types import _Scoped

#: Where Engram memory lives unless configured: SQLite beside the worker's working directory.
DEFAULT_MEMORY_STORE = "sqlite:///.jamjet/memory.db"

__all__ = [
    "CONTEXT_ACTIVITY",
    "DEFAULT_MEMORY_STORE",
    "ENGRAM_ACTIVITIES",
    "FACTS_ACTIVITY",
    "FORGET_ACTIVITY",
    "INGEST_ACTIVITY",
    "FactsRequest",
    "ForgetRequest",
]


class FactsRequest(_Scoped):
    """Arguments of ``engram.facts``."""

    attribute: str | None = None
    include_superseded: bool = False
    as_of: AwareDatetime | None = None
    valid_at: AwareDatetime | None = None


class ForgetRequest(_Scoped):
    """Arguments of ``engram.forget``."""
