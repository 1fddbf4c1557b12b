"""``engram.context_for`` and friends: the same call in workflow code and in ordinary code.

In workflow code each call runs as a built-in activity (``jamjet.engram.*``) on the store the
worker's ``JamJetConfig.memory.store`` names, so it is durable, retried and in history;
``remember``'s extraction is a model call through ``llm.chat`` (policy gate and budgets apply).
In ordinary code the calls go to the store directly: ``store=`` if given, else the
``JAMJET_MEMORY_STORE`` environment variable, else ``sqlite:///.jamjet/memory.db``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, JsonValue, ValidationError
from temporalio import workflow

from jamjet_temporal import llm
from jamjet_temporal._shared._activity import DEFAULT_RETRY_POLICY
from jamjet_temporal._shared._runtime import runtime_call
from jamjet_temporal._shared._wire import (
    CONTEXT_ACTIVITY,
    FACTS_ACTIVITY,
    FORGET_ACTIVITY,
    INGEST_ACTIVITY,
)
from jamjet_temporal.errors import ConfigError, EngramError
from jamjet_temporal.memory._extract import extraction_request, parse_extraction
from jamjet_temporal.memory._names import DEFAULT_MEMORY_STORE, FactsRequest, ForgetRequest
from jamjet_temporal.memory._types import (
    Context,
    ContextRequest,
    Fact,
    FactInput,
    Forgotten,
    Ingested,
    IngestRequest,
    Message,
)

__all__ = [
    "DEFAULT_MEMORY_STORE",
    "context_for",
    "facts",
    "forget",
    "record",
    "remember",
]

_M = TypeVar("_M", bound=BaseModel)
#: Ordinary code's memory, by store URL.
_local: dict[str, Any] = {}
_local_lock = threading.Lock()


def _build(model: type[_M], call: str, **fields: object) -> _M:
    # A pydantic error raised in workflow code would retry the workflow task forever; ours
    # fails the call (and the workflow, unless caught) with a message naming the argument.
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "arguments"
        raise EngramError(f"engram.{call}: {where}: {problem['msg']}") from None


_HEARTBEAT = timedelta(seconds=10)


async def _call(
    call: str, store: str | None, name: str, request: BaseModel, result_type: Any, timeout_s: int
) -> Any:
    """Run the memory activity ``name``: durably in workflow code; in ordinary code, the same
    activity implementation called directly on the store (one per URL per process)."""
    if workflow.in_workflow():
        if store is not None:
            raise ConfigError(
                f"engram.{call}(store=...) is for code outside workflows; in a workflow memory "
                "goes to the worker's JamJetConfig(memory=MemoryConfig(store=...))"
            )
        with runtime_call():
            scheduled = workflow.start_activity(
                name,
                request,
                result_type=result_type,
                start_to_close_timeout=timedelta(seconds=timeout_s),
                # The activity heartbeats while it works: a worker lost mid-call (killed, cut
                # off) is noticed in seconds, not after the start-to-close timeout.
                heartbeat_timeout=_HEARTBEAT,
                retry_policy=DEFAULT_RETRY_POLICY,
            )
        return await scheduled
    from jamjet_temporal.memory._activities import (
        EngramActivities,  # I/O side: never imported by workflow code
    )

    url = store or os.environ.get("JAMJET_MEMORY_STORE") or DEFAULT_MEMORY_STORE
    with _local_lock:
        local = _local.get(url)
        if local is None:
            local = _local[url] = EngramActivities(url)
    return await local.run(name, request)


def _now() -> datetime:
    return workflow.now() if workflow.in_workflow() else datetime.now(UTC)


async def context_for(
    user: str,
    topic: str,
    budget_tokens: int,
    *,
    org: str | None = None,
    as_of: datetime | None = None,
    include_episodes: bool = True,
    recency_weight: float = 0.1,
    store: str | None = None,
) -> Context:
    """The most relevant current facts about ``user`` for ``topic``, within a token budget.

    Facts come with the session they were learnt in; a value that replaced older ones says so
    ("location: Amsterdam (superseded Pune)"); conversation excerpts are added where they rank
    and their evidence is not already covered by a fact. ``Context.text`` is the block for a
    prompt, ``Context.tokens_used`` its exact size, never over ``budget_tokens``;
    ``str(context)`` is the console view.

    Args:
        user: Whose memory (exact: ``"Sunil"`` is not ``"sunil"``).
        topic: What the context is for: the user's question, the task, keywords.
        budget_tokens: The most tokens the block may take (cl100k, counted offline).
        org: The user's org: memory is scoped by (org, user).
        as_of: Answer with what was believed then (transaction time). Default: now.
        include_episodes: Also return supporting conversation excerpts.
        recency_weight: How much newer memory is preferred (0: relevance only).
        store: Outside workflows only: the memory store URL.

    Raises:
        EngramError: An argument is invalid.
    """
    request = _build(
        ContextRequest,
        "context_for",
        user=user,
        org=org,
        topic=topic,
        budget_tokens=budget_tokens,
        as_of=as_of,
        include_episodes=include_episodes,
        recency_weight=recency_weight,
    )
    context: Context = await _call("context_for", store, CONTEXT_ACTIVITY, request, Context, 60)
    return context


async def record(
    user: str,
    value: str,
    *,
    session: str,
    attribute: str | None = None,
    org: str | None = None,
    at: datetime | None = None,
    valid_from: datetime | None = None,
    sources: Sequence[str] = (),
    store: str | None = None,
) -> Fact:
    """Store one fact directly (no model call).

    A new ``value`` for an ``attribute`` supersedes the user's current value (the old one stays,
    marked, for history); the same value again merges into the existing fact.

    Args:
        user: Whose memory.
        value: The value ("Amsterdam"), or a whole statement when ``attribute`` is None.
        session: The session it was learnt in ("s6").
        attribute: What the value is of ("location").
        org: The user's org.
        at: When the session happened (default now).
        valid_from: When the fact became true (default ``at``).
        sources: ``dia_id``s of the turns it came from.
        store: Outside workflows only: the memory store URL.

    Returns:
        The stored fact (the existing one, when it merged).
    """
    fact = _build(
        FactInput,
        "record",
        value=value,
        attribute=attribute,
        sources=list(sources),
        valid_from=valid_from,
    )
    ingested = await _ingest(
        _build(
            IngestRequest,
            "record",
            user=user,
            org=org,
            session=session,
            at=at or _now(),
            facts=[fact],
        ),
        store,
        "record",
    )
    return ingested.facts[0]


async def remember(
    user: str,
    session: str,
    messages: Sequence[Message | Mapping[str, JsonValue]],
    *,
    org: str | None = None,
    at: datetime | None = None,
    model: str = llm.DEFAULT_MODEL,
    store: str | None = None,
) -> Ingested:
    """Remember a conversation: its turns as episodes and the durable facts a model finds in it.

    The extraction is one model call with structured output (in workflow code the built-in
    ``jamjet.llm.chat`` activity, so the policy gate and budgets apply); each fact links to the
    turns it came from. Storing is idempotent: remembering the same session again adds nothing.

    Args:
        user: Whose memory.
        session: The session's name ("s8").
        messages: The turns: ``Message``s or OpenAI-format dicts (``role``, ``content``,
            optional ``name``); ``system`` and ``tool`` turns are skipped.
        org: The user's org.
        at: When the session happened (default now).
        model: The model that extracts facts.
        store: Outside workflows only: the memory store URL.

    Raises:
        ExtractionError: The model's answer was not the JSON asked for.
        EngramError: An argument is invalid.
    """
    turns = [_message(m, n) for n, m in enumerate(messages, start=1)]
    kept = [t for t in turns if t is not None]
    request = _build(
        IngestRequest, "remember", user=user, org=org, session=session, at=at or _now()
    )
    found: list[FactInput] = []
    if kept:
        answer = await llm.chat(extraction_request(user, session, kept, model))
        found = parse_extraction(answer.content, session, kept)
    return await _ingest(
        request.model_copy(update={"messages": kept, "facts": found}), store, "remember"
    )


def _message(raw: Message | Mapping[str, JsonValue], n: int) -> Message | None:
    if isinstance(raw, Message):
        return raw
    role = raw.get("role", "user")
    if role in ("system", "developer", "tool"):
        return None
    content = raw.get("content")
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        content = " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    name = raw.get("name")
    return _build(
        Message,
        "remember",
        role=role,
        content=content if isinstance(content, str) else "",
        speaker=name if isinstance(name, str) else None,
        dia_id=raw.get("dia_id"),
    )


async def _ingest(request: IngestRequest, store: str | None, call: str) -> Ingested:
    ingested: Ingested = await _call(call, store, INGEST_ACTIVITY, request, Ingested, 120)
    return ingested


async def facts(
    user: str,
    *,
    org: str | None = None,
    attribute: str | None = None,
    include_superseded: bool = False,
    as_of: datetime | None = None,
    valid_at: datetime | None = None,
    store: str | None = None,
) -> list[Fact]:
    """A user's facts, oldest first: current ones, or the history.

    Args:
        user: Whose memory.
        org: The user's org.
        attribute: Only this attribute's values.
        include_superseded: Also the values that were replaced.
        as_of: What was believed at that time (transaction time).
        valid_at: What was true at that time, as known now (valid time).
        store: Outside workflows only: the memory store URL.
    """
    request = _build(
        FactsRequest,
        "facts",
        user=user,
        org=org,
        attribute=attribute,
        include_superseded=include_superseded,
        as_of=as_of,
        valid_at=valid_at,
    )
    found: list[Fact] = await _call("facts", store, FACTS_ACTIVITY, request, list[Fact], 60)
    return found


async def forget(user: str, *, org: str | None = None, store: str | None = None) -> Forgotten:
    """Delete everything remembered about a user: facts, turns, sessions and index entries.

    On SQLite the deleted data is also erased from the file (zeroed pages, rebuilt index,
    truncated log). What earlier workflow runs returned stays in their Temporal history until
    its retention ends: encrypt payloads with a codec if that matters.

    Args:
        user: Whose memory.
        org: The user's org.
        store: Outside workflows only: the memory store URL.

    Returns:
        How many facts, turns and sessions were deleted.
    """
    request = _build(ForgetRequest, "forget", user=user, org=org)
    forgotten: Forgotten = await _call("forget", store, FORGET_ACTIVITY, request, Forgotten, 300)
    return forgotten
