"""One interceptor for both sides: the client tags runs with their user; workers gate and audit.

Wiring only; the gate itself is ``_gate_workflow`` (sandbox) and ``_gate_activity`` (worker).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import temporalio.client
import temporalio.converter
import temporalio.worker

from jamjet_temporal._shared._wire import BUDGET_HEADER, USER_HEADER
from jamjet_temporal.approvals._identity import SigningIdentity
from jamjet_temporal.approvals._load import ApprovalConfig
from jamjet_temporal.budget._ledger import Budget
from jamjet_temporal.budget._prices import PriceTable
from jamjet_temporal.errors import ConfigError
from jamjet_temporal.gate._workflow import make_workflow_interceptor
from jamjet_temporal.policy import Policy

if TYPE_CHECKING:
    from jamjet_temporal.gate._activities import AuditSink, ChatClient

_ACTING_AS: ContextVar[tuple[str, SigningIdentity] | None] = ContextVar(
    "jamjet_acting_as", default=None
)
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
def acting_as(
    user: str | SigningIdentity, *, signer: SigningIdentity | None = None
) -> Iterator[None]:
    """Runs started inside the block act for ``user``, proven by ``signer``'s signature.

    The worker accepts the user only if the approvals config trusts the signer for it: a
    client listed under ``clients:`` whose ``acts_for`` covers the user, or an approver acting
    for themselves. The proven user is recorded with every gate decision, is the requester
    four-eyes keeps from approving, owns the run's memory, and goes with child workflows and
    continue-as-new. Example::

        portal = load_identity("~/.jamjet/keys/portal.key")
        with acting_as("alice@example.com", signer=portal):
            await client.execute_workflow(...)

    Args:
        user: The user's id, or an approver's own identity (they act for themselves).
        signer: The client's key; omit it when ``user`` is an identity.

    Raises:
        ConfigError: ``user`` is a name and no ``signer`` was given.
    """
    if isinstance(user, SigningIdentity):
        signer = signer or user
        user = user.approver
    if signer is None:
        raise ConfigError(
            f"acting_as({user!r}): a run's user must be proven; pass signer=<the client's "
            "SigningIdentity> (a client the workers' approvals config lists under clients:)"
        )
    token = _ACTING_AS.set((user, signer))
    try:
        yield
    finally:
        _ACTING_AS.reset(token)


class _ClientOutbound(temporalio.client.OutboundInterceptor):
    async def start_workflow(
        self, input: temporalio.client.StartWorkflowInput
    ) -> temporalio.client.WorkflowHandle[Any, Any]:
        acting = _ACTING_AS.get()
        converter = temporalio.converter.default().payload_converter
        if acting is not None:
            user, signer = acting
            claim = signer.sign_run_user(user, workflow_id=input.id, workflow_type=input.workflow)
            payload = converter.to_payloads([claim.model_dump(mode="json")])[0]
            input.headers = {**input.headers, USER_HEADER: payload}
        budget = _RUN_BUDGET.get()
        if budget is not None:
            payload = converter.to_payloads([budget.model_dump(mode="json")])[0]
            input.headers = {**input.headers, BUDGET_HEADER: payload}
        return await super().start_workflow(input)


class JamJetInterceptor(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    """The plugin's interceptor: user header on the client, policy gate and audit on workers."""

    def __init__(
        self,
        policy: Policy | None,
        sink: AuditSink | None,
        approvals: ApprovalConfig | None,
        governance: str,
        chat: ChatClient,
        prices: PriceTable,
    ) -> None:
        # Activity side, imported here: `acting_as` (this module) is imported by workflow
        # modules, which Temporal's sandbox re-imports for every run.
        from jamjet_temporal.gate._activities import GateActivityInbound

        self._inbound = GateActivityInbound
        self._sink = sink
        self._governance = governance
        self._chat = chat
        self._prices = prices
        self._workflow_class = make_workflow_interceptor(
            policy, audit=sink is not None, approvals=approvals, governance=governance
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
        return self._inbound(next, self._sink, self._governance, self._chat, self._prices)
