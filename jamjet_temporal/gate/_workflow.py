"""The policy gate, workflow side: every activity a workflow schedules is decided here first.

Runs inside the workflow sandbox. A decision is a pure function of the policies in force (the
plugin's, the workflow's, the node's or agent's), the run's proven user and the call, so a
replay takes it again identically. Nothing is written from here: an allowed call carries its
decision to the activity in a header, and the activity records it before the tool body runs; a
refused call is recorded by the ``jamjet.audit.record`` activity before the refusal is raised.

A run carries its own governance: its user is proven at start (a signed ``JamJetUser`` header,
or inherited from a parent or previous run), the worker's governance (policy, approvals config,
audit store) is pinned in history by a patch marker on the first task, and the user and what is
left of the budget go with every child workflow and continue-as-new.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, NoReturn

from pydantic import AwareDatetime, BaseModel, ConfigDict, JsonValue, ValidationError
from pydantic_core import to_jsonable_python
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError
from temporalio.worker import (
    ContinueAsNewInput,
    ExecuteWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowOutboundInterceptor,
)

from jamjet_temporal._shared import _canonical
from jamjet_temporal._shared import _closing as closing
from jamjet_temporal._shared._observe import observer
from jamjet_temporal._shared._principal import same_principal
from jamjet_temporal._shared._runtime import (
    INTERNAL_HEADER,
    is_reserved,
    runtime_call,
    scheduled_by_runtime,
)
from jamjet_temporal._shared._wire import (
    A2A_SEND_ACTIVITY,
    BUDGET_HEADER,
    CHAT_ACTIVITY,
    CLOSED_BY_WORKER_PATCH,
    ENGRAM_ACTIVITIES,
    GATE_HEADER,
    GOVERNANCE_PATCH,
    INTERNAL_ACTIVITIES,
    MCP_CALL_ACTIVITY,
    MEMORY_SUBJECTS,
    RECORD_ACTIVITY,
    RUN_CLOSED,
    SPEND_DETAIL,
    USER_HEADER,
    fold_name,
)
from jamjet_temporal.a2a._types import A2ADelegation, delegation_problem
from jamjet_temporal.approvals._check import verify_run_user
from jamjet_temporal.approvals._identity import RunUser
from jamjet_temporal.approvals._load import ApprovalConfig
from jamjet_temporal.approvals._workflow import ApprovalBook
from jamjet_temporal.audit._types import AuditEvent, event_id
from jamjet_temporal.budget._ledger import Budget, BudgetDecision, CallCost
from jamjet_temporal.budget._workflow import (
    BudgetKeeper,
    active_scopes,
    budget_scope,
    carve_child_budget,
    hold,
    install_spend_query,
    remaining_budget,
    settle_reservation,
)
from jamjet_temporal.errors import (
    ApprovalRequiredError,
    BudgetExceededError,
    GateError,
    IdentityError,
    JamJetError,
    ModelDeniedError,
    ToolDeniedError,
)
from jamjet_temporal.gate._precall import after_precall
from jamjet_temporal.llm._types import ChatRequest, ChatResult
from jamjet_temporal.mcp._types import McpCall, call_problem
from jamjet_temporal.mcp._workflow import ToolCatalog, decide_call, list_options
from jamjet_temporal.policy import (
    Decision,
    Policy,
    PolicyScopes,
    decide_memory,
    decide_model,
    decide_tool,
)

# Which scopes and agent are in force for the code running now. Context variables follow the
# workflow's asyncio tasks, so a scope entered around an await applies to exactly the
# activities scheduled inside it, deterministically.
_SCOPES: ContextVar[tuple[tuple[str, Policy], ...]] = ContextVar("jamjet_scopes", default=())
_AGENT: ContextVar[str | None] = ContextVar("jamjet_agent", default=None)
_GATE: ContextVar[Gate | None] = ContextVar("jamjet_gate", default=None)
_NAMED: ContextVar[Callable[[], dict[str, JsonValue]] | None] = ContextVar(
    "jamjet_named_args", default=None
)


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


@contextlib.contextmanager
def named_arguments(args: Callable[[], dict[str, JsonValue]]) -> Iterator[None]:
    """The tool call scheduled inside the block has these arguments by name (what approvers see
    when the policy asks for an approval; positional activity arguments have no names), made
    by ``args`` only when an approver needs them."""
    token = _NAMED.set(args)
    try:
        yield
    finally:
        _NAMED.reset(token)


def current_gate() -> Gate | None:
    """The gate of the workflow running now (None without the plugin)."""
    return _GATE.get()


def governance_id(policy: Policy | None, approvals: ApprovalConfig | None, audit: str) -> str:
    """The patch id that pins a worker's governance in a run's history.

    A worker whose policy, approvals config or audit store differ from the run's fails the
    run's workflow task with a nondeterminism error naming both ids (Temporal retries it, and
    the run goes on when a worker with the run's governance takes it), rather than deciding
    with rules the run did not start under.

    Args:
        policy: The worker's ``run`` policy.
        approvals: The worker's approvals config.
        audit: The audit store's identity (``audit_store_id``), "" when auditing is off.

    Returns:
        ``jamjet.governance/<policy version>/<approvals digest>/<audit store digest>``.
    """
    policy_part = "none" if policy is None or policy.is_empty else policy.version_id
    approvals_part = "none"
    if approvals is not None:
        # Not the shared canonical JSON on purpose: this id is recorded as a patch marker in
        # every pinned run, so its text (default separators, ASCII escapes) must never change.
        canonical = json.dumps(approvals.model_dump(mode="json"), sort_keys=True)
        approvals_part = "apr_" + hashlib.sha256(canonical.encode()).hexdigest()[:12]
    audit_part = "off" if not audit else "aud_" + hashlib.sha256(audit.encode()).hexdigest()[:12]
    return f"{GOVERNANCE_PATCH}/{policy_part}/{approvals_part}/{audit_part}"


class ModelScope(BaseModel):
    """One scope's ``model_allowlist``, carried to an activity for the model calls it makes."""

    model_config = ConfigDict(frozen=True)

    scope: str
    policy_version: str
    allow: tuple[str, ...]


class Clearance(BaseModel):
    """The gate's decision about one call, as the activity receives it.

    Attributes:
        decision: The policy decision.
        kind: ``policy.decision`` or ``policy.model_decision``.
        event_id: The decision's audit event.
        decided_at: When (workflow time).
        actor: Who: workflow type, agent, user.
        args_digest: Digest of the arguments decided on.
        budget: For a model call, the budget check that let it go ahead.
        governance: The run's pinned governance id; a worker with another one refuses.
        model_scopes: The model allow-lists in force, for model calls the activity makes.
        allowance: Budget set aside for model calls the activity makes (None: no budget in
            force); what they spend comes back with the result.
    """

    model_config = ConfigDict(frozen=True)

    decision: Decision
    kind: str
    event_id: str
    decided_at: AwareDatetime
    actor: dict[str, JsonValue]
    args_digest: str
    budget: BudgetDecision | None = None
    governance: str = ""
    model_scopes: tuple[ModelScope, ...] = ()
    allowance: Budget | None = None


#: Key, in an activity's failure details, of the model calls it made before failing.


class TaskSpend(BaseModel):
    """The model calls a task made inside its activity, charged to the run's budget."""

    model_config = ConfigDict(frozen=True)

    calls: tuple[CallCost, ...] = ()


class SpentResult(BaseModel):
    """A budgeted task's result, with what its own model calls cost (unwrapped by the gate)."""

    model_config = ConfigDict(frozen=True)

    result: JsonValue
    spend: TaskSpend


def spend_of(details: Sequence[object]) -> TaskSpend | None:
    """The :class:`TaskSpend` carried in an activity failure's details, if any."""
    for detail in details:
        if isinstance(detail, dict) and SPEND_DETAIL in detail:
            try:
                return TaskSpend.model_validate(detail[SPEND_DETAIL])
            except ValidationError:
                return None
    return None


def digest(value: object) -> str:
    """``sha256:`` + hex digest of the canonical JSON of ``value`` (``_shared._canonical``).

    A value pydantic cannot write as JSON is written as its ``repr``. One canonical JSON cannot
    hold (NaN, an infinity, undecodable bytes) is digested as ``{"repr": repr(value)}``: a call
    is still decided, and replays, whatever its arguments.
    """
    try:
        return _canonical.digest(value, fallback=repr)
    except (ValueError, TypeError):
        return _canonical.digest({"repr": repr(value)})


class Gate:
    """One workflow run's gate: its policies, who it acts for, and its decision counter."""

    def __init__(
        self,
        base: Policy | None,
        user: str | None,
        audit: bool,
        approvals: ApprovalConfig | None,
        governance: str,
        *,
        pinned: bool = True,
        closed_by_worker: bool = False,
    ) -> None:
        self._base = (("run", base),) if base is not None else ()
        self.user = user
        self.governance = governance
        #: False for runs started before the governance pin: they replay as they ran.
        self.pinned = pinned
        #: The worker's runner records ``run.closed`` (``_shared._closing``); False for runs
        #: that record it with a local activity, as runs from before the hand-over did.
        self.closed_by_worker = closed_by_worker
        self._audit = audit
        self._counts: dict[str, int] = {}
        self._cache: dict[tuple[tuple[str, Policy], ...], PolicyScopes] = {}
        self._model_cache: dict[PolicyScopes, tuple[ModelScope, ...]] = {}
        self.budget = BudgetKeeper()
        self._budget_count = 0
        #: The MCP tools this run listed, by server: what its MCP calls are decided on.
        self.mcp = ToolCatalog()
        #: None when the plugin has no approvals config: approval requests are then refused.
        self.approvals = ApprovalBook(self, approvals) if approvals is not None else None

    def scopes(self) -> PolicyScopes:
        """The policy scopes in force for the code running now."""
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
        """Record events durably (the ``jamjet.audit.record`` activity) before going on.

        A local activity: the worker running the workflow records at once, without a round
        trip through the task queue (that worker holds the run's governance, or the pin would
        have stopped it). Its result is in history before the run goes on; a worker lost
        before that records again on replay, storing nothing twice (event ids). Runs from
        before the pin recorded with ordinary activities and replay so.
        """
        if not self._audit:
            return
        # Unlimited attempts: a governed fact that cannot be recorded must not be lost.
        schedule = workflow.start_local_activity if self.pinned else workflow.start_activity
        with runtime_call():
            handle = schedule(
                RECORD_ACTIVITY,
                events,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
                summary=f"audit: {', '.join(dict.fromkeys(e.kind for e in events))}",
            )
        await handle

    async def close(self, event: AuditEvent) -> None:
        """Record the run's ``run.closed`` before the run closes.

        Handed to the worker's runner, which appends it before the run's completion reaches
        Temporal (no activation of its own); recorded like any event where no runner takes it
        (a run from before the hand-over replays so, by its patch marker).
        """
        if not self._audit:
            return
        if self.closed_by_worker:
            closing.hand_over(event)
            return
        await self.record([event])

    def _decided(
        self, kind: str, decision: Decision, args: Sequence[object], series: str = "decision"
    ) -> tuple[Decision, AuditEvent]:
        # Numbered per series: decisions added later (memory calls) must not renumber the
        # ones a run made before, which in-flight runs have stored under those ids.
        count = self._counts[series] = self._counts.get(series, 0) + 1
        info = workflow.info()
        event = AuditEvent(
            id=event_id(info.workflow_id, info.run_id, series, str(count)),
            run_id=info.workflow_id,
            workflow_run_id=info.run_id,
            kind=kind,
            at=workflow.now(),
            actor=self.actor(),
            data={**decision.model_dump(mode="json"), "args_digest": digest(list(args))},
        )
        watch = observer()  # tracing: the decision as a span event (None when off)
        if watch is not None:
            watch.gate_decision(kind, decision, event.id if self._audit else None)
        return decision, event

    def decide(self, activity: str, args: Sequence[object]) -> tuple[Decision, AuditEvent]:
        """Decide one call and build the audit event that records the decision.

        A call to ``jamjet.llm.chat`` is a model call whatever shape its argument has: it is
        decided on the model it names, and refused when it names none. A call to
        ``jamjet.mcp.call_tool`` is a call of the tool ``ALIAS.TOOL`` it names (never of the
        activity), refused when it names none or spells the name in characters outside MCP's;
        rules with ``when:`` test the annotations the run listed for the tool.
        A call to ``jamjet.a2a.send`` is a delegation, decided as the tool ``a2a:ALIAS.SKILL``.
        """
        scopes = self.scopes()
        if is_mcp_call(activity):
            return self._decided("policy.decision", _mcp_decision(scopes, activity, args), args)
        if is_a2a_call(activity):
            return self._decided("policy.decision", _a2a_decision(scopes, activity, args), args)
        if activity != CHAT_ACTIVITY:
            return self._decided("policy.decision", decide_tool(scopes, activity), args)
        request = _chat_request(args)
        if request is None:
            decision = _refusal(
                activity, "a model call whose argument is not a chat request", "model"
            )
        else:
            decision = decide_model(scopes, request.model)
        return self._decided("policy.model_decision", decision, args)

    def decide_memory(self, activity: str, args: Sequence[object]) -> tuple[Decision, AuditEvent]:
        """Decide one memory call as its ``MEMORY_SUBJECTS`` name (``engram.read``...)."""
        decision = decide_memory(self.scopes(), MEMORY_SUBJECTS[activity])
        return self._decided("policy.decision", decision, args, series="memory-decision")

    def refusal(
        self, activity: str, args: Sequence[object], reason: str, scope: str
    ) -> tuple[Decision, AuditEvent]:
        """A refusal the runtime makes itself (not a policy rule), with its audit event."""
        return self._decided("policy.decision", _refusal(activity, reason, scope), args)

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
            decision, event = self.refusal(tool, [args], reason, decision.scope)
        return await self.refuse(decision, event)

    def model_scopes(self) -> tuple[ModelScope, ...]:
        """The model allow-lists in force, for an activity's own model calls (built once per
        scope stack: every cleared activity carries them)."""
        scopes = self.scopes()
        found = self._model_cache.get(scopes)
        if found is None:
            found = self._model_cache[scopes] = tuple(
                ModelScope(scope=name, policy_version=policy.version_id, allow=allow)
                for name, policy in scopes.scopes
                if (allow := policy.model_allowlist) is not None
            )
        return found


def is_mcp_call(activity: str) -> bool:
    """Whether ``activity`` is the MCP tool call (in any spelling that folds to its name)."""
    return fold_name(activity) == MCP_CALL_ACTIVITY


def mcp_call(args: Sequence[object]) -> McpCall | None:
    """The ``McpCall`` an MCP tool call's arguments hold, or None when they hold none."""
    if len(args) != 1:
        return None
    if isinstance(args[0], McpCall):
        return args[0]
    try:
        return McpCall.model_validate(args[0])
    except ValidationError:
        return None


def _mcp_decision(scopes: PolicyScopes, activity: str, args: Sequence[object]) -> Decision:
    """An MCP call, decided as the tool ``ALIAS.TOOL`` (a refusal for one that names none).

    The policy answers first, so a rule that blocks the name is the one reported; a name the
    policy would let through or send for approval is still refused when it is not spelled in
    MCP's tool name characters (a look-alike letter, an invisible character).
    """
    call = mcp_call(args)
    if call is None:
        return _refusal(
            activity,
            "an MCP tool call whose argument is not an McpCall (server, tool, arguments)",
            "runtime",
        )
    decision = decide_call(scopes, call)
    problem = call_problem(call)
    if problem is not None and decision.decision != "BLOCKED":
        return _refusal(call.subject, problem, "runtime")
    return decision


def is_a2a_call(activity: str) -> bool:
    """Whether ``activity`` is the A2A delegation (in any spelling that folds to its name)."""
    return fold_name(activity) == A2A_SEND_ACTIVITY


def a2a_call(args: Sequence[object]) -> A2ADelegation | None:
    """The ``A2ADelegation`` a delegation's arguments hold, or None when they hold none."""
    if len(args) != 1:
        return None
    if isinstance(args[0], A2ADelegation):
        return args[0]
    try:
        return A2ADelegation.model_validate(args[0])
    except ValidationError:
        return None


def _a2a_decision(scopes: PolicyScopes, activity: str, args: Sequence[object]) -> Decision:
    """A delegation, decided as the tool ``a2a:ALIAS.SKILL`` (a refusal for one that names none,
    or names its agent or skill in characters a policy glob could be fooled by)."""
    delegation = a2a_call(args)
    if delegation is None:
        return _refusal(
            activity,
            "an A2A delegation whose argument is not an A2ADelegation (agent, skill, input, "
            "message_id)",
            "runtime",
        )
    decision = decide_tool(scopes, delegation.subject)
    problem = delegation_problem(delegation)
    if problem is not None and decision.decision != "BLOCKED":
        return _refusal(delegation.subject, problem, "runtime")
    return decision


async def _refused(gate: Gate, decision: Decision, event: AuditEvent) -> object:
    """Records a refusal, then raises it (the body of a refused call's handle)."""
    raise await gate.refuse(decision, event)


def _refusal(subject: str, reason: str, scope: str) -> Decision:
    return Decision(
        decision="BLOCKED",
        subject=subject,
        rule=None,
        rule_kind=None,
        scope=scope,
        policy_version="runtime",
        reason=reason,
    )


def _chat_request(args: Sequence[object]) -> ChatRequest | None:
    if len(args) != 1:
        return None
    if isinstance(args[0], ChatRequest):
        return args[0]
    try:
        return ChatRequest.model_validate(args[0])
    except ValidationError:
        return None


def _memory_user(args: Sequence[object]) -> str | None:
    user = getattr(args[0], "user", None) if len(args) == 1 else None
    return user if isinstance(user, str) else None


def _run_user(
    headers: dict[str, Any], approvals: ApprovalConfig | None, *, pinned: bool
) -> tuple[RunUser | None, str | None]:
    """The run's claimed user and, when it is not proven, why.

    A run started before runs pinned their governance (``pinned`` false) replays as it ran: its
    header then named the user in plain text, and nothing refused it.
    """
    payload = headers.get(USER_HEADER)
    if payload is None:
        return None, None
    if not pinned:
        try:
            legacy = workflow.payload_converter().from_payloads([payload], [str])[0]
        except Exception:
            legacy = None
        if isinstance(legacy, str):
            info = workflow.info()
            return RunUser(
                user=legacy,
                workflow_id=info.workflow_id,
                workflow_type=info.workflow_type,
                issued_at=info.workflow_start_time,
            ), None
    try:
        claim = workflow.payload_converter().from_payloads([payload], [RunUser])[0]
    except Exception as exc:  # a malformed header is a refusal, not a stuck workflow task
        return None, f"the {USER_HEADER} header is not a signed run user ({type(exc).__name__})"
    assert isinstance(claim, RunUser)
    info = workflow.info()
    if approvals is None and claim.signer is not None:
        return claim, (
            "this worker trusts no client to say who runs act for (add `clients:` to the "
            "approvals config, JamJetConfig(approvals=...))"
        )
    reason = verify_run_user(
        approvals or ApprovalConfig(),
        claim,
        workflow_id=info.workflow_id,
        workflow_type=info.workflow_type,
        started_at=info.workflow_start_time,
        parent_run_id=info.parent.run_id if info.parent is not None else None,
        continued_run_id=info.continued_run_id,
        attempt=info.attempt,
    )
    if reason is not None and not pinned:
        return None, None  # as it ran before the pin: an unproven user was no user
    return claim, reason


_Input = StartActivityInput | StartLocalActivityInput
_Start = Callable[[Any], workflow.ActivityHandle[object]]


def make_workflow_interceptor(
    base: Policy | None, audit: bool, approvals: ApprovalConfig | None, governance: str
) -> type[WorkflowInboundInterceptor]:
    """The inbound interceptor class for one plugin's config."""

    class _Outbound(WorkflowOutboundInterceptor):
        def __init__(self, next: WorkflowOutboundInterceptor, inbound: _Inbound) -> None:
            super().__init__(next)
            self._inbound = inbound

        def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[object]:
            return self._gated(input, self.next.start_activity)

        def start_local_activity(
            self, input: StartLocalActivityInput
        ) -> workflow.ActivityHandle[object]:
            return self._gated(input, self.next.start_local_activity)

        def _gated(self, input: _Input, start: _Start) -> workflow.ActivityHandle[object]:
            """Decide one activity (or local activity), then start it with ``start``."""
            gate = self._inbound.gate
            if gate is None:
                # An update or signal handler delivered with the run's first task runs before
                # the run's code has made the gate: its call waits for the gate, and is
                # decided like any other (scheduled undecided, the activity would refuse it).
                return after_precall(input.activity, "gate", self._once_gated(input, start))
            if is_reserved(input.activity):
                return self._internal(gate, input, start)
            if input.activity == CHAT_ACTIVITY:
                request = _chat_request(input.args)
                if request is not None:
                    input.args = [request]
            elif is_mcp_call(input.activity):
                call = mcp_call(input.args)
                if call is not None:
                    if gate.mcp.needs_listing(call, gate.scopes()):
                        # Decided on the server's annotations as this run lists them (once).
                        listing = self._mcp_listed(gate, call, input, start)
                        return after_precall(input.activity, "tool listing", listing)
                    input.args = [gate.mcp.stamp(call)]
            elif is_a2a_call(input.activity):
                delegation = a2a_call(input.args)
                if delegation is not None:
                    input.args = [delegation]
            decision, event = gate.decide(input.activity, input.args)
            if decision.decision == "WAITING_FOR_APPROVAL" and gate.approvals is not None:
                approved = self._approved(gate, gate.approvals, input, decision, event, start)
                return after_precall(input.activity, "approval", approved)
            if not decision.allowed:
                # Callers await the handle; recording the refusal, then raising it, there keeps
                # refusal and recording in one place for every path (agent, plain code).
                return after_precall(input.activity, "refusal", _refused(gate, decision, event))
            if active_scopes():
                cleared = self._run_cleared(gate, input, decision, event, start)
                return after_precall(input.activity, "budget", cleared)
            self._clear(gate, input, decision, event)
            return start(input)

        async def _mcp_listed(
            self, gate: Gate, call: McpCall, input: _Input, start: _Start
        ) -> object:
            try:
                await gate.mcp.ensure(call.server, list_options(input))
            except ActivityError as err:
                # Not decided, so not made: recorded as such, and the listing's failure (an
                # unknown alias, a server that does not start) is what the caller gets.
                cause = err.cause.message if isinstance(err.cause, ApplicationError) else err
                reason = f"the tools of MCP server '{call.server}' could not be listed: {cause}"
                _, event = gate.refusal(call.subject, input.args, reason[:500], "runtime")
                await gate.record([event])
                raise
            return await self._gated(input, start)

        async def _once_gated(self, input: _Input, start: _Start) -> object:
            inbound = self._inbound
            await workflow.wait_condition(lambda: inbound.gate is not None)
            return await self._gated(input, start)

        async def _approved(
            self,
            gate: Gate,
            book: ApprovalBook,
            input: _Input,
            decision: Decision,
            event: AuditEvent,
            start: _Start,
        ) -> object:
            named = _NAMED.get()
            shown = named() if named is not None else None
            action = input.activity
            call = mcp_call(input.args) if is_mcp_call(input.activity) else None
            if call is not None:
                # Approvers see the tool (ALIAS.TOOL) and its arguments by name.
                action, shown = call.subject, dict(call.arguments)
            delegation = a2a_call(input.args) if is_a2a_call(input.activity) else None
            if delegation is not None:
                # Approvers see the delegation (a2a:ALIAS.SKILL) and what would be sent.
                action, shown = delegation.subject, {"input": delegation.input}
            memory = input.activity in ENGRAM_ACTIVITIES
            if memory:
                # Approvers see the call (engram.forget...) and whose memory, never the memory.
                action = decision.subject
                shown = {"activity": input.activity, "user": _memory_user(input.args)}
            if shown is None:
                shown = {"args": to_jsonable_python(list(input.args), fallback=repr)}
            approval = await book.request(action, shown, None)
            approved = decision.model_copy(
                update={
                    "decision": "ALLOWED",
                    "reason": f"approved by {', '.join(approval.approved_by)} "
                    f"({approval.approval_id})",
                }
            )
            if memory:  # spends nothing: no budget to set aside
                self._clear(gate, input, approved, event)
                return await start(input)
            return await self._run_cleared(gate, input, approved, event, start)

        def _internal(
            self, gate: Gate, input: _Input, start: _Start
        ) -> workflow.ActivityHandle[object]:
            """The runtime's own activities: only the runtime schedules them, and memory
            calls only for the run's own user."""
            reason: str | None = None
            if input.activity not in INTERNAL_ACTIVITIES or not scheduled_by_runtime():
                reason = (
                    f"'{input.activity}' is a runtime-internal activity: only the JamJet "
                    "runtime schedules it (not a pipeline node or workflow code)"
                )
            elif input.activity in ENGRAM_ACTIVITIES:
                owner = _memory_user(input.args)
                if gate.user is None:
                    reason = (
                        "memory calls need the run's proven user: start the run with "
                        "acting_as(user, signer=...)"
                    )
                elif not same_principal(owner, gate.user):
                    reason = f"memory of '{owner}' is not the memory of this run's user"
            if reason is not None:
                decision, event = gate.refusal(input.activity, input.args, reason, "runtime")
                return after_precall(input.activity, "refusal", _refused(gate, decision, event))
            input.headers = {
                **input.headers,
                INTERNAL_HEADER: workflow.payload_converter().to_payloads([gate.governance])[0],
            }
            if input.activity not in ENGRAM_ACTIVITIES:
                return start(input)
            # Memory calls are decided like tools, as engram.read / engram.write /
            # engram.forget; the activity records the decision and what was read or written.
            decision, event = gate.decide_memory(input.activity, input.args)
            book = gate.approvals
            if decision.decision == "WAITING_FOR_APPROVAL" and book is not None:
                approved = self._approved(gate, book, input, decision, event, start)
                return after_precall(input.activity, "approval", approved)
            if not decision.allowed:
                return after_precall(input.activity, "refusal", _refused(gate, decision, event))
            self._clear(gate, input, decision, event)
            return start(input)

        async def _within_budget(
            self, gate: Gate, input: _Input, decision: Decision, event: AuditEvent, start: _Start
        ) -> object:
            budgets = active_scopes()
            request, price, checks = await gate.budget.check(input.args[0], budgets)
            halted = [(scope, check) for scope, check in checks if not check.allowed]
            if halted:
                scope, check = halted[0]
                refusal = gate.budget_event(check, scope.name, allowed=False)
                watch = observer()  # tracing: the halt as a span event (None when off)
                if watch is not None:
                    watch.budget_halt(check, scope.name, refusal.id)
                await gate.record([refusal])
                raise BudgetExceededError(check, scope=scope.name, event_id=refusal.id)
            input.args = [request]
            allowed = checks[-1][1]
            self._clear(gate, input, decision, event, budget=allowed)
            # The call's worst case is held while it runs, so a call or task decided meanwhile
            # cannot count the same money; the real cost replaces it when the answer is in.
            held = Budget(max_cost=allowed.projected.cost, max_tokens=allowed.projected.tokens)
            hold(budgets, held)
            try:
                result = await start(input)
            finally:
                settle_reservation(budgets, held, ())
            assert isinstance(result, ChatResult)
            gate.budget.charge(result, price, budgets)
            return result

        async def _run_cleared(
            self, gate: Gate, input: _Input, decision: Decision, event: AuditEvent, start: _Start
        ) -> object:
            scopes = active_scopes()
            if input.activity == CHAT_ACTIVITY and scopes:
                return await self._within_budget(gate, input, decision, event, start)
            if not scopes:
                self._clear(gate, input, decision, event)
                return await start(input)
            # A task under a budget may call models itself: what is left is set aside for it
            # while it runs, and what it spent comes back with its result (or failure). Tasks
            # under one budget take turns with it, so they never spend the same money twice.
            keeper = gate.budget
            await workflow.wait_condition(lambda: keeper.reserved == 0)
            # Nothing awaited from here to the reservation: no model call decides in between.
            reserved = carve_child_budget()
            assert reserved is not None
            keeper.reserved += 1
            wanted = input.ret_type
            input.ret_type = SpentResult
            self._clear(gate, input, decision, event, allowance=reserved)
            try:
                outcome = await start(input)
            except ActivityError as err:
                cause = err.cause
                if isinstance(cause, ApplicationError):
                    spend = spend_of(cause.details)
                    settle_reservation(scopes, reserved, spend.calls if spend else ())
                # Timed out or cancelled: what it spent is unknown, the reservation stays spent.
                raise
            finally:
                keeper.reserved -= 1
            assert isinstance(outcome, SpentResult)
            settle_reservation(scopes, reserved, outcome.spend.calls)
            if wanted is None:
                return outcome.result
            converter = workflow.payload_converter()
            return converter.from_payloads(converter.to_payloads([outcome.result]), [wanted])[0]

        async def start_child_workflow(
            self, input: StartChildWorkflowInput
        ) -> workflow.ChildWorkflowHandle[object, object]:
            gate = self._inbound.gate
            child = carve_child_budget()
            headers = dict(input.headers)
            if child is not None:
                headers[BUDGET_HEADER] = workflow.payload_converter().to_payloads([child])[0]
            if gate is not None and gate.user is not None:
                headers[USER_HEADER] = _inherited(gate.user)
            input.headers = headers
            return await super().start_child_workflow(input)

        def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
            gate = self._inbound.gate
            headers = dict(input.headers)
            left = remaining_budget()
            if left is not None:
                headers[BUDGET_HEADER] = workflow.payload_converter().to_payloads([left])[0]
            if gate is not None and gate.user is not None:
                headers[USER_HEADER] = _inherited(gate.user)
            input.headers = headers
            super().continue_as_new(input)

        @staticmethod
        def _clear(
            gate: Gate,
            input: _Input,
            decision: Decision,
            event: AuditEvent,
            *,
            budget: BudgetDecision | None = None,
            allowance: Budget | None = None,
        ) -> None:
            clearance = Clearance(
                decision=decision,
                kind=event.kind,
                event_id=event.id,
                decided_at=event.at,
                actor=event.actor,
                args_digest=str(event.data["args_digest"]),
                budget=budget,
                governance=gate.governance,
                model_scopes=gate.model_scopes(),
                allowance=allowance,
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
            # First command of every run: pins this worker's governance in history (see
            # governance_id). Runs from before the pin replay without it.
            pinned = workflow.patched(governance)
            claim, problem = _run_user(dict(input.headers), approvals, pinned=pinned)
            user = claim.user if claim is not None and problem is None else None
            # Decided on the first task, beside the pin (their markers share one search
            # attribute update): a worker whose runner records run.closed (every plugin
            # worker, and on replay whatever the run's history says).
            closed_by_worker = (
                audit and pinned and closing.armed() and workflow.patched(CLOSED_BY_WORKER_PATCH)
            )
            self.gate = Gate(
                base,
                user,
                audit,
                approvals,
                governance,
                pinned=pinned,
                closed_by_worker=closed_by_worker,
            )
            if self.gate.approvals is not None:
                self.gate.approvals.install()
            _GATE.set(self.gate)
            budget = None
            if BUDGET_HEADER in input.headers:
                budget = workflow.payload_converter().from_payloads(
                    [input.headers[BUDGET_HEADER]], [Budget]
                )[0]
            with budget_scope("run", budget) as run_scope:
                if run_scope is not None:
                    install_spend_query(run_scope)  # what an A2A server reports as spent
                if not pinned:
                    return await super().execute_workflow(input)
                try:
                    if problem is not None:
                        await self._refuse_identity(self.gate, claim, problem)
                    result = await super().execute_workflow(input)
                except (FailureError, JamJetError) as err:
                    # What fails the run (not a workflow task failure, which Temporal retries;
                    # not continue-as-new or cancellation).
                    outcome = "cancelled" if isinstance(err, CancelledError) else "failed"
                    await self.gate.close(_closed(self.gate, outcome, err))
                    raise
                await self.gate.close(_closed(self.gate, "completed", None))
                return result

        @staticmethod
        async def _refuse_identity(gate: Gate, claim: RunUser | None, problem: str) -> NoReturn:
            info = workflow.info()
            subject = claim.user if claim is not None else "?"
            event = AuditEvent(
                id=event_id(info.workflow_id, info.run_id, "identity.refused"),
                run_id=info.workflow_id,
                workflow_run_id=info.run_id,
                kind="identity.refused",
                at=workflow.now(),
                actor={**gate.actor(), "claimed_user": subject},
                data={
                    "claimed_user": subject,
                    "signer": claim.signer if claim is not None else None,
                    "reason": problem,
                },
            )
            await gate.record([event])
            refusal = IdentityError(
                subject, problem, scope="identity", event_id=event.id if audit else None
            )
            # Final, never retried: a retry (attempt 2 on) accepts the start's signed claim
            # without the freshness check, so a refused claim must not get a second attempt.
            raise ApplicationError(str(refusal), type="IdentityError", non_retryable=True)

    return _Inbound


def _closed(gate: Gate, outcome: str, error: BaseException | None) -> AuditEvent:
    """The event that closes a run's trail (the audit store checkpoints its chain on it)."""
    info = workflow.info()
    data: dict[str, JsonValue] = {"outcome": outcome}
    if error is not None:
        data["error"] = f"{type(error).__name__}: {error}"[:500]
    return AuditEvent(
        id=event_id(info.workflow_id, info.run_id, RUN_CLOSED),
        run_id=info.workflow_id,
        workflow_run_id=info.run_id,
        kind=RUN_CLOSED,
        at=workflow.now(),
        actor=gate.actor(),
        data=data,
    )


def _inherited(user: str) -> Any:
    info = workflow.info()
    claim = RunUser(
        user=user,
        workflow_id=info.workflow_id,
        workflow_type=info.workflow_type,
        issued_at=workflow.now(),
        from_run_id=info.run_id,
    )
    return workflow.payload_converter().to_payloads([claim])[0]
