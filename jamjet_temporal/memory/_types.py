"""Engram's data: facts, episodes and contexts (pure data: they cross into workflow history)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

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
]


def _check_name(value: str, what: str) -> str:
    if not value or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    if any(ord(ch) < 32 for ch in value):
        raise ValueError(f"{what} must not contain control characters, got {value!r}")
    return value


class _Scoped(BaseModel):
    """Whose memory: a user, optionally inside an org. Names are exact (case, spaces, Unicode)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str
    org: str | None = None

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        return _check_name(value, "user")

    @field_validator("org")
    @classmethod
    def _org(cls, value: str | None) -> str | None:
        return None if value is None else _check_name(value, "org")


class Message(BaseModel):
    """One conversation turn given to ``remember``: becomes an episode.

    Attributes:
        role: ``user`` or ``assistant`` (OpenAI's roles; ``system`` turns are not memory).
        content: What was said.
        speaker: Who said it (defaults to the user's name for ``user`` turns).
        dia_id: A stable id of the turn (default ``<session>:<n>``, 1-based).
        at: When it was said (default: the session's time).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["user", "assistant"] = "user"
    content: str
    speaker: str | None = None
    dia_id: str | None = None
    at: AwareDatetime | None = None


class Episode(BaseModel):
    """A stored conversation turn: the evidence facts link back to."""

    model_config = ConfigDict(frozen=True)

    id: str
    user: str
    org: str | None
    session: str
    dia_id: str
    speaker: str
    text: str
    occurred_at: datetime
    recorded_at: datetime


class FactInput(BaseModel):
    """A fact to store.

    Attributes:
        value: The fact. With ``attribute``, its value ("Amsterdam"); without, a whole
            statement ("sunil prefers concise answers").
        attribute: What the value is of ("location"). A new value for an attribute supersedes
            the old one; statements without an attribute only merge with identical ones.
        sources: ``dia_id``s of the episodes (turns) the fact came from.
        valid_from: When it became true (default: the session's time).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: str = Field(min_length=1)
    attribute: str | None = None
    sources: list[str] = Field(default_factory=list)
    valid_from: AwareDatetime | None = None

    @field_validator("value")
    @classmethod
    def _value(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("value must not be blank")
        return value.strip()

    @field_validator("attribute")
    @classmethod
    def _attribute(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("attribute must not be blank (None for a plain statement)")
        return value.strip()


class Fact(BaseModel):
    """A stored fact, bi-temporal.

    Attributes:
        id: Stable id.
        attribute: What the value is of, or None for a plain statement.
        value: The value (or the statement).
        session: The session it was first learnt in.
        sessions: Every session that stated it (duplicates merge here).
        sources: ``dia_id``s of the episodes it came from.
        valid_from: When it became true (valid time).
        valid_to: When a newer value replaced it (valid time); None while current.
        recorded_at: When we learnt it (transaction time).
        superseded_at: When we learnt it had been replaced (transaction time).
        supersedes: Id of the value it replaced.
        superseded_by: Id of the value that replaced it.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    user: str
    org: str | None
    attribute: str | None
    value: str
    session: str
    sessions: list[str]
    sources: list[str]
    valid_from: datetime
    valid_to: datetime | None
    recorded_at: datetime
    superseded_at: datetime | None
    supersedes: str | None
    superseded_by: str | None

    @property
    def current(self) -> bool:
        """Whether no newer value has replaced this one."""
        return self.superseded_by is None

    @property
    def statement(self) -> str:
        """``attribute: value``, or the statement itself."""
        return f"{self.attribute}: {self.value}" if self.attribute else self.value


class IngestRequest(_Scoped):
    """Episodes and facts of one session, stored in one transaction (idempotent)."""

    session: str
    at: AwareDatetime
    messages: list[Message] = Field(default_factory=list)
    facts: list[FactInput] = Field(default_factory=list)

    @field_validator("session")
    @classmethod
    def _session(cls, value: str) -> str:
        return _check_name(value, "session")


class Ingested(BaseModel):
    """What an ingest stored: new, merged (duplicates) and superseding facts."""

    model_config = ConfigDict(frozen=True)

    episodes: int
    facts: list[Fact]
    merged: int
    superseded: int


class ContextRequest(_Scoped):
    """Arguments of ``context_for``.

    Attributes:
        topic: What the context is for: a question, a task, a few keywords.
        budget_tokens: The most tokens ``Context.text`` may take.
        as_of: Answer with what was believed at this time (transaction time); default now.
        include_episodes: Add supporting excerpts (conversation turns) where they rank.
        recency_weight: How much newer memory is preferred (0: relevance only).
    """

    topic: str
    budget_tokens: int = Field(gt=0)
    as_of: AwareDatetime | None = None
    include_episodes: bool = True
    recency_weight: float = Field(default=0.1, ge=0)


class ContextItem(BaseModel):
    """One item of a context: a current fact or a conversation turn.

    A fact whose source turn matched the topic better than its own words carries that turn
    as ``excerpt`` when the budget had room (it is in ``Context.text`` under the fact).
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["fact", "episode"]
    id: str
    text: str
    session: str
    at: datetime
    score: float
    tokens: int
    sources: list[str]
    superseded: list[str] = Field(default_factory=list)
    excerpt: str | None = None


class Context(BaseModel):
    """What ``context_for`` returns.

    ``text`` is the block to put in a prompt: facts grouped by session with the session's date,
    superseded values annotated, supporting excerpts. ``tokens_used`` counts it exactly
    (cl100k, offline) and never exceeds ``budget_tokens``. ``str(context)`` is the console
    view: one line per item and the budget line.
    """

    model_config = ConfigDict(frozen=True)

    user: str
    org: str | None
    topic: str
    items: list[ContextItem]
    text: str
    tokens_used: int
    budget_tokens: int
    sessions: dict[str, datetime] = Field(default_factory=dict)

    @property
    def facts(self) -> list[ContextItem]:
        """The fact items, best first."""
        return [item for item in self.items if item.kind == "fact"]

    @property
    def covered(self) -> set[str]:
        """``dia_id``s of every episode the context holds or a fact in it came from."""
        return {source for item in self.items for source in item.sources}

    def __str__(self) -> str:
        lines = ["[ from earlier sessions ]"]
        for item in self.items:
            if item.superseded:
                note = f"superseded {', '.join(item.superseded)}, {item.session}"
            else:
                note = item.session
            bullet = "▸" if item.kind == "fact" else "▹"
            lines.append(f"{bullet} {item.text} ({note})")
        lines.append(f"[ token budget: {self.tokens_used} of {self.budget_tokens} ]")
        return "\n".join(lines)


class Forgotten(BaseModel):
    """What ``forget`` deleted.

    Attributes:
        facts: How many facts (current and superseded).
        episodes: How many conversation turns.
        sessions: How many sessions.
        fact_ids: The deleted facts' ids (what the audit trail records as erased).
        session_names: The deleted sessions' names.
    """

    model_config = ConfigDict(frozen=True)

    facts: int
    episodes: int
    sessions: int
    fact_ids: list[str] = Field(default_factory=list)
    session_names: list[str] = Field(default_factory=list)
