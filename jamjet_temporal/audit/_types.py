"""The audit event model (pure: workflow code builds events with it)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticSerializationError

__all__ = ["AuditEvent", "StoredEvent", "event_id"]

_SEP = "\x1f"


def event_id(*parts: str) -> str:
    """A deterministic event id from the parts that identify the event.

    Derive it from what a retry or a replay sees again (workflow id, run id, activity id, kind),
    never from time or randomness: the store keeps one copy per id, so a retried or replayed
    append stores nothing new.

    Args:
        *parts: The identifying parts, in a fixed order.

    Returns:
        ``"evt_"`` followed by the first 20 hex digits of sha256 over the parts joined by
        ``"\\x1f"``.

    Raises:
        ValueError: No part was given, or a part contains ``"\\x1f"`` (two different part
            lists would then give the same id).
    """
    if not parts:
        raise ValueError("event_id() needs at least one part")
    if any(_SEP in part for part in parts):
        raise ValueError("event_id() parts must not contain the \\x1f separator")
    return "evt_" + hashlib.sha256(_SEP.join(parts).encode("utf-8")).hexdigest()[:20]


class AuditEvent(BaseModel):
    """One governed fact: a gate decision, a tool or model call, an approval, a budget check.

    Attributes:
        id: ``"evt_"`` + 16 to 64 lowercase hex digits, chosen by the caller with ``event_id``
            so that retries and replays produce the same id.
        run_id: The Temporal workflow id (what users call the run, e.g. ``exec_7f3a``).
        workflow_run_id: Temporal's run id of that workflow execution.
        kind: What happened, e.g. ``policy.decision``, ``tool.call``, ``model.call``,
            ``approval.decision``, ``budget.decision``.
        at: When it happened; timezone-aware, stored in UTC. In workflow code take it from
            ``workflow.now()`` so a replay builds the same event.
        actor: Who: workflow type, agent, user, worker identity...
        data: What: tool, arguments digest, decision, rule, result, latency...
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    id: str = Field(pattern=r"^evt_[0-9a-f]{16,64}$")
    run_id: str = Field(min_length=1)
    workflow_run_id: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    at: AwareDatetime
    actor: dict[str, JsonValue] = {}
    data: dict[str, JsonValue] = {}

    @field_validator("at")
    @classmethod
    def _in_utc(cls, at: datetime) -> datetime:
        return at.astimezone(UTC)

    @model_validator(mode="after")
    def _encodable(self) -> AuditEvent:
        # Fail where the event is built, not later in the store's activity, where the same
        # error would repeat on every retry.
        try:
            self.model_dump_json()
        except PydanticSerializationError as exc:
            raise ValueError(f"audit event is not encodable as UTF-8 JSON: {exc}") from None
        return self


class StoredEvent(BaseModel):
    """An event as the store holds it: its place in the chain and when it was recorded.

    Attributes:
        seq: Position in the store's chain: 1, 2, 3... without gaps.
        event: The event.
        prev_hash: ``hash`` of the event at ``seq - 1`` (64 zeros for the first).
        hash: ``sha256(prev_hash + canonical_json(event))``, hex.
        recorded_at: When the store recorded it (UTC); not covered by the hash.
    """

    model_config = ConfigDict(frozen=True)

    seq: int = Field(ge=1)
    event: AuditEvent
    prev_hash: str
    hash: str
    recorded_at: AwareDatetime
