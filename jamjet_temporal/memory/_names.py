"""Payloads of Engram's activities (pure: they cross into workflow history); their wire names
are in ``_shared._wire``."""

from __future__ import annotations

from pydantic import AwareDatetime

from jamjet_temporal.memory._types import _Scoped

#: Where Engram memory lives unless configured: SQLite beside the worker's working directory.
DEFAULT_MEMORY_STORE = "sqlite:///.jamjet/memory.db"

__all__ = [
    "DEFAULT_MEMORY_STORE",
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
