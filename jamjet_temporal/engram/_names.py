"""Wire names and payloads of Engram's activities (pure: they cross into workflow history).

Renaming an activity breaks running workflows.
"""

from __future__ import annotations

from pydantic import AwareDatetime

from ._types import _Scoped

__all__ = [
    "CONTEXT_ACTIVITY",
    "ENGRAM_ACTIVITIES",
    "FACTS_ACTIVITY",
    "FORGET_ACTIVITY",
    "INGEST_ACTIVITY",
    "FactsRequest",
    "ForgetRequest",
]

CONTEXT_ACTIVITY = "jamjet.engram.context"
INGEST_ACTIVITY = "jamjet.engram.ingest"
FACTS_ACTIVITY = "jamjet.engram.facts"
FORGET_ACTIVITY = "jamjet.engram.forget"
#: Built-in memory activities: not tools, so the policy gate lets them through.
ENGRAM_ACTIVITIES = frozenset({CONTEXT_ACTIVITY, INGEST_ACTIVITY, FACTS_ACTIVITY, FORGET_ACTIVITY})


class FactsRequest(_Scoped):
    """Arguments of ``engram.facts``."""

    attribute: str | None = None
    include_superseded: bool = False
    as_of: AwareDatetime | None = None
    valid_at: AwareDatetime | None = None


class ForgetRequest(_Scoped):
    """Arguments of ``engram.forget``."""
