"""The A2A activity: delegate one task to a remote agent through the official ``a2a-sdk`` client.

Runs on the worker. A delegation names its agent by alias (or URL); the worker holds the agents'
URLs and reads their credentials from its own environment, so no secret reaches workflow
history.

One attempt: resolve the agent, fetch its card, check the skill is listed and that the card
offers an interface this worker speaks (JSON-RPC or HTTP+JSON), send one message whose id is the
step's idempotency key, then follow the remote task to a final state. The remote task's id is
kept in the activity's heartbeat details as soon as it is known (the attempt's first heartbeat,
which Temporal records at once); an attempt that finds it there (the worker running the previous
attempt died, or its connection broke) follows that task, by ``tasks/subscribe`` or
``tasks/get``, and sends nothing. Progress (state, the agent's status text) is heartbeated.
Cancelling the activity cancels the remote task.

Identity: for an agent declared with ``auth: {type: signed, key_file: ...}`` every request
carries a token signed for this delegation (``_token``), renewed while a long task is followed;
each token issued is recorded in the audit trail (``a2a.identity``), and so is a callee's
refusal. Budget: the slice the gate set aside for the delegation (and the slice the call
asks for) travels in the request's metadata (``jamjet.dev/budget``); what the agent reports it
spent (``jamjet.dev/spend`` in the final task's metadata) is charged to the run, like a task's
own model calls. A task that waits for an approval on the agent's side (``auth-required``
whose status names it, ``jamjet.dev/approval``) is followed on, not taken as final.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final, NoReturn

from pydantic import JsonValue
from temporalio import activity
from temporalio.exceptions import ApplicationError

from jamjet_temporal._shared._activity import (
    auto_heartbeat,
    current_heartbeat_details,
    heartbeat_details,
)
from jamjet_temporal._shared._extras import missing_extra
from jamjet_temporal._shared._wire import (
    A2A_APPROVAL_META,
    A2A_BUDGET_META,
    A2A_SEND_ACTIVITY,
    A2A_SPEND_META,
    A2A_TASK_DETAIL,
)
from jamjet_temporal.a2a._config import RemoteAgent, SignedAuth, agents_from_config
from jamjet_temporal.a2a._token import CallerIdentity
from jamjet_temporal.a2a._types import A2ADelegation, is_url
from jamjet_temporal.budget._ledger import Budget, CallCost
from jamjet_temporal.errors import (
    ConfigError,
    DelegationError,
    InputRequiredError,
    JamJetError,
    KeyFileError,
    RemoteAgentError,
)
from jamjet_temporal.llm._types import Usage

if TYPE_CHECKING:
    from jamjet_temporal.gate._activities import ActivityGate

try:
    import httpx
    from a2a.client import (
        A2ACardResolver,
        A2AClientTimeoutError,
        AgentCardResolutionError,
        Client,
        ClientConfig,
        ClientFactory,
    )
    from a2a.types.a2a_pb2 import (
        AgentCard,
        CancelTaskRequest,
        GetTaskRequest,
        Message,
        Part,
        Role,
        SendMessageConfiguration,
        SendMessageRequest,
        StreamResponse,
        SubscribeToTaskRequest,
        Task,
        TaskState,
        TaskStatus,
    )
    from a2a.utils.constants import TransportProtocol
    from a2a.utils.errors import (
        A2AError,
        ContentTypeNotSupportedError,
        ExtensionSupportRequiredError,
        InvalidParamsError,
        InvalidRequestError,
        JSONParseError,
        MethodNotFoundError,
        TaskNotFoundError,
        UnsupportedOperationError,
        VersionNotSupportedError,
    )
    from google.protobuf import json_format
    from google.protobuf.struct_pb2 import Struct, Value
except ImportError as err:
    raise missing_extra("a2a", err) from err

__all__ = ["A2AActivities", "parts_value", "plain_value"]

_logger = logging.getLogger("jamjet_temporal.a2a")


def state_name(state: int) -> str:
    """A task state as the protocol writes it: ``working``, ``input-required``, ..."""
    return TaskState.Name(state).removeprefix("TASK_STATE_").lower().replace("_", "-")


#: Where a task ends, for us: done, or stopped for something we cannot give yet.
_FINAL: Final = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
        TaskState.TASK_STATE_INPUT_REQUIRED,
        TaskState.TASK_STATE_AUTH_REQUIRED,
    }
)
_FINAL_NAMES: Final = frozenset(state_name(state) for state in _FINAL)
#: JSON-RPC errors that sending the same request again cannot fix.
_FINAL_ERRORS: Final = (
    ContentTypeNotSupportedError,
    ExtensionSupportRequiredError,
    InvalidParamsError,
    InvalidRequestError,
    JSONParseError,
    MethodNotFoundError,
    UnsupportedOperationError,
    VersionNotSupportedError,
)
#: HTTP statuses that a retry cannot fix.
_FINAL_STATUSES: Final = frozenset({400, 401, 403, 404, 405, 410, 413, 415, 422})
#: Polling ``tasks/get``: first interval, growth, longest interval (seconds).
_POLL: Final = (0.1, 1.5, 2.0)
#: How long cancelling the remote task may take when the activity is cancelled.
_CANCEL_TIMEOUT: Final = 5.0


class _Delegation:
    """One attempt of one delegation: the agent, what the secrets are, what is known of the
    remote task (kept in the heartbeat details)."""

    def __init__(
        self,
        call: A2ADelegation,
        agent: RemoteAgent,
        secrets: Mapping[str, str],
        gate: ActivityGate | None = None,
    ) -> None:
        self.call = call
        self.agent = agent
        self.gate = gate
        self._secrets = sorted(secrets.items(), key=lambda item: -len(item[0]))
        self.task_id: str | None = None
        self.state: str | None = None
        self.text: str | None = None
        #: The remote task waits for an approval on the agent's side (followed on).
        self.approval = False
        #: The budget sent with the request (None: none).
        self.budget: Budget | None = None

    @property
    def user(self) -> str | None:
        """The proven user the calling run acts for."""
        return self.gate.user if self.gate is not None else None

    async def record(self, kind: str, suffix: str, data: dict[str, JsonValue]) -> str | None:
        """Record an event of this delegation in the caller's audit trail (its id)."""
        if self.gate is None:
            return None
        fields: dict[str, JsonValue] = {"tool": self.call.subject, "a2a_agent": self.name}
        return await self.gate.record(kind, suffix, {**fields, **data})

    @property
    def name(self) -> str:
        return self.call.agent

    def redact(self, text: str) -> str:
        """``text`` with every credential value put back as ``${VAR}`` (messages go to
        history)."""
        for value, reference in self._secrets:
            if len(value) >= 3:
                text = text.replace(value, reference)
        return text

    def fail(self, error: JamJetError, *, retry: bool = False, details: object = None) -> NoReturn:
        """Raise ``error`` as the ``ApplicationError`` the workflow sees (secrets redacted)."""
        extra = () if details is None else (details,)
        raise ApplicationError(
            self.redact(str(error)), *extra, type=type(error).__name__, non_retryable=not retry
        )

    def saw(self, task_id: str, status: TaskStatus | None) -> None:
        """The remote task's id and latest status: kept, and heartbeated when they changed."""
        state, text = self.state, self.text
        if status is not None and status.state != TaskState.TASK_STATE_UNSPECIFIED:
            state = state_name(status.state)
        if status is not None and status.HasField("message"):
            text = _text(status.message)[:500] or text
        if status is not None and status.state != TaskState.TASK_STATE_UNSPECIFIED:
            self.approval = _waits_for_approval(status)
        if (task_id, state, text) == (self.task_id, self.state, self.text):
            return
        self.task_id, self.state, self.text = task_id, state, text
        detail = {
            "task_id": self.task_id,
            "state": self.state,
            "message": self.redact(self.text) if self.text else None,
            "message_id": self.call.message_id,
            "agent": self.name,
        }
        heartbeat_details.set({**heartbeat_details.get(), A2A_TASK_DETAIL: detail})
        if activity.in_activity():
            activity.heartbeat(*current_heartbeat_details())


def kept_task(info: activity.Info, message_id: str) -> str | None:
    """The remote task an earlier attempt of this step recorded in its heartbeat details."""
    for detail in info.heartbeat_details:
        state = detail.get("jamjet") if isinstance(detail, dict) else None
        kept = state.get(A2A_TASK_DETAIL) if isinstance(state, dict) else None
        if (
            isinstance(kept, dict)
            and kept.get("message_id") == message_id
            and isinstance(kept.get("task_id"), str)
            and kept["task_id"]
        ):
            return str(kept["task_id"])
    return None


class A2AActivities:
    """The A2A activity of one plugin: ``jamjet.a2a.send``.

    Args:
        agents: The agents this worker declares, by alias (``RemoteAgent`` or plain dicts).
            Only these get credentials; a delegation may also name an agent by URL, or carry
            the workflow's declaration of an alias (used without credentials).

    Raises:
        ConfigError: An alias or an agent is invalid.
    """

    def __init__(self, agents: Mapping[str, RemoteAgent | Mapping[str, object]]) -> None:
        self._agents = agents_from_config(agents, where="JamJetConfig.a2a_agents")

    @property
    def agents(self) -> dict[str, RemoteAgent]:
        """The agents, by alias."""
        return dict(self._agents)

    @activity.defn(name=A2A_SEND_ACTIVITY)
    async def send(self, call: A2ADelegation) -> JsonValue:
        """Delegate one task and return its result (see the module docstring)."""
        # The gate of this activity (I/O side; imported here as llm._call does: the gate
        # package imports this one's payloads).
        from jamjet_temporal.gate._activities import current_activity_gate

        agent = self._agent(call)
        try:
            headers, secrets = agent.headers(os.environ)
            identity = _identity(agent)
        except ConfigError as err:
            raise ApplicationError(
                f"A2A agent '{call.agent}': {err}", type=ConfigError.__name__, non_retryable=True
            ) from None
        job = _Delegation(call, agent, secrets, current_activity_gate())
        job.budget = await _budget_slice(job)
        auth = None
        if identity is not None:
            assert isinstance(agent.auth, SignedAuth)
            auth = _TokenAuth(job, identity, timedelta(seconds=agent.auth.ttl_seconds))
        timeout = httpx.Timeout(agent.timeout_seconds)
        async with httpx.AsyncClient(headers=headers, timeout=timeout, auth=auth) as http:
            card = await _card(job, http)
            _check_skill(job, card)
            streaming = bool(card.capabilities.streaming)
            config = ClientConfig(
                streaming=streaming,
                httpx_client=http,
                supported_protocol_bindings=[
                    TransportProtocol.JSONRPC,
                    TransportProtocol.HTTP_JSON,
                ],
            )
            try:
                client = ClientFactory(config).create(card)
            except ValueError as err:
                offered = ", ".join(
                    f"{i.protocol_binding} {i.protocol_version}".strip()
                    for i in card.supported_interfaces
                )
                job.fail(
                    RemoteAgentError(
                        f"A2A agent '{call.agent}' offers no interface this worker speaks "
                        f"(JSONRPC, HTTP+JSON): {err}; its card offers: {offered or 'none'}"
                    )
                )
            async with auto_heartbeat(hold_first=True):
                try:
                    return await _delegate(job, client, streaming)
                except asyncio.CancelledError:
                    if job.task_id is not None:
                        await _cancel(job, client)
                    raise
                except ApplicationError:
                    raise
                except (A2AError, httpx.HTTPError) as err:
                    refused = _refusal(err)
                    if refused is not None:
                        await job.record(
                            "a2a.identity",
                            "refused",
                            {
                                "decision": "REFUSED_BY_AGENT",
                                "status": refused[0],
                                "reason": job.redact(refused[1]),
                            },
                        )
                    _protocol_failure(job, err)

    def _agent(self, call: A2ADelegation) -> RemoteAgent:
        """The agent a delegation names: the worker's entry for the alias, else the workflow's
        declaration (without credentials), else the URL it gives.

        An agent the worker declares is reached by its alias only: the policy decides on
        ``a2a:ALIAS.SKILL``, so its URL given directly, or declared by the workflow under
        another alias, would slip past a rule written for the alias.
        """
        known = self._agents.get(call.agent)
        if known is not None:
            return known
        url = call.agent if is_url(call.agent) else None
        if url is None and call.declared is not None:
            url = call.declared.url
        owner = None if url is None else self._owner(url)
        if owner is not None:
            raise ApplicationError(
                f"A2A agent '{call.agent}' is {url}, which this worker declares as '{owner}': "
                f"delegate to '{owner}' by its alias (the policy decides on a2a:{owner}.SKILL, "
                "and a rule written for it must not be passed by another name)",
                type=ConfigError.__name__,
                non_retryable=True,
            )
        if is_url(call.agent):
            return RemoteAgent(url=call.agent)
        if call.declared is not None:
            if call.declared.auth is not None:
                raise ApplicationError(
                    f"A2A agent '{call.agent}' is declared by the workflow with credentials "
                    f"({call.declared.auth.type}), but not by this worker: credentials are read "
                    "from the worker's environment only for agents the worker declares (fix: add "
                    f"'{call.agent}' to JamJetConfig(a2a_agents={{...}}) on the worker)",
                    type=ConfigError.__name__,
                    non_retryable=True,
                )
            return call.declared
        names = ", ".join(sorted(self._agents)) or "none"
        raise ApplicationError(
            f"unknown A2A agent '{call.agent}': this worker knows {names} (fix: declare it in "
            "JamJetConfig(a2a_agents={...}) or the pipeline's a2a.remote_agents, or give its URL)",
            type=ConfigError.__name__,
            non_retryable=True,
        )

    def _owner(self, url: str) -> str | None:
        """The alias under which this worker declares the agent at ``url``, if it does."""
        wanted = _same_url(url)
        for alias, agent in self._agents.items():
            if _same_url(agent.url) == wanted:
                return alias
        return None


def _identity(agent: RemoteAgent) -> CallerIdentity | None:
    """The caller identity that signs this agent's tokens (None: the agent takes none).

    Raises:
        ConfigError: The key file cannot be used (a ``KeyFileError`` naming it and the fix).
    """
    if not isinstance(agent.auth, SignedAuth):
        return None
    try:
        return CallerIdentity.load(agent.auth.key_file)
    except KeyFileError as err:
        raise ConfigError(f"its caller key: {err}") from None


class _TokenAuth(httpx.Auth):
    """``Authorization: Bearer <JWT>`` signed for this delegation; renewed at half its life
    (a long task is followed with many requests), each token recorded when issued."""

    def __init__(self, job: _Delegation, identity: CallerIdentity, ttl: timedelta) -> None:
        self._job = job
        self._identity = identity
        self._ttl = ttl
        self._token: str | None = None
        self._renew_at = 0.0
        self._issued = 0

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._token is None or time.monotonic() >= self._renew_at:
            job = self._job
            token, claims = self._identity.sign(
                job.agent.url, user=job.user, message_id=job.call.message_id, ttl=self._ttl
            )
            self._token = token
            self._renew_at = time.monotonic() + self._ttl.total_seconds() / 2
            self._issued += 1
            expires = claims["exp"]
            assert isinstance(expires, int)
            await job.record(
                "a2a.identity",
                f"token-{self._issued}",
                {
                    "decision": "SIGNED",
                    "caller": self._identity.agent,
                    "audience": job.agent.url,
                    "user": job.user,
                    "token_id": str(claims["jti"]),
                    "key_id": self._identity.key_id,
                    "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(),
                    "message_id": job.call.message_id,
                },
            )
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


async def _budget_slice(job: _Delegation) -> Budget | None:
    """The budget the agent gets: what the call asks for, within what the gate set aside.

    Refused (non-retryable ``BudgetExceededError``, recorded) when the run's budget cannot
    cover what the call asks for, or has nothing left on a capped measure: nothing is sent.
    """
    requested = job.call.budget
    allowance = job.gate.allowance if job.gate is not None else None
    if allowance is None:
        return requested
    short: list[str] = []
    wanted_cost = requested.max_cost if requested is not None else None
    wanted_tokens = requested.max_tokens if requested is not None else None
    left_cost, left_tokens = allowance.max_cost, allowance.max_tokens
    if left_cost is not None and (
        (wanted_cost is not None and wanted_cost > left_cost)
        or (left_cost == 0 and wanted_cost != 0)
    ):
        asked = f"${wanted_cost}" if wanted_cost is not None else "money"
        short.append(f"the delegation needs {asked}, the run has ${left_cost} left")
    if left_tokens is not None and (
        (wanted_tokens is not None and wanted_tokens > left_tokens)
        or (left_tokens == 0 and wanted_tokens != 0)
    ):
        asked = f"{wanted_tokens:,} tokens" if wanted_tokens is not None else "tokens"
        short.append(f"the delegation needs {asked}, the run has {left_tokens:,} left")
    chosen = Budget(
        max_cost=_least(wanted_cost, left_cost), max_tokens=_least(wanted_tokens, left_tokens)
    )
    data: dict[str, JsonValue] = {
        "decision": "HALT" if short else "ALLOWED",
        "scope": "delegation",
        "requested": None if requested is None else requested.model_dump(mode="json"),
        "left": allowance.model_dump(mode="json"),
        "slice": chosen.model_dump(mode="json"),
        "reason": "; ".join(short) or "the slice is set aside for the delegation",
    }
    event = await job.record("budget.decision", "budget", data)
    if short:
        target = f"'{job.name}'" + (f" (skill '{job.call.skill}')" if job.call.skill else "")
        audit = f" [audit {event}]" if event else ""
        raise ApplicationError(
            f"delegation to {target} refused before it was sent: over budget: "
            f"{'; '.join(short)}{audit}",
            type="BudgetExceededError",
            non_retryable=True,
        )
    return chosen


def _least(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _waits_for_approval(status: TaskStatus) -> bool:
    """Whether a task is ``auth-required`` for an approval on the agent's side (a jamjet
    agent says so in the status message's metadata): it goes on once someone approves."""
    if status.state != TaskState.TASK_STATE_AUTH_REQUIRED or not status.HasField("message"):
        return False
    return A2A_APPROVAL_META in status.message.metadata.fields


async def _spent(job: _Delegation, task: Task) -> None:
    """Charge the run with what the agent reports the task spent, and record it."""
    report = plain_value(json_format.MessageToDict(task.metadata)).get(A2A_SPEND_META)  # type: ignore[union-attr]
    if not isinstance(report, dict):
        return
    try:
        cost = Decimal(str(report.get("cost") or 0))
        tokens = int(report.get("tokens") or 0)  # type: ignore[arg-type]
        if not cost.is_finite() or cost < 0 or tokens < 0:
            raise ValueError
    except (InvalidOperation, ValueError, TypeError):
        _logger.warning("a2a %s: ignoring a malformed spend report %r", job.name, report)
        return
    charged = CallCost(
        model=f"{job.call.subject} (task {task.id})",
        usage=Usage(input_tokens=tokens),
        cost=cost,
    )
    if job.gate is not None and job.gate.allowance is not None:
        job.gate.charge(charged)
    await job.record(
        "a2a.spend",
        "spend",
        {
            "task_id": task.id,
            "cost": str(cost),
            "tokens": tokens,
            "estimated": bool(report.get("estimated")),
            "budget": None if job.budget is None else job.budget.model_dump(mode="json"),
            "charged": job.gate is not None and job.gate.allowance is not None,
        },
    )


def _refusal(err: A2AError | httpx.HTTPError) -> tuple[int, str] | None:
    """(HTTP status, the agent's reason) when the agent refused this caller (401 or 403)."""
    cause = err if isinstance(err, httpx.HTTPStatusError) else err.__cause__
    if not isinstance(cause, httpx.HTTPStatusError):
        return None
    status = cause.response.status_code
    if status not in (401, 403):
        return None
    header = cause.response.headers.get("www-authenticate", "")
    found = re.search(r'error_description="([^"]*)"', header)
    return status, found.group(1) if found else cause.response.reason_phrase


def _same_url(url: str) -> str:
    """A URL as compared with another: scheme and host lower-cased, no trailing slash."""
    try:
        return str(httpx.URL(url)).rstrip("/")
    except httpx.InvalidURL:
        return url.rstrip("/")


async def _card(job: _Delegation, http: httpx.AsyncClient) -> AgentCard:
    """The agent's card (a new fetch each attempt: a redeployed agent may list other skills)."""
    agent = job.agent
    try:
        return await A2ACardResolver(http, agent.url).get_agent_card(
            relative_card_path=agent.agent_card_path
        )
    except AgentCardResolutionError as err:
        status = err.status_code
        transient = (status is None and isinstance(err.__cause__, httpx.RequestError)) or (
            status is not None and status not in _FINAL_STATUSES
        )
        job.fail(
            RemoteAgentError(
                f"A2A agent '{job.name}': could not read its agent card at {agent.url}: "
                f"{err.message}"
            ),
            retry=transient,
        )


def _check_skill(job: _Delegation, card: AgentCard) -> None:
    skill = job.call.skill
    if skill is None or any(listed.id == skill for listed in card.skills):
        return
    listed = ", ".join(f"'{s.id}'" for s in card.skills) or "none"
    error = DelegationError(
        job.name,
        skill,
        f"the agent's card ({card.name or 'unnamed'}) lists no skill '{skill}'; its skills: "
        f"{listed}",
    )
    job.fail(error, details=error.details())


def _request_metadata(job: _Delegation) -> Struct | None:
    if job.budget is None:
        return None
    metadata = Struct()
    metadata.update({A2A_BUDGET_META: _budget_json(job.budget)})
    return metadata


def _budget_json(budget: Budget) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    if budget.max_cost is not None:
        shown["max_cost"] = str(budget.max_cost)
    if budget.max_tokens is not None:
        shown["max_tokens"] = budget.max_tokens
    return shown


def _message(call: A2ADelegation) -> Message:
    if isinstance(call.input, str):
        part = Part(text=call.input)
    else:
        part = Part(data=json_format.ParseDict(call.input, Value()))  # type: ignore[arg-type]
    message = Message(message_id=call.message_id, role=Role.ROLE_USER, parts=[part])
    if call.skill is not None:
        message.metadata.update({"skill": call.skill})
    return message


async def _delegate(job: _Delegation, client: Client, streaming: bool) -> JsonValue:
    """Send (or find the task an earlier attempt sent), follow it, return its result."""
    task_id = kept_task(activity.info(), job.call.message_id)
    if task_id is not None:
        _logger.debug("a2a %s: following remote task %s", job.name, task_id)
        job.saw(task_id, None)
        if streaming:
            await _stream(job, client.subscribe(SubscribeToTaskRequest(id=task_id)))
    else:
        request = SendMessageRequest(
            message=_message(job.call),
            # Without streaming, the agent answers as soon as the task exists: its id is kept
            # before the work is done, not after.
            configuration=SendMessageConfiguration(return_immediately=not streaming),
            metadata=_request_metadata(job),
        )
        direct = await _stream(job, client.send_message(request))
        if direct is not None:
            return parts_value(direct.parts)
        if job.task_id is None:
            job.fail(
                RemoteAgentError(
                    f"A2A agent '{job.name}' answered the message with neither a task nor a message"
                )
            )
    assert job.task_id is not None
    task = await _poll(job, client, job.task_id)
    await _spent(job, task)
    return _result(job, task)


async def _stream(job: _Delegation, stream: AsyncIterator[StreamResponse]) -> Message | None:
    """Read a send's (or subscription's) events until the task is final; the agent's direct
    answer (a message instead of a task), if that is what came.

    Once the task's id is known, a broken stream is not a failure: the caller then polls.
    """
    try:
        async with aclosing(stream) as events:  # type: ignore[type-var]
            async for event in events:
                kind = event.WhichOneof("payload")
                if kind == "message":
                    return event.message
                if kind == "task":
                    job.saw(event.task.id, event.task.status)
                elif kind == "status_update":
                    job.saw(event.status_update.task_id, event.status_update.status)
                elif kind == "artifact_update" and job.task_id is None:
                    job.saw(event.artifact_update.task_id, None)
                if job.task_id is not None and job.state in _FINAL_NAMES and not job.approval:
                    return None
    except (A2AError, httpx.HTTPError) as err:
        if isinstance(err, TaskNotFoundError) or job.task_id is None:
            raise
        # A subscription to a task that is already final is refused: polling reads it.
        _logger.debug("a2a %s: stream of task %s ended: %r", job.name, job.task_id, err)
    return None


async def _poll(job: _Delegation, client: Client, task_id: str) -> Task:
    """``tasks/get`` until the task is final (at once when it is)."""
    delay, growth, longest = _POLL
    while True:
        task = await client.get_task(GetTaskRequest(id=task_id, history_length=0))
        job.saw(task.id or task_id, task.status)
        if task.status.state in _FINAL and not _waits_for_approval(task.status):
            return task
        await asyncio.sleep(delay)
        delay = min(delay * growth, longest)


def _result(job: _Delegation, task: Task) -> JsonValue:
    """A final task's result, or the typed failure it is."""
    state = task.status.state
    if state == TaskState.TASK_STATE_COMPLETED:
        parts = [part for artifact in task.artifacts for part in artifact.parts]
        if not parts and task.status.HasField("message"):
            parts = list(task.status.message.parts)
        return parts_value(parts)
    name = state_name(state)
    said = _text(task.status.message) if task.status.HasField("message") else ""
    reason = job.redact(
        said
        or {
            "input-required": "the agent asks for input, which delegation cannot give yet",
            "auth-required": "the agent asks for authentication (configure auth for it on the "
            "worker)",
        }.get(name, "the agent gave no reason")
    )
    error: DelegationError
    if state == TaskState.TASK_STATE_INPUT_REQUIRED:
        # Answering (a second message on the same task) is not supported yet: the remote task
        # is left waiting, its id in the error's details.
        error = InputRequiredError(job.name, job.call.skill, reason, state=name, task_id=task.id)
    else:
        error = DelegationError(job.name, job.call.skill, reason, state=name, task_id=task.id)
    job.fail(error, details=error.details())


async def _cancel(job: _Delegation, client: Client) -> None:
    """Cancel the remote task (the activity was cancelled); best effort, briefly."""
    assert job.task_id is not None
    try:
        await asyncio.wait_for(
            client.cancel_task(CancelTaskRequest(id=job.task_id)), _CANCEL_TIMEOUT
        )
        _logger.debug("a2a %s: cancelled remote task %s", job.name, job.task_id)
    except Exception as err:  # already final, unreachable: the activity is cancelled anyway
        _logger.warning(
            "a2a %s: could not cancel remote task %s: %s",
            job.name,
            job.task_id,
            job.redact(str(err)),
        )


def _protocol_failure(job: _Delegation, err: A2AError | httpx.HTTPError) -> NoReturn:
    """A failure of the protocol (not of the task): retryable unless retrying cannot help."""
    status = None
    cause = err.__cause__
    if isinstance(cause, httpx.HTTPStatusError):
        status = cause.response.status_code
    final = isinstance(err, _FINAL_ERRORS) or (status is not None and status in _FINAL_STATUSES)
    text = getattr(err, "message", None) or str(err) or type(err).__name__
    if isinstance(err, TaskNotFoundError) and job.task_id is not None:
        final = True
        text = (
            f"the agent no longer knows remote task {job.task_id} (lost, or expired); it is not "
            "sent again, which could run the work twice"
        )
    elif isinstance(err, A2AClientTimeoutError):
        text = f"no answer within {job.agent.timeout_seconds:g} s"
    refused = _refusal(err)
    if refused is not None:
        final = True
        text = f"the agent refused this caller (HTTP {refused[0]}): {refused[1]}"
    where = "" if job.task_id is None else f" (remote task {job.task_id})"
    job.fail(
        RemoteAgentError(f"A2A agent '{job.name}'{where}: {type(err).__name__}: {text}"),
        retry=not final,
    )


def _text(message: Message) -> str:
    return "\n".join(part.text for part in message.parts if part.WhichOneof("content") == "text")


def plain_value(value: Any) -> JsonValue:
    """JSON from a protobuf ``Value``: numbers are doubles there, so whole ones become ints."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {str(key): plain_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_value(item) for item in value]
    return value  # type: ignore[no-any-return]


def _part(part: Part) -> JsonValue:
    kind = part.WhichOneof("content")
    if kind == "text":
        return part.text
    if kind == "data":
        return plain_value(json_format.MessageToDict(part.data))
    shaped: dict[str, JsonValue] = {}
    if kind == "url":
        shaped["url"] = part.url
    elif kind == "raw":
        shaped["raw_base64"] = base64.b64encode(part.raw).decode("ascii")
    if part.media_type:
        shaped["media_type"] = part.media_type
    if part.filename:
        shaped["filename"] = part.filename
    return shaped


def parts_value(parts: Any) -> JsonValue:
    """Parts as one JSON value: one text part is its string, one data part its value, a file
    (URL or bytes) a small object (``url`` or ``raw_base64``, ``media_type``, ``filename``);
    several parts a list of these; none, None."""
    values = [_part(part) for part in parts]
    if not values:
        return None
    return values[0] if len(values) == 1 else values
