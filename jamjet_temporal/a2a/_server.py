"""Serving workflows as an A2A agent, durably: each A2A task *is* a Temporal workflow (client side).

``A2AServer`` answers the A2A protocol (1.0, JSON-RPC, streaming and not) with the ``a2a-sdk``
server side: its card and JSON-RPC routes, its request-handler interface, its errors. What the
SDK keeps in memory (``DefaultRequestHandler``: a task store and the running agents' event
queues) is replaced by Temporal:

* ``message/send`` and ``message/stream`` start the skill's workflow with the task id as its
  workflow id. The id derives from the message id (and the verified caller): a message sent
  again (a caller retrying after a lost answer) finds the same workflow, running or closed,
  and answers with the same task; nothing runs twice.
* ``tasks/get`` reads the run (Temporal's description, its result or failure), ``tasks/cancel``
  cancels it, ``tasks/subscribe`` and the stream follow it; ``tasks/list`` lists them.
* A run waiting for an approval (``jamjet.approval.pending``) is ``auth-required``, its status
  message naming the request (and ``jamjet.dev/approval`` in its metadata); a budget halt or
  any failure is ``failed``; a cancelled run ``canceled``.

So the server holds nothing a restart loses: kill it mid-task, start it again, and the task is
where Temporal has it (its worker, in this process or another, runs the workflow on).

Identity (``trusted_callers``): every JSON-RPC request must carry a caller token (``_token``)
for this agent's URL from a trusted caller; anything else is refused with HTTP 401 and an RFC
6750 ``WWW-Authenticate`` error naming the reason, recorded in the audit trail
(``a2a.identity``, ``REFUSED``), as is each accepted task (``ACCEPTED``: caller, user, token).
A caller sees (``tasks/get``, ``list``, ``cancel``) only its own tasks. The card advertises the
scheme (``securitySchemes``: HTTP bearer, JWT).

Budget: a request's ``jamjet.dev/budget`` metadata (``{max_cost, max_tokens}``), capped by the
server's own per-task caps, is the run's budget (it halts before crossing it, like any budgeted
run); the final task's metadata reports what the run spent (``jamjet.dev/spend``: the run's
``jamjet.budget.spent`` query), or, when it cannot be asked, the whole budget as spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from pydantic import JsonValue, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ApplicationError,
    FailureError,
    WorkflowAlreadyStartedError,
)
from temporalio.service import RPCError, RPCStatusCode

from jamjet_temporal._shared._extras import missing_extra
from jamjet_temporal._shared._wire import (
    A2A_APPROVAL_META,
    A2A_BUDGET_META,
    A2A_SPEND_META,
    A2A_TASK_MEMO,
    BUDGET_QUERY,
    PENDING_ATTRIBUTE,
    PENDING_QUERY,
)
from jamjet_temporal.a2a._activities import parts_value, plain_value
from jamjet_temporal.a2a._skills import InputProblem, ServedSkill, served_skill
from jamjet_temporal.a2a._token import CallerRefused, TrustedCallers, VerifiedCaller
from jamjet_temporal.audit._types import AuditEvent, event_id
from jamjet_temporal.budget._ledger import Budget
from jamjet_temporal.errors import ConfigError

try:
    import uvicorn
    from a2a.server.context import ServerCallContext
    from a2a.server.events import Event
    from a2a.server.request_handlers import RequestHandler, validate_request_params
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from a2a.server.routes.common import DefaultServerCallContextBuilder
    from a2a.types.a2a_pb2 import (
        AgentCapabilities,
        AgentCard,
        AgentInterface,
        AgentSkill,
        Artifact,
        CancelTaskRequest,
        DeleteTaskPushNotificationConfigRequest,
        GetExtendedAgentCardRequest,
        GetTaskPushNotificationConfigRequest,
        GetTaskRequest,
        HTTPAuthSecurityScheme,
        ListTaskPushNotificationConfigsRequest,
        ListTaskPushNotificationConfigsResponse,
        ListTasksRequest,
        ListTasksResponse,
        Message,
        Part,
        Role,
        SecurityRequirement,
        SecurityScheme,
        SendMessageRequest,
        StringList,
        SubscribeToTaskRequest,
        Task,
        TaskArtifactUpdateEvent,
        TaskPushNotificationConfig,
        TaskState,
        TaskStatus,
        TaskStatusUpdateEvent,
    )
    from a2a.utils.errors import (
        ExtendedAgentCardNotConfiguredError,
        InvalidParamsError,
        PushNotificationNotSupportedError,
        TaskNotCancelableError,
        TaskNotFoundError,
        UnsupportedOperationError,
    )
    from a2a.utils.task import apply_history_length, validate_history_length
    from google.protobuf import json_format
    from google.protobuf.struct_pb2 import Value
    from starlette.applications import Starlette
    from starlette.datastructures import Headers
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send
except ImportError as err:
    raise missing_extra("a2a", err) from err

if TYPE_CHECKING:
    from jamjet_temporal.approvals._identity import SigningIdentity

__all__ = ["A2AServer", "task_id_for"]

_logger = logging.getLogger("jamjet_temporal.a2a.server")

#: Where a verified caller is kept in the ASGI scope (and then the call context's state).
_CALLER: Final = "jamjet.a2a.caller"
_TERMINAL: Final = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
    }
)
_INTERRUPTED: Final = frozenset(
    {TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED}
)
#: How a followed run is polled: first interval, growth, longest interval (seconds).
_FOLLOW: Final = (0.1, 1.5, 1.0)
#: How long one run may take to answer a query (a run with no worker never does).
_QUERY_TIMEOUT: Final = timedelta(seconds=3)
#: How long ``tasks/cancel`` waits for the run to end before answering.
_CANCEL_WAIT: Final = 5.0
#: Final tasks kept in memory (they never change; a restart just reads them again).
_CACHE_SIZE: Final = 1024
_SCHEME: Final = "jamjet-caller"


def task_id_for(caller: str | None, message_id: str) -> str:
    """The task (and workflow) id of the message ``message_id`` from ``caller``: the same
    message from the same caller is the same task."""
    digest = hashlib.sha256(f"{caller or ''}\x1f{message_id}".encode()).hexdigest()
    return f"a2a-{digest[:32]}"


@dataclass
class _Run:
    """What a task is now, read from its workflow."""

    task_id: str
    context_id: str
    memo: dict[str, Any]
    state: int
    text: str | None = None
    result: JsonValue = None
    has_result: bool = False
    spend: dict[str, JsonValue] | None = None
    approval: dict[str, JsonValue] | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def final(self) -> bool:
        return self.state in _TERMINAL


class A2AServer:
    """Serve workflows (and YAML pipelines) as one A2A agent, each task a Temporal workflow.

    Example::

        client = await Client.connect("localhost:7233", plugins=[JamJetPlugin(config)])
        server = A2AServer(
            client,
            [research],                                 # @workflow functions, pipelines, ...
            url="http://127.0.0.1:9101",
            task_queue="research-agent",                # a worker runs the workflows there
            trusted_callers={"coordinator": "ed25519:..."},
        )
        await server.serve(port=9101)                   # or: uvicorn.run(server.app(), ...)

    Args:
        client: A Temporal client with ``JamJetPlugin`` (budgets and the run's user travel
            through its interceptor).
        skills: What is served: ``@workflow`` functions and ``@workflow.defn`` classes, loaded
            pipelines (``PipelineSpec``, or ``pipeline_skill(...)`` with their tools), or
            ``ServedSkill``s. A message's ``metadata.skill`` picks one (optional with one).
        url: The agent's public URL: its card points there, and caller tokens must be for it.
        task_queue: Where the tasks' workflows run (a worker with the skills polls it).
        name: The card's name (default: the only skill's name, or ``jamjet-agent``).
        description: The card's description.
        version: The card's version.
        trusted_callers: Caller name to Ed25519 public key (``ed25519:...``): only these
            may call, each with a token it signed for ``url``.
        allow_anonymous: Serve without caller identity (no ``trusted_callers``): anyone who
            reaches the URL may start tasks. Off by default: fail closed.
        max_cost: The most one task may spend, in USD, whatever the caller's slice says
            (``max_tokens`` likewise in tokens); None: the caller's slice (if any) alone.
        audit_store: Where identity decisions are recorded (the workers' audit store); None:
            nowhere.
        audit_key: The audit signing key file (default ``$JAMJET_AUDIT_KEY`` or
            ``~/.jamjet/audit-signing.key``).
        signer: A client key the workers' approvals config trusts to say whom runs act for:
            with it, each run acts for the user the caller's token names (its approvals and
            memory are that user's); without it, the user is only recorded.
        execution_timeout: How long one task's run may take (Temporal's execution timeout).

    Raises:
        ConfigError: No skill, two skills with one id, a skill that cannot be served, no
            trusted callers without ``allow_anonymous``, or a client without ``JamJetPlugin``.
    """

    def __init__(
        self,
        client: Client,
        skills: Sequence[object],
        *,
        url: str,
        task_queue: str,
        name: str | None = None,
        description: str | None = None,
        version: str = "1.0.0",
        trusted_callers: TrustedCallers | Mapping[str, str] | None = None,
        allow_anonymous: bool = False,
        max_cost: float | str | Decimal | None = None,
        max_tokens: int | None = None,
        audit_store: str | None = None,
        audit_key: str | None = None,
        signer: SigningIdentity | None = None,
        execution_timeout: timedelta | None = None,
    ) -> None:
        from jamjet_temporal.plugin._plugin import JamJetPlugin

        served = [served_skill(skill) for skill in skills]
        if not served:
            raise ConfigError("an A2A server needs at least one skill (a workflow or pipeline)")
        ids = [skill.id for skill in served]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"two served skills share an id: {ids}")
        if not any(isinstance(p, JamJetPlugin) for p in client.config().get("plugins", ())):
            raise ConfigError(
                "A2AServer needs a client with JamJetPlugin: a task's budget and user travel "
                "in the headers its interceptor adds"
            )
        if trusted_callers is None and not allow_anonymous:
            raise ConfigError(
                "an A2A server must know whom it serves: give trusted_callers={name: public "
                "key} (or allow_anonymous=True to let anyone who reaches it start tasks)"
            )
        self.client = client
        self.skills = {skill.id: skill for skill in served}
        self.url = url.rstrip("/")
        self.task_queue = task_queue
        self.name = name or (served[0].name if len(served) == 1 else "jamjet-agent")
        self.description = description or "; ".join(s.description for s in served)
        self.version = version
        self.trusted = (
            trusted_callers
            if isinstance(trusted_callers, TrustedCallers) or trusted_callers is None
            else TrustedCallers(trusted_callers)
        )
        self.caps = Budget(
            max_cost=None if max_cost is None else Decimal(str(max_cost)), max_tokens=max_tokens
        )
        self.signer = signer
        self.execution_timeout = execution_timeout
        self._sink: Any = None
        if audit_store:
            # The plugin's audit sink (chain, checkpoints, redaction); I/O side.
            from jamjet_temporal.gate._activities import AuditSink

            self._sink = AuditSink(audit_store, audit_key)
        self._final: OrderedDict[str, _Run] = OrderedDict()
        self.card = self._card()
        self.handler = TemporalRequestHandler(self)

    # -- the card ---------------------------------------------------------------------------

    def _card(self) -> AgentCard:
        card = AgentCard(
            name=self.name,
            description=self.description,
            version=self.version,
            supported_interfaces=[
                AgentInterface(
                    url=f"{self.url}/", protocol_binding="JSONRPC", protocol_version="1.0"
                )
            ],
            capabilities=AgentCapabilities(streaming=True, push_notifications=False),
            default_input_modes=["application/json", "text/plain"],
            default_output_modes=["application/json", "text/plain"],
            skills=[
                AgentSkill(
                    id=skill.id,
                    name=skill.name,
                    description=skill.description,
                    tags=list(skill.tags) or [skill.kind],
                )
                for skill in self.skills.values()
            ],
        )
        if self.trusted is not None:
            card.security_schemes[_SCHEME].CopyFrom(
                SecurityScheme(
                    http_auth_security_scheme=HTTPAuthSecurityScheme(
                        scheme="bearer",
                        bearer_format="JWT",
                        description=(
                            "A short-lived JWT signed EdDSA (Ed25519) by a trusted caller for "
                            f"each delegation: aud {self.url}, sub the calling agent, optional "
                            "user claim (the user its run acts for); at most 15 minutes long."
                        ),
                    )
                )
            )
            card.security_requirements.append(
                SecurityRequirement(schemes={_SCHEME: StringList(list=[])})
            )
        return card

    # -- serving ----------------------------------------------------------------------------

    def app(self) -> Starlette:
        """The ASGI application: the card at ``/.well-known/agent-card.json``, JSON-RPC at
        ``/`` (behind the caller check when callers are trusted)."""
        routes = [
            *create_agent_card_routes(self.card),
            *create_jsonrpc_routes(self.handler, "/", context_builder=_ContextBuilder()),
        ]
        middleware = [Middleware(_CallerCheck, server=self)] if self.trusted is not None else []
        return Starlette(routes=routes, middleware=middleware)

    async def serve(self, *, host: str = "127.0.0.1", port: int) -> None:
        """Serve over HTTP until stopped (SIGINT, SIGTERM or cancellation)."""
        config = uvicorn.Config(self.app(), host=host, port=port, log_level="warning")
        try:
            await uvicorn.Server(config).serve()
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the audit store, if one was opened."""
        if self._sink is not None:
            await self._sink.close()

    # -- audit ------------------------------------------------------------------------------

    async def record(self, event: AuditEvent) -> None:
        """Append one event to the server's audit trail (if it has one)."""
        if self._sink is not None:
            await self._sink.append([event])

    async def record_refusal(self, refused: CallerRefused, presented: str | None) -> None:
        """Record a refused request (once per token and reason a minute: a flood of bad
        requests does not flood the trail)."""
        now = datetime.now(UTC)
        token = hashlib.sha256((presented or "").encode()).hexdigest()[:16]
        minute = now.strftime("%Y%m%dT%H%M")
        event = AuditEvent(
            id=event_id(self.url, "a2a.identity.refused", token, refused.reason, minute),
            run_id=f"a2a-server:{self.name}",
            workflow_run_id="-",
            kind="a2a.identity",
            at=now,
            actor={"agent": self.name, "caller": refused.caller},
            data={
                "decision": "REFUSED",
                "reason": refused.reason,
                "error": refused.error,
                "caller": refused.caller,
                "audience": self.url,
                "token_digest": f"sha256:{token}" if presented else None,
            },
        )
        try:
            await self.record(event)
        except Exception:  # the refusal stands even when it cannot be recorded
            _logger.exception("a2a: could not record a refused caller")

    # -- tasks ------------------------------------------------------------------------------

    def skill_for(self, message: Message) -> ServedSkill:
        """The skill a message asks for (its ``metadata.skill``; the only one by default)."""
        wanted = plain_value(json_format.MessageToDict(message.metadata)).get("skill")  # type: ignore[union-attr]
        if wanted is None:
            if len(self.skills) == 1:
                return next(iter(self.skills.values()))
            raise InvalidParamsError(
                message=f"name a skill in the message's metadata.skill: {', '.join(self.skills)}"
            )
        skill = self.skills.get(str(wanted))
        if skill is None:
            raise InvalidParamsError(
                message=f"no skill {wanted!r}; this agent's skills: {', '.join(self.skills)}"
            )
        return skill

    def budget_for(self, params: SendMessageRequest) -> Budget | None:
        """The run's budget: the caller's slice (request metadata), within the server's caps."""
        given = plain_value(json_format.MessageToDict(params.metadata)).get(A2A_BUDGET_META)  # type: ignore[union-attr]
        asked: Budget | None = None
        if given is not None:
            try:
                asked = Budget.model_validate(given)
            except ValidationError as err:
                raise InvalidParamsError(
                    message=f"metadata {A2A_BUDGET_META} is not a budget "
                    f"({{max_cost, max_tokens}}): {err.errors(include_url=False)[0]['msg']}"
                ) from None
        caps = self.caps
        if asked is None and caps.max_cost is None and caps.max_tokens is None:
            return None
        return Budget(
            max_cost=_least(asked.max_cost if asked else None, caps.max_cost),
            max_tokens=_least(asked.max_tokens if asked else None, caps.max_tokens),
        )

    async def start(self, params: SendMessageRequest, caller: VerifiedCaller | None) -> str:
        """Start the message's task (or find it, for a message sent again): its id."""
        message = params.message
        if not message.message_id:
            raise InvalidParamsError(message="the message has no messageId")
        owner = caller.agent if caller is not None else None
        if message.task_id:
            # A message to an existing task: only the task's own message, sent again.
            run = await self.snapshot(message.task_id, owner)
            if run.memo.get("message_id") != message.message_id:
                raise UnsupportedOperationError(
                    message="this agent's tasks each take one message; answering a task "
                    "(input-required) is not supported: send a new message"
                )
            return run.task_id
        skill = self.skill_for(message)
        try:
            args = skill.arguments(_input(message))
        except InputProblem as err:
            raise InvalidParamsError(message=str(err)) from None
        budget = self.budget_for(params)
        task_id = task_id_for(owner, message.message_id)
        context_id = message.context_id or f"ctx-{uuid.uuid4().hex}"
        memo: dict[str, Any] = {
            "task_id": task_id,
            "context_id": context_id,
            "skill": skill.id,
            "message_id": message.message_id,
            "caller": owner,
            "user": caller.user if caller is not None else None,
            "budget": None if budget is None else budget.model_dump(mode="json"),
            "message": json_format.MessageToDict(message),
            "agent": self.name,
        }
        workflow_run_id = "-"
        with self._governed(budget, caller):
            try:
                handle = await self.client.start_workflow(
                    skill.workflow,
                    args=args,
                    id=task_id,
                    task_queue=self.task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    memo={A2A_TASK_MEMO: memo},
                    execution_timeout=self.execution_timeout,
                    static_summary=f"A2A task: skill {skill.id} for {owner or 'anyone'}",
                    static_details=f"message {message.message_id}",
                )
                workflow_run_id = handle.result_run_id or "-"
            except WorkflowAlreadyStartedError:
                pass  # the same message again, its task already closed: the same task
        await self._record_task(task_id, workflow_run_id, skill, message, caller, budget)
        return task_id

    @contextlib.contextmanager
    def _governed(self, budget: Budget | None, caller: VerifiedCaller | None) -> Any:
        from jamjet_temporal.plugin._interceptor import acting_as, run_budget

        with contextlib.ExitStack() as stack:
            if budget is not None:
                stack.enter_context(
                    run_budget(max_cost=budget.max_cost, max_tokens=budget.max_tokens)
                )
            if self.signer is not None and caller is not None and caller.user:
                stack.enter_context(acting_as(caller.user, signer=self.signer))
            yield

    async def _record_task(
        self,
        task_id: str,
        workflow_run_id: str,
        skill: ServedSkill,
        message: Message,
        caller: VerifiedCaller | None,
        budget: Budget | None,
    ) -> None:
        data: dict[str, JsonValue] = {
            "decision": "ACCEPTED" if caller is not None else "ANONYMOUS",
            "skill": skill.id,
            "workflow": skill.workflow,
            "message_id": message.message_id,
            "audience": self.url,
            "budget": None if budget is None else budget.model_dump(mode="json"),
        }
        if caller is not None:
            data.update(
                caller=caller.agent,
                user=caller.user,
                token_id=caller.token_id,
                key_id=caller.key_id,
                token_expires_at=caller.expires_at.isoformat(),
            )
        await self.record(
            AuditEvent(
                id=event_id(task_id, "a2a.identity"),
                run_id=task_id,
                workflow_run_id=workflow_run_id,
                kind="a2a.identity",
                at=datetime.now(UTC),
                actor={"agent": self.name, "caller": caller.agent if caller else None},
                data=data,
            )
        )

    async def snapshot(self, task_id: str, owner: str | None) -> _Run:
        """What the task is now (``TaskNotFoundError`` when it is not this caller's task of
        this agent)."""
        cached = self._final.get(task_id)
        if cached is not None:
            if cached.memo.get("caller") != owner:
                raise TaskNotFoundError
            self._final.move_to_end(task_id)
            return cached
        handle: WorkflowHandle[Any, Any] = self.client.get_workflow_handle(task_id)
        try:
            desc = await handle.describe()
        except RPCError as err:
            if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise TaskNotFoundError from None
            raise
        memo = await desc.memo_value(A2A_TASK_MEMO, None)
        if (
            not isinstance(memo, dict)
            or memo.get("agent") != self.name
            or desc.task_queue != self.task_queue
        ):
            raise TaskNotFoundError  # another workflow (or another agent's task): not shown
        if memo.get("caller") != owner:
            raise TaskNotFoundError
        run = await self._read(handle, desc, memo)
        if run.final and (run.spend is None or not run.spend.get("estimated")):
            self._final[task_id] = run
            while len(self._final) > _CACHE_SIZE:
                self._final.popitem(last=False)
        return run

    async def _read(
        self,
        handle: WorkflowHandle[Any, Any],
        desc: WorkflowExecutionDescription,
        memo: dict[str, Any],
    ) -> _Run:
        task_id = str(memo["task_id"])
        run = _Run(
            task_id=task_id, context_id=str(memo.get("context_id") or ""), memo=memo, state=0
        )
        status = desc.status
        if status == WorkflowExecutionStatus.RUNNING:
            run.state = TaskState.TASK_STATE_WORKING
            if desc.typed_search_attributes.get(PENDING_ATTRIBUTE):
                await self._approval(handle, run)
            return run
        run.at = desc.close_time or run.at
        skill = self.skills.get(str(memo.get("skill")))
        if status == WorkflowExecutionStatus.COMPLETED:
            try:
                result = await handle.result()
            except WorkflowFailureError as err:  # a later run of a chain failed
                run.state, run.text = TaskState.TASK_STATE_FAILED, _failure_text(err)
            else:
                run.state = TaskState.TASK_STATE_COMPLETED
                run.result = skill.output(result) if skill is not None else result
                run.has_result = True
        elif status == WorkflowExecutionStatus.CANCELED:
            run.state, run.text = TaskState.TASK_STATE_CANCELED, "the task's run was cancelled"
        elif status == WorkflowExecutionStatus.TERMINATED:
            run.state, run.text = TaskState.TASK_STATE_FAILED, "the task's run was terminated"
        elif status == WorkflowExecutionStatus.TIMED_OUT:
            run.state, run.text = TaskState.TASK_STATE_FAILED, "the task's run timed out"
        else:
            run.state = TaskState.TASK_STATE_FAILED
            try:
                await handle.result()
            except WorkflowFailureError as err:
                run.text = _failure_text(err)
            except Exception as err:  # the failure could not be read: say so
                run.text = f"the task's run failed ({type(err).__name__})"
            else:
                run.text = "the task's run failed"
        if memo.get("budget") is not None:
            run.spend = await self._spend(handle, memo)
        return run

    async def _approval(self, handle: WorkflowHandle[Any, Any], run: _Run) -> None:
        try:
            pending = await handle.query(PENDING_QUERY, rpc_timeout=_QUERY_TIMEOUT)
        except Exception:  # no worker to answer yet: it works on, as far as we can tell
            return
        if not isinstance(pending, list) or not pending:
            return
        first = pending[0]
        if not isinstance(first, dict):
            return
        action = first.get("action")
        eligible = first.get("eligible") or []
        approval = {
            "approval_id": first.get("approval_id"),
            "action": action,
            "eligible": eligible,
            "required": first.get("required"),
            "approved_by": first.get("approved_by") or [],
            "deadline": first.get("deadline"),
            "run_id": run.task_id,
            "waiting": len(pending),
        }
        run.state = TaskState.TASK_STATE_AUTH_REQUIRED
        run.approval = approval
        run.text = (
            f"waiting for approval of '{action}' ({first.get('approval_id')}): "
            f"{first.get('required')} of {', '.join(map(str, eligible)) or 'the approvers'} "
            f"must approve (jamjet approve {run.task_id} --key KEY --decision approved)"
        )

    async def _spend(
        self, handle: WorkflowHandle[Any, Any], memo: dict[str, Any]
    ) -> dict[str, JsonValue]:
        try:
            spent = await handle.query(BUDGET_QUERY, rpc_timeout=_QUERY_TIMEOUT)
            return {
                "cost": str(spent["spent_cost"]),
                "tokens": int(spent["spent_tokens"]),
                "budget": memo["budget"],
                "estimated": False,
            }
        except Exception as err:
            # Nobody can say what the run spent (no worker answers): the whole budget counts
            # as spent, so the caller's cap never understates.
            _logger.warning("a2a: run %s did not answer its spend: %s", memo.get("task_id"), err)
            budget = memo["budget"] or {}
            return {
                "cost": str(budget.get("max_cost") or "0"),
                "tokens": int(budget.get("max_tokens") or 0),
                "budget": memo["budget"],
                "estimated": True,
            }

    def task(self, run: _Run) -> Task:
        """The A2A task a run is."""
        task = Task(id=run.task_id, context_id=run.context_id, status=_status(run))
        if run.has_result:
            task.artifacts.append(_artifact(run))
        message = run.memo.get("message")
        if isinstance(message, dict):
            task.history.append(
                json_format.ParseDict(message, Message(), ignore_unknown_fields=True)
            )
        if run.spend is not None:
            task.metadata.update({A2A_SPEND_META: run.spend})
        return task

    async def cancel(self, task_id: str, owner: str | None) -> Task:
        run = await self.snapshot(task_id, owner)
        if run.final:
            raise TaskNotCancelableError
        await self.client.get_workflow_handle(task_id).cancel()
        deadline = asyncio.get_running_loop().time() + _CANCEL_WAIT
        while not run.final and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
            run = await self.snapshot(task_id, owner)
        return self.task(run)

    async def follow(self, task_id: str, owner: str | None) -> AsyncGenerator[Event, None]:
        """The task's events until it ends or stops for something (input, an approval): the
        task first, then status (and, at the end, artifact) updates as they happen.

        The run is read at growing intervals (for what it waits for) and as soon as it closes
        (Temporal's long poll for its result wakes the loop).
        """
        closed = asyncio.ensure_future(self._closed(task_id))
        try:
            async for event in self._follow(task_id, owner, closed):
                yield event
        finally:
            closed.cancel()

    async def _closed(self, task_id: str) -> None:
        with contextlib.suppress(Exception):
            await self.client.get_workflow_handle(task_id).result()

    async def _follow(
        self, task_id: str, owner: str | None, closed: asyncio.Future[None]
    ) -> AsyncGenerator[Event, None]:
        delay, growth, longest = _FOLLOW
        last: tuple[int, str | None] | None = None
        while True:
            run = await self.snapshot(task_id, owner)
            task = self.task(run)
            key = (run.state, run.text)
            if last is None:
                yield task
            elif key != last:
                if run.final:
                    for artifact in task.artifacts:
                        yield TaskArtifactUpdateEvent(
                            task_id=task.id,
                            context_id=task.context_id,
                            artifact=artifact,
                            last_chunk=True,
                        )
                yield TaskStatusUpdateEvent(
                    task_id=task.id,
                    context_id=task.context_id,
                    status=task.status,
                    metadata=task.metadata if task.HasField("metadata") else None,
                )
            last = key
            if run.final or run.state in _INTERRUPTED:
                return
            await asyncio.wait([closed], timeout=delay)
            delay = min(delay * growth, longest)

    async def list(self, params: ListTasksRequest, owner: str | None) -> ListTasksResponse:
        size = params.page_size if params.HasField("page_size") and params.page_size > 0 else 50
        query = f'TaskQueue = "{self.task_queue}"'
        tasks: list[Task] = []
        async for execution in self.client.list_workflows(query, limit=size * 4):
            memo = await execution.memo_value(A2A_TASK_MEMO, None)
            if not isinstance(memo, dict) or memo.get("agent") != self.name:
                continue
            if memo.get("caller") != owner:
                continue
            if params.context_id and memo.get("context_id") != params.context_id:
                continue
            try:
                run = await self.snapshot(str(memo["task_id"]), owner)
            except TaskNotFoundError:
                continue
            if params.status and run.state != params.status:
                continue
            task = self.task(run)
            if not params.include_artifacts:
                task.ClearField("artifacts")
            tasks.append(apply_history_length(task, params))
            if len(tasks) >= size:
                break
        return ListTasksResponse(tasks=tasks, page_size=size, total_size=len(tasks))


class TemporalRequestHandler(RequestHandler):
    """The A2A request handler of an :class:`A2AServer`: every method reads or drives a
    Temporal workflow; nothing is kept in memory that a restart would lose."""

    def __init__(self, server: A2AServer) -> None:
        self._server = server

    @staticmethod
    def _owner(context: ServerCallContext) -> str | None:
        caller = context.state.get(_CALLER)
        return caller.agent if isinstance(caller, VerifiedCaller) else None

    @staticmethod
    def _caller(context: ServerCallContext) -> VerifiedCaller | None:
        caller = context.state.get(_CALLER)
        return caller if isinstance(caller, VerifiedCaller) else None

    @validate_request_params
    async def on_message_send(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> Task | Message:
        validate_history_length(params.configuration)
        server = self._server
        owner = self._owner(context)
        task_id = await server.start(params, self._caller(context))
        if not params.configuration.return_immediately:
            async for event in server.follow(task_id, owner):
                del event  # followed to its end (or to where it waits)
        run = await server.snapshot(task_id, owner)
        return apply_history_length(server.task(run), params.configuration)

    @validate_request_params
    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        validate_history_length(params.configuration)
        owner = self._owner(context)
        task_id = await self._server.start(params, self._caller(context))
        async for event in self._server.follow(task_id, owner):
            yield (
                apply_history_length(event, params.configuration)
                if isinstance(event, Task)
                else event
            )

    @validate_request_params
    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> Task | None:
        validate_history_length(params)
        run = await self._server.snapshot(params.id, self._owner(context))
        return apply_history_length(self._server.task(run), params)

    @validate_request_params
    async def on_list_tasks(
        self, params: ListTasksRequest, context: ServerCallContext
    ) -> ListTasksResponse:
        validate_history_length(params)
        return await self._server.list(params, self._owner(context))

    @validate_request_params
    async def on_cancel_task(
        self, params: CancelTaskRequest, context: ServerCallContext
    ) -> Task | None:
        return await self._server.cancel(params.id, self._owner(context))

    @validate_request_params
    async def on_subscribe_to_task(
        self, params: SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        owner = self._owner(context)
        run = await self._server.snapshot(params.id, owner)
        if run.final:
            raise UnsupportedOperationError(
                message=f"Task {params.id} is in terminal state: {TaskState.Name(run.state)}"
            )
        async for event in self._server.follow(params.id, owner):
            yield event

    async def on_create_task_push_notification_config(
        self, params: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        raise PushNotificationNotSupportedError

    async def on_get_task_push_notification_config(
        self, params: GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        raise PushNotificationNotSupportedError

    async def on_list_task_push_notification_configs(
        self, params: ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> ListTaskPushNotificationConfigsResponse:
        raise PushNotificationNotSupportedError

    async def on_delete_task_push_notification_config(
        self, params: DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        raise PushNotificationNotSupportedError

    async def on_get_extended_agent_card(
        self, params: GetExtendedAgentCardRequest, context: ServerCallContext
    ) -> AgentCard:
        raise ExtendedAgentCardNotConfiguredError


class _ContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's call context, with the caller the middleware verified."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        caller = request.scope.get(_CALLER)
        if caller is not None:
            context.state[_CALLER] = caller
        return context


class _CallerCheck:
    """Refuses JSON-RPC requests without a trusted caller's token for this agent (HTTP 401,
    RFC 6750); the card stays public."""

    def __init__(self, app: ASGIApp, server: A2AServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        trusted = self.server.trusted
        assert trusted is not None
        header = Headers(scope=scope).get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else None
        try:
            scope[_CALLER] = trusted.verify(token, self.server.url)
        except CallerRefused as refused:
            await self.server.record_refusal(refused, token)
            await _unauthorized(send, self.server.name, refused)
            return
        await self.app(scope, receive, send)


async def _unauthorized(send: Send, realm: str, refused: CallerRefused) -> None:
    body = json.dumps(
        {"error": refused.error, "error_description": refused.reason}, ensure_ascii=True
    ).encode()
    said = "".join(c for c in refused.reason if c not in '"\\' and " " <= c <= "~")
    challenge = (
        f'Bearer realm="{_plain_header(realm)}", error="{refused.error}", '
        f'error_description="{said}"'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode("latin-1")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _plain_header(text: str) -> str:
    return "".join(c for c in text if c not in '"\\' and " " <= c <= "~")


def _least(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _input(message: Message) -> JsonValue:
    """A message's input: its one data part, or its text parts joined."""
    data = [p for p in message.parts if p.WhichOneof("content") == "data"]
    texts = [p.text for p in message.parts if p.WhichOneof("content") == "text"]
    others = [p for p in message.parts if p.WhichOneof("content") not in ("data", "text")]
    if others:
        raise InvalidParamsError(message="this agent takes text and data parts, not files")
    if data and (texts or len(data) > 1):
        raise InvalidParamsError(message="send one data part, or text parts, not both")
    if data:
        return parts_value(data)
    return "\n".join(texts) if texts else None


def _part(value: JsonValue) -> Part:
    if isinstance(value, str):
        return Part(text=value)
    return Part(data=json_format.ParseDict(value, Value()))  # type: ignore[arg-type]


def _artifact(run: _Run) -> Artifact:
    return Artifact(
        artifact_id=f"{run.task_id}-result",
        name=str(run.memo.get("skill") or "result"),
        parts=[_part(run.result)],
    )


def _status(run: _Run) -> TaskStatus:
    status = TaskStatus(state=run.state)  # type: ignore[arg-type]
    status.timestamp.FromDatetime(run.at)
    if run.text:
        message = Message(
            message_id=f"{run.task_id}-{TaskState.Name(run.state).lower()}",
            role=Role.ROLE_AGENT,
            task_id=run.task_id,
            context_id=run.context_id,
            parts=[Part(text=run.text)],
        )
        if run.approval is not None:
            message.metadata.update({A2A_APPROVAL_META: run.approval})
        status.message.CopyFrom(message)
    return status


def _failure_text(err: BaseException) -> str:
    """The innermost failure of a failed run, as ``Type: message``."""
    cause: BaseException | None = err
    found: BaseException = err
    while cause is not None:
        found = cause
        nested = getattr(cause, "cause", None)
        cause = nested if isinstance(nested, BaseException) else None
    if isinstance(found, ApplicationError):
        return f"{found.type or 'ApplicationError'}: {found.message}"[:1000]
    if isinstance(found, FailureError):
        return f"{type(found).__name__}: {found.message}"[:1000]
    return f"{type(found).__name__}: {found}"[:1000]
