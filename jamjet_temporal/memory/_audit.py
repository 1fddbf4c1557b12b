"""What the audit trail records of a memory call: who, whose, how much, never the memory itself.

Pure: a function of the call's request and result. The worker's gate (activity side) writes it
as a ``memory.read``, ``memory.write`` or ``memory.forget`` event (``MEMORY_EVENT_KINDS``)
after each governed memory call. Counts, token figures, ids and session names only: no topic,
no fact value, no turn text (the decision event beside it carries a digest of the arguments,
as for any tool).
"""

from __future__ import annotations

from pydantic import BaseModel, JsonValue

from jamjet_temporal.memory._names import FactsRequest, ForgetRequest
from jamjet_temporal.memory._types import (
    Context,
    ContextRequest,
    Fact,
    Forgotten,
    Ingested,
    IngestRequest,
)

__all__ = ["memory_record"]


def memory_record(activity: str, request: BaseModel, result: object) -> dict[str, JsonValue]:
    """The content-free record of one memory call.

    Args:
        activity: The memory activity (``jamjet.engram.*``).
        request: Its argument.
        result: What it returned; None when it failed.

    Returns:
        ``owner`` (whose memory: user and org) and the call's figures.
    """
    owner: dict[str, JsonValue] = {
        "user": getattr(request, "user", None),
        "org": getattr(request, "org", None),
    }
    data: dict[str, JsonValue] = {"owner": owner}
    if isinstance(request, ContextRequest):
        data.update(
            call="context_for",
            budget_tokens=request.budget_tokens,
            as_of=request.as_of.isoformat() if request.as_of is not None else None,
        )
        if isinstance(result, Context):
            data.update(
                facts=len(result.facts),
                episodes=len(result.items) - len(result.facts),
                tokens_used=result.tokens_used,
                item_ids=[item.id for item in result.items],
            )
    elif isinstance(request, FactsRequest):
        data.update(
            call="facts",
            include_superseded=request.include_superseded,
            by_attribute=request.attribute is not None,
        )
        if isinstance(result, list):
            data["facts"] = len(result)
            data["fact_ids"] = [f.id for f in result if isinstance(f, Fact)]
    elif isinstance(request, IngestRequest):
        data.update(
            call="remember" if request.messages else "record",
            session=request.session,
            turns=len(request.messages),
            facts_given=len(request.facts),
        )
        if isinstance(result, Ingested):
            data.update(
                episodes_stored=result.episodes,
                fact_ids=[f.id for f in result.facts],
                merged=result.merged,
                superseded=result.superseded,
            )
    elif isinstance(request, ForgetRequest) and isinstance(result, Forgotten):
        data.update(
            call="forget",
            facts=result.facts,
            episodes=result.episodes,
            sessions=result.sessions,
            fact_ids=list(result.fact_ids),
            session_names=list(result.session_names),
        )
    elif isinstance(request, ForgetRequest):
        data["call"] = "forget"
    return data
