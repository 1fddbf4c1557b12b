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
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any, Final, NoReturn

from pydantic import JsonValue
from temporalio import activity
from temporalio.exceptions import ApplicationError

from jamjet_temporal._shared._activity import (
    auto_heartbeat,
    current_heartbeat_details,
    heartbeat_details,
)
from jamjet_temporal._shared._extras import missing_extra
from jamjet_temporal._shared._wire import A2A_SEND_ACTIVITY, A2A_TASK_DETAIL
from jamjet_temporal.a2a._config import RemoteAgent, agents_from_config
from jamjet_temporal.a2a._types import A2ADelegation, is_url
from jamjet_temporal.errors import (
    ConfigError,
    DelegationError,
    InputRequiredError,
    JamJetError,
    RemoteAgentError,
)

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
    from google.protobuf.struct_pb2 import Value
except ImportError as err:
    raise missing_extra("a2a", err) from err

__all__ = ["A2AActivities", "parts_value"]

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

    def __init__(self, call: A2ADelegation, agent: RemoteAgent, secrets: Mapping[str, str]) -> None:
        self.call = call
        self.agent = agent
        self._secrets = sorted(secrets.items(), key=lambda item: -len(item[0]))
        self.task_id: str | None = None
        self.state: str | None = None
        self.text: str | None = None

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
        agent = self._agent(call)
        try:
            headers, secrets = agent.headers(os.environ)
        except ConfigError as err:
            raise ApplicationError(
                f"A2A agent '{call.agent}': {err}", type=ConfigError.__name__, non_retryable=True
            ) from None
        job = _Delegation(call, agent, secrets)
        timeout = httpx.Timeout(agent.timeout_seconds)
        async with httpx.AsyncClient(headers=headers, timeout=timeout) as http:
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
    return _result(job, await _poll(job, client, job.task_id))


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
                if job.task_id is not None and job.state in _FINAL_NAMES:
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
        if task.status.state in _FINAL:
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
    where = "" if job.task_id is None else f" (remote task {job.task_id})"
    job.fail(
        RemoteAgentError(f"A2A agent '{job.name}'{where}: {type(err).__name__}: {text}"),
        retry=not final,
    )


def _text(message: Message) -> str:
    return "\n".join(part.text for part in message.parts if part.WhichOneof("content") == "text")


def _plain(value: Any) -> JsonValue:
    """JSON from a protobuf ``Value``: numbers are doubles there, so whole ones become ints."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value  # type: ignore[no-any-return]


def _part(part: Part) -> JsonValue:
    kind = part.WhichOneof("content")
    if kind == "text":
        return part.text
    if kind == "data":
        return _plain(json_format.MessageToDict(part.data))
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
