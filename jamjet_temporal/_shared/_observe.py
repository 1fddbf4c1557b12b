"""Where running code tells tracing what happened (pure: both sides of the boundary).

Hooks, not tracing. The gate, approvals, the agent loop and the model call ask
:func:`observer` and, when it returns one, report to it. With tracing off there is none (one
``ContextVar`` read per hook) and OpenTelemetry is never imported. With tracing on
(``JamJetConfig(tracing=...)``), ``jamjet_temporal.tracing`` puts its observer in force around
each workflow run, signal and update handler, and each activity attempt.

The workflow side calls these hooks again when a run is replayed: the observer is made for
that (its spans come from Temporal's replay-safe tracer provider, which exports nothing
during replay), so a hook never needs to know whether the run is replaying.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from jamjet_temporal.budget._ledger import BudgetDecision
    from jamjet_temporal.llm._types import ChatRequest, ChatResult
    from jamjet_temporal.policy import Decision

__all__ = [
    "ApprovalOutcome",
    "Observer",
    "current_tool_call",
    "observer",
    "observing",
    "tool_call",
]

_T = TypeVar("_T")


@dataclass(frozen=True)
class ApprovalOutcome:
    """How an approval request ended, as far as it got.

    Attributes:
        outcome: ``approved``, ``rejected``, ``timed out``; None when it never got to a
            decision (refused at once, or the run stopped waiting).
        approvers: Who decided, in order (the last one completed or rejected it).
        event_ids: The audit events of the request and its accepted decisions.
        eligible: Who may decide now.
        required: How many approvals it needs.
    """

    outcome: str | None
    approvers: tuple[str, ...] = ()
    event_ids: tuple[str, ...] = ()
    eligible: tuple[str, ...] = ()
    required: int = 0


class Observer:
    """What tracing is told. Every hook here does nothing; ``jamjet_temporal.tracing``
    overrides them."""

    def gate_decision(self, kind: str, decision: Decision, event_id: str | None) -> None:
        """The gate decided a call (``kind`` is the audit event kind of the decision)."""

    def budget_halt(self, check: BudgetDecision, scope: str, event_id: str | None) -> None:
        """A budget refused a model call before it was made."""

    async def approval(
        self,
        action: str,
        approval_id: str,
        waiting: Awaitable[_T],
        outcome: Callable[[], ApprovalOutcome],
    ) -> _T:
        """An approval request, from request to decision (``waiting`` is the wait itself)."""
        return await waiting

    async def agent(self, model: str, prompt: str, turns: Awaitable[_T]) -> _T:
        """An agent's tool-calling loop (``turns`` runs it)."""
        return await turns

    async def chat(
        self,
        request: ChatRequest,
        call: Callable[[], Awaitable[ChatResult]],
        endpoint: str | None,
    ) -> ChatResult:
        """One model call on the worker (``call`` makes it; ``endpoint`` is the model's URL)."""
        return await call()


_OBSERVER: ContextVar[Observer | None] = ContextVar("jamjet_observer", default=None)
_TOOL_CALL: ContextVar[str | None] = ContextVar("jamjet_tool_call", default=None)


def observer() -> Observer | None:
    """The observer in force for the code running now (None with tracing off)."""
    return _OBSERVER.get()


@contextlib.contextmanager
def observing(watch: Observer) -> Iterator[None]:
    """Put ``watch`` in force for what runs inside the block."""
    token = _OBSERVER.set(watch)
    try:
        yield
    finally:
        _OBSERVER.reset(token)


@contextlib.contextmanager
def tool_call(call_id: str) -> Iterator[None]:
    """The tool activity scheduled inside the block answers the model's tool call ``call_id``."""
    token = _TOOL_CALL.set(call_id)
    try:
        yield
    finally:
        _TOOL_CALL.reset(token)


def current_tool_call() -> str | None:
    """The model's tool call id the activity being scheduled answers, if any."""
    return _TOOL_CALL.get()
