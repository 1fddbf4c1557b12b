"""The policy gate, workflow side: every activity a workflow schedules is decided here first.

Runs inside the workflow sandbox. A decision is a pure function of the policies in force (the
plugin's, the workflow's, the node's or agent's) and the activity's name, so a replay takes it
again identically. Nothing is written from here: an allowed call carries its decision to the
activity in a header, and the activity records it before the tool body runs; a refused call is
recorded by the ``jamjet.audit.record`` activity before the refusal is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from datetime import timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, JsonValue
from pydantic_core import to_jsonable_python
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.worker import (
    ExecuteWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    WorkflowInboundInterceptor,
    WorkflowOutboundInterceptor,
)

from ._llm_types import CHAT_ACTIVITY, ChatRequest, ChatResult
from .approvals._config import ApprovalConfig
from .approvals._workflow import ApprovalBook
from .audit._event import AuditEvent, event_id
from .budget._errors import BudgetExceededError
from .budget._ledger import Budget, BudgetDecision
from .budget._workflow import (
    QUOTE_ACTIVITY,
    BudgetKeeper,
    active_scopes,
    budget_scope,
    carve_child_budget,
)
from .engram._names import ENGRAM_ACTIVITIES
from .errors import (
    ApprovalRequiredError,
    GateError,
    ModelDeniedError,
    ToolDeniedError,
)
from .policy import Decision, Policy, PolicyScopes, decide_model, decide_tool

#: Header carrying the gate's decision to the activity (stable wire name).
GATE_HEADER = "JamJetGate"
#: Header carrying a child workflow's budget slice from its parent (stable wire name).
BUDGET_HEADER = "JamJetBudget"
#: Header naming the user a run acts for, set by the client (stable wire name).
USER_HEADER = "JamJetUser"
#: Activity that records refusals and other workflow-side events.
RECORD_ACTIVITY = "jamjet.audit.record"
#: The runtime's own bookkeeping activities: not tools, so not decided by the gate.
INTERNAL_ACTIVITIES = frozenset({RECORD_ACTIVITY, QUOTE_ACTIVITY, *ENGRAM_ACTIVITIES})

# Which scopes and agent are in force for the code running now. Context variables follow the
# workflow's asyncio tasks, so a scope entered around an await applies to exactly the
# activities scheduled inside it, deterministically.
_SCOPES: ContextVar[tuple[tuple[str, Policy], ...]] = ContextVar("jamjet_scopes", default=())
_AGENT: ContextVar[str | None] = ContextVar("jamjet_agent", default=None)
_GATE: ContextVar[Gate | None] = ContextVar("jamjet_gate", default=None)


@contextlib.contextmanager
def policy_scope(name: str, policy: Policy | None, *, agent: str | None = None) -> Iterator[None]:
    """Put ``policy`` in force, as scope ``name``, for what runs inside the block."""
    scopes_token = _SCOPES.set((*_SCOPES.get(), (name, policy))) if policy is not None else None
    agent_token = _AGENT.set(agent) if agent is not None else None
    try:
        yield
    finally:
        if agent_token is not None:
            _AGENT.reset(agent_token)
        if scopes_token is not None:
            _SCOPES.reset(scopes_token)


def current_gate() -> Gate | None:
    """The gate of the workflow running now (None without the plugin)."""
    return _GATE.get()


class Clearance(BaseModel):
    """The gate's decision about one call, as the activity receives it."""

    model_config = ConfigDict(frozen=True)

    decision: Decision
    kind: str
    event_id: str
    decided_at: AwareDatetime
    actor: dict[str, JsonValue]
    args_digest: str
    budget: BudgetDecision | None = None


def digest(value: object) -> str:
    """``sha256:`` + hex digest of the canonical JSON of ``value``."""
    canonical = json.dumps(
        to_jsonable_python(value, fallback=repr), sort_keys=True, separators=(",", ":")
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class Gate:
    """One workflow run's gate: its policies, who it acts for, and its decision counter."""

    def __init__(
        self,
        base: Policy | None,
        user: str | None,
        audit: bool,
        approvals: ApprovalConfig | None,
    ) -> None:
        self._base = (("run", base),) if base is not None else ()
        self.user = user
        self._audit = audit
        self._count = 0
        self._cache: dict[tuple[tuple[str, Policy], ...], PolicyScopes] = {}
        self.budget = BudgetKeeper()
        self._budget_count = 0
        #: None when the plugin has no approvals config: approval requests are then refused.
        self.approvals = ApprovalBook(self, approvals) if approvals is not None else None

    def _scopes(self) -> PolicyScopes:
        stack = (*self._base, *_SCOPES.get())
        scopes = self._cache.get(stack)
        if scopes is None:
            scopes = self._cache[stack] = PolicyScopes(scopes=stack)
        return scopes

    def actor(self) -> dict[str, JsonValue]:
        """Who is acting now: workflow type, agent, user."""
        info = workflow.info()
        return {
            "workflow_type": info.workflow_type,
            "agent": _AGENT.get(),
            "user": self.user,
        }

    def budget_event(self, check: BudgetDecision, scope: str, *, allowed: bool) -> AuditEvent:
        """The audit event of one budget decision."""
        self._budget_count += 1
        info = workflow.info()
        return AuditEvent(
            id=event_id(info.workflow_id, info.run_id, "budget", str(self._budget_count)),
            run_id=info.workflow_id,
            workflow_run_id=info.run_id,
            kind="budget.decision",
            at=workflow.now(),
            actor=self.actor(),
            data={
                **check.model_dump(mode="json"),
                "decision": "ALLOWED" if allowed else "HALT",
                "scope": scope,
            },
        )

    async def record(self, events: list[AuditEvent]) -> None:
        """Record events durably (the ``jamjet.audit.record`` activity) before going on."""
        if self._audit:
            # Unlimited attempts: a governed fact that cannot be recorded must not be lost.
            await workflow.execute_activity(
                RECORD_ACTIVITY,
                events,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
            )

    def decide(self, activity: str, args: Sequence[object]) -> tuple[Decision, AuditEvent]:
        """Decide one call and build the audit event that records the decision."""
        scopes = self._scopes()
        if activity == CHAT_ACTIVITY and args and isinstance(args[0], ChatRequest):
            decision = decide_model(scopes, args[0].model)
            kind = "policy.model_decision"
        else:
            decision = decide_tool(scopes, activity)
            kind = "policy.decision"
        self._count += 1
        info = workflow.info()
        event = AuditEvent(
            id=event_id(info.workflow_id, info.run_id, "decision", str(self._count)),
            run_id=info.workflow_id,
            workflow_run_id=info.run_id,
            kind=kind,
            at=workflow.now(),
            actor=self.actor(),
            data={
                **decision.model_dump(mode="json"),
                "args_digest": digest(list(args)),
            },
        )
        return decision, event

    async def refuse(self, decision: Decision, event: AuditEvent) -> GateError:
        """Record a refusal durably, then return the error to raise."""
        await self.record([event])
        error: type[GateError] = ToolDeniedError
        if decision.decision == "WAITING_FOR_APPROVAL":
            error = ApprovalRequiredError
        elif event.kind == "policy.model_decision":
            error = ModelDeniedError
        return error(
            decision.subject,
            decision.reason,
            rule=decision.rule,
            scope=decision.scope,
            event_id=event.id if self._audit else None,
        )

    async def refuse_unknown(self, tool: str, args: object, reason: str) -> GateError:
        """Refuse (and record) a call to a tool that does not exist here."""
        decision, event = self.decide(tool, [args])
        if decision.allowed:
            decision = decision.model_copy(
                update={"decision": "BLOCKED", "reason": reason, "rule": None, "rule_kind": None}
            )
            event = event.model_copy(
                update={"data": {**event.data, **decision.model_dump(mode="json")}}
            )
        return await self.refuse(decision, event)


def make_workflow_interceptor(
    base: Policy | None, audit: bool, approvals: ApprovalConfig | None
) -> type[WorkflowInboundInterceptor]:
    """The inbound interceptor class for one plugin's config."""

    class _Outbound(WorkflowOutboundInterceptor):
        def __init__(self, next: WorkflowOutboundInterceptor, inbound: _Inbound) -> None:
            super().__init__(next)
            self._inbound = inbound

        def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[object]:
            gate = self._inbound.gate
            if input.activity in INTERNAL_ACTIVITIES or gate is None:
                return super().start_activity(input)
            decision, event = gate.decide(input.activity, input.args)
            if decision.decision == "WAITING_FOR_APPROVAL" and gate.approvals is not None:
                book = gate.approvals

                async def approved_then_run() -> object:
                    args = to_jsonable_python(list(input.args), fallback=repr)
                    approval = await book.request(input.activity, {"args": args}, None)
                    approved = decision.model_copy(
                        update={
                            "decision": "ALLOWED",
                            "reason": f"approved by {', '.join(approval.approved_by)} "
                            f"({approval.approval_id})",
                        }
                    )
                    self._clear(input, approved, event)
                    return await self.next.start_activity(input)

                return asyncio.ensure_future(approved_then_run())  # type: ignore[return-value]
            budgets = active_scopes() if input.activity == CHAT_ACTIVITY else ()
            if decision.allowed and budgets:
                keeper = gate.budget

                async def within_budget() -> object:
                    request, price, checks = await keeper.check(input.args[0], budgets)
                    halted = [(scope, check) for scope, check in checks if not check.allowed]
                    if halted:
                        scope, check = halted[0]
                        refusal = gate.budget_event(check, scope.name, allowed=False)
                        await gate.record([refusal])
                        raise BudgetExceededError(check, scope=scope.name, event_id=refusal.id)
                    input.args = [request]
                    scope, check = checks[-1]
                    self._clear(input, decision, event, budget=check)
                    result = await self.next.start_activity(input)
                    assert isinstance(result, ChatResult)
                    keeper.charge(result, price, budgets)
                    return result

                return asyncio.ensure_future(within_budget())  # type: ignore[return-value]
            if not decision.allowed:
                # Callers await the handle; a task that records the refusal, then raises it,
                # keeps refusal and recording in one place for every path (agent, plain code).
                async def refused() -> object:
                    raise await gate.refuse(decision, event)

                return asyncio.ensure_future(refused())  # type: ignore[return-value]
            self._clear(input, decision, event)
            return super().start_activity(input)

        async def start_child_workflow(
            self, input: StartChildWorkflowInput
        ) -> workflow.ChildWorkflowHandle[object, object]:
            child = carve_child_budget()
            if child is not None:
                input.headers = {
                    **input.headers,
                    BUDGET_HEADER: workflow.payload_converter().to_payloads([child])[0],
                }
            return await super().start_child_workflow(input)

        @staticmethod
        def _clear(
            input: StartActivityInput,
            decision: Decision,
            event: AuditEvent,
            *,
            budget: BudgetDecision | None = None,
        ) -> None:
            clearance = Clearance(
                decision=decision,
                kind=event.kind,
                event_id=event.id,
                decided_at=event.at,
                actor=event.actor,
                args_digest=str(event.data["args_digest"]),
                budget=budget,
            )
            input.headers = {
                **input.headers,
                GATE_HEADER: workflow.payload_converter().to_payloads([clearance])[0],
            }

    class _Inbound(WorkflowInboundInterceptor):
        gate: Gate | None = None

        def init(self, outbound: WorkflowOutboundInterceptor) -> None:
            super().init(_Outbound(outbound, self))

        async def execute_workflow(self, input: ExecuteWorkflowInput) -> object:
            user = None
            if USER_HEADER in input.headers:
                user = workflow.payload_converter().from_payloads(
                    [input.headers[USER_HEADER]], [str]
                )[0]
            self.gate = Gate(base, user, audit, approvals)
            if self.gate.approvals is not None:
                self.gate.approvals.install()
            _GATE.set(self.gate)
            budget = None
            if BUDGET_HEADER in input.headers:
                budget = workflow.payload_converter().from_payloads(
                    [input.headers[BUDGET_HEADER]], [Budget]
                )[0]
            with budget_scope("run", budget):
                return await super().execute_workflow(input)

    return _Inbound
