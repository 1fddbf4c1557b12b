"""One interceptor for both sides: the client tags runs with their user; workers gate and audit.

Wiring only; the gate itself is ``_gate_workflow`` (sandbox) and ``_gate_activity`` (worker).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

import temporalio.client
import temporalio.converter
import temporalio.worker

from ._gate_activity import AuditSink, GateActivityInbound
from ._gate_workflow import BUDGET_HEADER, USER_HEADER, make_workflow_interceptor
from .approvals._config import ApprovalConfig
from .budget._ledger import Budget
from .policy import Policy

_ACTING_AS: ContextVar[str | None] = ContextVar("jamjet_acting_as", default=None)
_RUN_BUDGET: ContextVar[Budget | None] = ContextVar("jamjet_run_budget", default=None)


@contextlib.contextmanager
def run_budget(
    *, max_cost: float | str | Decimal | None = None, max_tokens: int | None = None
) -> Iterator[None]:
    """Runs started inside the block get this budget for all their model calls.

    It covers every task, agent and strategy of the run, and child workflows get slices of
    what is left. Example::

        with run_budget(max_cost=2.00):
            await client.execute_workflow(...)
    """
    budget = Budget(
        max_cost=None if max_cost is None else Decimal(str(max_cost)), max_tokens=max_tokens
    )
    token = _RUN_BUDGET.set(budget)
    try:
        yield
    finally:
        _RUN_BUDGET.reset(token)


@contextlib.contextmanager
def acting_as(user: str) -> Iterator[None]:
    """Runs started inside the block act for ``user`` (recorded with every gate decision).

    Example::

        with acting_as("alice@example.com"):
            await client.execute_workflow(...)
    """
    token = _ACTING_AS.set(user)
    try:
        yield
    finally:
        _ACTING_AS.reset(token)


class _ClientOutbound(temporalio.client.OutboundInterceptor):
    async def start_workflow(
        self, input: temporalio.client.StartWorkflowInput
    ) -> temporalio.client.WorkflowHandle[Any, Any]:
        user = _ACTING_AS.get()
        converter = temporalio.converter.default().payload_converter
        if user is not None:
            input.headers = {**input.headers, USER_HEADER: converter.to_payloads([user])[0]}
        budget = _RUN_BUDGET.get()
        if budget is not None:
            payload = converter.to_payloads([budget.model_dump(mode="json")])[0]
            input.headers = {**input.headers, BUDGET_HEADER: payload}
        return await super().start_workflow(input)


class JamJetInterceptor(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    """The plugin's interceptor: user header on the client, policy gate and audit on workers."""

    def __init__(
        self, policy: Policy | None, sink: AuditSink | None, approvals: ApprovalConfig | None
    ) -> None:
        self._sink = sink
        self._workflow_class = make_workflow_interceptor(
            policy, audit=sink is not None, approvals=approvals
        )

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return _ClientOutbound(next)

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[temporalio.worker.WorkflowInboundInterceptor]:
        return self._workflow_class

    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        return GateActivityInbound(next, self._sink)
