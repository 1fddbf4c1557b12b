"""Budgets, workflow side: project every model call, halt before a cap would be crossed.

Runs inside the workflow sandbox. Spend lives in workflow state (the ledgers below), built
only from results recorded in history, so a crashed and replayed run neither loses nor double
counts a cent. Prices come from the ``jamjet.budget.quote`` activity, once per model per run,
so a later price-table update cannot change a replayed decision.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from jamjet_temporal._shared._runtime import runtime_call
from jamjet_temporal._shared._wire import BUDGET_QUERY, QUOTE_ACTIVITY
from jamjet_temporal.budget._ledger import (
    Budget,
    BudgetDecision,
    BudgetLedger,
    CallCost,
    Projection,
    call_cost,
    project,
)
from jamjet_temporal.budget._prices import ModelPrice
from jamjet_temporal.budget._tokens import count_message_tokens
from jamjet_temporal.errors import UnknownModelPriceError
from jamjet_temporal.llm._types import ChatRequest, ChatResult

#: Wire name of the price quote activity.
#: Output cap given to a budgeted call that sets none: without one its cost has no bound.
DEFAULT_MAX_OUTPUT_TOKENS = 1024


@dataclass
class BudgetScope:
    """One budget in force (a task's, a run's), its ledger and its decisions so far."""

    name: str
    ledger: BudgetLedger
    decisions: list[BudgetDecision] = field(default_factory=list)


_SCOPES: ContextVar[tuple[BudgetScope, ...]] = ContextVar("jamjet_budgets", default=())


@contextlib.contextmanager
def budget_scope(name: str, budget: Budget | None) -> Iterator[BudgetScope | None]:
    """Put ``budget`` in force for the model calls made inside the block."""
    if budget is None:
        yield None
        return
    scope = BudgetScope(name, BudgetLedger(budget=budget))
    token = _SCOPES.set((*_SCOPES.get(), scope))
    try:
        yield scope
    finally:
        _SCOPES.reset(token)


@dataclass(frozen=True)
class _SliceRequest:
    fraction: Decimal | None = None
    max_cost: Decimal | None = None
    max_tokens: int | None = None


_SLICE: ContextVar[_SliceRequest | None] = ContextVar("jamjet_child_slice", default=None)


@contextlib.contextmanager
def child_budget(
    fraction: float | str | Decimal | None = None,
    *,
    max_cost: float | str | Decimal | None = None,
    max_tokens: int | None = None,
) -> Iterator[None]:
    """Child workflows started inside the block get this slice of what is left.

    Without it a child gets everything that is left. Either way the slice is set aside from
    the parent's budget when the child starts, so parent and child together cannot overspend.
    """
    request = _SliceRequest(
        None if fraction is None else Decimal(str(fraction)),
        None if max_cost is None else Decimal(str(max_cost)),
        max_tokens,
    )
    token = _SLICE.set(request)
    try:
        yield
    finally:
        _SLICE.reset(token)


def carve_child_budget() -> Budget | None:
    """The budget of a child (workflow, or a task's model calls) starting now, set aside from
    every scope in force: never more than what the tightest of them has left."""
    scopes = _SCOPES.get()
    left = remaining_budget()
    if left is None:
        return None
    wanted = _SLICE.get() or _SliceRequest()
    child = BudgetLedger(budget=left).slice(
        wanted.fraction, max_cost=wanted.max_cost, max_tokens=wanted.max_tokens
    )
    hold(scopes, child)
    return child


def hold(scopes: tuple[BudgetScope, ...], amount: Budget) -> None:
    """Count ``amount`` as spent in every scope until ``settle_reservation`` gives it back."""
    for scope in scopes:
        scope.ledger = scope.ledger.model_copy(
            update={
                "spent_cost": scope.ledger.spent_cost + (amount.max_cost or Decimal(0)),
                "spent_tokens": scope.ledger.spent_tokens + (amount.max_tokens or 0),
            }
        )


def settle_reservation(
    scopes: tuple[BudgetScope, ...], reserved: Budget, calls: tuple[CallCost, ...]
) -> None:
    """Give back what a task set aside (``carve_child_budget``) and charge what it spent.

    Args:
        scopes: The scopes the reservation was carved from.
        reserved: What was set aside.
        calls: The model calls the task made (their real cost), from its result or failure.
    """
    for scope in scopes:
        ledger = scope.ledger.model_copy(
            update={
                "spent_cost": scope.ledger.spent_cost - (reserved.max_cost or Decimal(0)),
                "spent_tokens": scope.ledger.spent_tokens - (reserved.max_tokens or 0),
            }
        )
        for call in calls:
            ledger = ledger.charge(call)
        scope.ledger = ledger


def remaining_budget() -> Budget | None:
    """What is left of every budget in force (the smallest of each cap); None without any.

    A run that continues as new carries this over, so the next run cannot spend what this one
    already has.
    """
    scopes = _SCOPES.get()
    if not scopes:
        return None
    costs = [c for s in scopes if (c := s.ledger.remaining().max_cost) is not None]
    tokens = [t for s in scopes if (t := s.ledger.remaining().max_tokens) is not None]
    return Budget(max_cost=min(costs, default=None), max_tokens=min(tokens, default=None))


def active_scopes() -> tuple[BudgetScope, ...]:
    """The budgets in force now, outermost first."""
    return _SCOPES.get()


class RunSpend(BaseModel):
    """What a run has spent against its run budget: the ``jamjet.budget.spent`` query's answer.

    Held reservations (a task or child workflow running, one whose outcome is unknown) count as
    spent, as they do for the run's own decisions: the figure never understates.

    Attributes:
        budget: The run's budget (its caps).
        spent_cost: USD spent (and held).
        spent_tokens: Tokens used (and held).
    """

    model_config = ConfigDict(frozen=True)

    budget: Budget
    spent_cost: Decimal
    spent_tokens: int


def install_spend_query(scope: BudgetScope) -> None:
    """Answer the ``jamjet.budget.spent`` query with what the run spent against ``scope``
    (its run budget): how an A2A server reports a served task's spend to its caller."""
    workflow.set_query_handler(
        BUDGET_QUERY,
        lambda: RunSpend(
            budget=scope.ledger.budget,
            spent_cost=scope.ledger.spent_cost,
            spent_tokens=scope.ledger.spent_tokens,
        ),
    )


class BudgetKeeper:
    """One run's price quotes (per model) and the check-then-charge around each model call."""

    def __init__(self) -> None:
        self._prices: dict[str, ModelPrice] = {}
        #: Tasks running now with the run's budget set aside for their own model calls.
        self.reserved = 0

    async def price(self, model: str) -> ModelPrice:
        """The model's price, quoted once per run by the worker (recorded in history)."""
        if model not in self._prices:
            try:
                with runtime_call():
                    quote = workflow.start_activity(
                        QUOTE_ACTIVITY,
                        model,
                        result_type=ModelPrice,
                        # A lookup in a bundled table: milliseconds. A worker lost mid-quote is
                        # retried soon, and as often as it takes (an unknown price is final).
                        start_to_close_timeout=timedelta(seconds=10),
                        retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
                    )
                self._prices[model] = await quote
            except ActivityError as err:
                cause = err.cause
                if isinstance(cause, ApplicationError) and cause.type == "UnknownModelPriceError":
                    raise UnknownModelPriceError(model, reason=cause.message) from err
                raise
        return self._prices[model]

    async def check(
        self, request: ChatRequest, scopes: tuple[BudgetScope, ...]
    ) -> tuple[ChatRequest, ModelPrice, list[tuple[BudgetScope, BudgetDecision]]]:
        """Bound and project a call; the decision of every scope in force.

        The decision is taken once no task holds the budget (a task gives back what it did not
        spend when it ends), with nothing awaited between that and the projection.
        """
        if request.max_tokens is None:
            request = request.model_copy(update={"max_tokens": DEFAULT_MAX_OUTPUT_TOKENS})
        assert request.max_tokens is not None
        price = await self.price(request.model)
        await workflow.wait_condition(lambda: self.reserved == 0)
        tokens = count_message_tokens(request.messages, request.tools)
        projection: Projection = project(price, tokens, request.max_tokens)
        decisions = [(scope, scope.ledger.check(projection)) for scope in scopes]
        for scope, decision in decisions:
            scope.decisions.append(decision)
        return request, price, decisions

    @staticmethod
    def charge(result: ChatResult, price: ModelPrice, scopes: tuple[BudgetScope, ...]) -> None:
        """Charge a finished call's real cost to every scope in force."""
        cost = call_cost(price, result.usage)
        for scope in scopes:
            scope.ledger = scope.ledger.charge(cost)
