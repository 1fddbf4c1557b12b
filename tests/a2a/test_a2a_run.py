"""A2A delegation in the durable runtime, against a real A2A agent (tests/a2a/server.py, built on
the a2a-sdk server side, in its own process on 127.0.0.1) on the real dev server: results, the
policy gate and its audit trail, typed failures, credentials kept out of history, a caller
worker SIGKILLed mid-delegation (exactly one remote task), cancellation, replay with no agent."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types.a2a_pb2 import GetTaskRequest, TaskState
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Replayer, Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal._shared._activity import step_key
from jamjet_temporal._shared._wire import A2A_TASK_DETAIL
from jamjet_temporal.audit import AuditEvent, open_store
from jamjet_temporal.cli._devserver import DevServer, free_port
from jamjet_temporal.plugin import AuditConfig
from jamjet_temporal.policy import Policy
from tests.a2a.a2a_workflows import Delegate, Raw

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = [Delegate, Raw]
TOKEN_ENV = "JJ_A2A_TEST_TOKEN"


@dataclass
class Agent:
    """A test agent running in its own process."""

    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def received(self, message_id: str | None = None) -> list[dict[str, Any]]:
        """The messages it received (for one message id)."""
        if not self.log.exists():
            return []
        entries = [json.loads(line) for line in self.log.read_text().splitlines() if line]
        return [e for e in entries if message_id is None or e["message_id"] == message_id]

    async def task_state(self, task_id: str) -> str:
        """A task's state, asked with a plain a2a-sdk client."""
        async with httpx.AsyncClient(headers=_auth_headers(self)) as http:
            client = await create_client(
                self.url, client_config=ClientConfig(streaming=False, httpx_client=http)
            )
            task = await client.get_task(GetTaskRequest(id=task_id))
        return TaskState.Name(task.status.state)


def _auth_headers(agent: Agent) -> dict[str, str]:
    token = os.environ.get(TOKEN_ENV)
    return {"Authorization": f"Bearer {token}"} if token else {}


def start_agent(folder: Path, *args: str, env: dict[str, str] | None = None) -> Agent:
    port = free_port()
    log = folder / f"agent-{port}.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.a2a.server", "--port", str(port), "--log", str(log), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/.well-known/agent-card.json", timeout=1).status_code == 200:
                return Agent(url, log, process)
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the test agent did not start (exit {process.poll()})")
        time.sleep(0.1)


def start_worker(
    address: str, queue: str, audit: str, agents: dict[str, Any]
) -> subprocess.Popen[bytes]:
    """A governed worker in a process of its own (tests/a2a/worker.py)."""
    command = [sys.executable, "-m", "tests.a2a.worker", address, queue, audit, json.dumps(agents)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    """A streaming agent, a non-streaming one, and one that wants a bearer token."""
    folder = tmp_path_factory.mktemp("a2a")
    secret = f"s3cret-{uuid.uuid4().hex}"
    started: dict[str, Agent] = {}
    try:
        started["streaming"] = start_agent(folder)
        started["polling"] = start_agent(folder, "--no-streaming")
        started["guarded"] = start_agent(folder, "--token-env", TOKEN_ENV, env={TOKEN_ENV: secret})
        os.environ[TOKEN_ENV] = secret  # the worker's environment (this process)
        yield started
    finally:
        os.environ.pop(TOKEN_ENV, None)
        for agent in started.values():
            stop(agent.process)


@dataclass
class Governed:
    """A client whose plugin knows the agents, a worker on its own queue, the audit store."""

    client: Client
    queue: str
    url: str

    async def start(self, *args: Any, run_id: str | None = None) -> Any:
        return await self.client.start_workflow(
            Delegate.run,
            args=list(args),
            id=run_id or f"a2a-{uuid.uuid4().hex[:10]}",
            task_queue=self.queue,
        )

    async def run(self, *args: Any) -> Any:
        return await (await self.start(*args)).result()

    async def run_raw(self, call: dict[str, Any]) -> Any:
        return await self.client.execute_workflow(
            Raw.run,
            args=["jamjet.a2a.send", call, None],
            id=f"a2a-{uuid.uuid4().hex[:10]}",
            task_queue=self.queue,
        )

    async def fail(self, workflow: Any, *args: Any) -> tuple[str, BaseException]:
        run_id = f"a2a-{uuid.uuid4().hex[:10]}"
        with pytest.raises(WorkflowFailureError) as failed:
            await self.client.execute_workflow(
                workflow, args=list(args), id=run_id, task_queue=self.queue
            )
        assert failed.value.cause is not None
        return run_id, failed.value.cause

    async def events(self, run_id: str | None = None) -> list[AuditEvent]:
        store = open_store(self.url)
        try:
            return [stored.event for stored in await store.events(run_id)]
        finally:
            await store.close()


Make = Callable[..., Any]


def declared(agents: dict[str, Agent]) -> dict[str, Any]:
    """What the workers declare: three aliases, the guarded one with its token variable."""
    return {
        "research": {"url": agents["streaming"].url},
        "poller": {"url": agents["polling"].url},
        "vault": {
            "url": agents["guarded"].url,
            "auth": {"type": "bearer", "token_env": TOKEN_ENV},
        },
        "vault-no-token": {"url": agents["guarded"].url},
    }


@pytest.fixture
async def governed(
    temporal_server: DevServer, tmp_path: Path, task_queue: str, agents: dict[str, Agent]
) -> AsyncIterator[Make]:
    """Starts a governed worker for the test (stopped at the end of the test)."""
    workers: list[Worker] = []

    async def make(policy: Policy | None = None, a2a_agents: Any = None) -> Governed:
        url = f"sqlite:///{tmp_path / f'audit-{len(workers)}.db'}"
        config = JamJetConfig(
            audit=AuditConfig(store=url),
            policy=policy,
            a2a_agents=declared(agents) if a2a_agents is None else a2a_agents,
        )
        client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
        queue = f"{task_queue}-{len(workers)}"
        worker = Worker(client, task_queue=queue, workflows=WORKFLOWS)
        workers.append(worker)
        await worker.__aenter__()
        return Governed(client, queue, url)

    try:
        yield make
    finally:
        for worker in reversed(workers):
            await worker.__aexit__(None, None, None)


def root(cause: BaseException) -> ApplicationError:
    """The ApplicationError at the bottom of a workflow failure."""
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    assert isinstance(cause, ApplicationError), repr(cause)
    return cause


async def message_id_of(client: Client, run_id: str) -> str:
    """The message id the run's delegation sent (from its history)."""
    history = await client.get_workflow_handle(run_id).fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            payload = event.activity_task_scheduled_event_attributes.input.payloads[0]
            return str(json.loads(payload.data)["message_id"])
    raise AssertionError("no delegation in the history")


async def test_a_delegation_returns_the_remote_result_and_is_audited(
    governed: Make, agents: dict[str, Agent]
) -> None:
    gov = await governed()
    run_id = f"echo-{uuid.uuid4().hex[:8]}"
    handle = await gov.start(
        "research", "echo", {"topic": "tides", "n": 3}, None, {}, run_id=run_id
    )
    assert await handle.result() == {"topic": "tides", "n": 3}
    # Text in, text out; and the same through an agent that does not stream (tasks/get polling).
    assert await gov.run("research", "echo", "plain words", None, {}) == "plain words"
    assert await gov.run("poller", "echo", {"x": [1, 2.5]}, None, {}) == {"x": [1, 2.5]}
    assert await gov.run("poller", "slow", "p", None, {"heartbeat": 2}) == "slow done: p"

    message_id = await message_id_of(gov.client, run_id)
    # The message id is the step's idempotency key (what idempotency_key() gives in the step).
    scheduled = next(
        e.activity_task_scheduled_event_attributes
        for e in (await handle.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )
    assert scheduled.activity_id.startswith("a2a-")
    run = handle.result_run_id
    assert message_id == step_key("default", run_id, run, scheduled.activity_id)
    got = agents["streaming"].received(message_id)
    assert [(e["skill"], e["authorized"]) for e in got] == [("echo", False)]

    events = await gov.events(run_id)
    trail = [(e.kind, e.data.get("tool") or e.data.get("subject")) for e in events]
    assert trail == [
        ("policy.decision", "a2a:research.echo"),
        ("tool.call", "a2a:research.echo"),
        ("run.closed", None),
    ]
    decision, call = events[0].data, events[1].data
    assert decision["decision"] == "ALLOWED" and decision["a2a_agent"] == "research"
    assert decision["activity"] == "jamjet.a2a.send"
    assert call["outcome"] == "completed" and call["result"] == {"topic": "tides", "n": 3}
    assert call["args"][0]["message_id"] == message_id

    # Replay needs no agent: every answer is in the history.
    history = await handle.fetch_history()
    replayer = Replayer(
        workflows=WORKFLOWS,
        plugins=[JamJetPlugin(JamJetConfig(audit=AuditConfig(store=gov.url), a2a_agents={}))],
    )
    await replayer.replay_workflow(history)
    assert len(await gov.events(run_id)) == len(events), "replay wrote audit events"


async def test_an_unknown_skill_fails_listing_the_cards_skills_and_sends_nothing(
    governed: Make, agents: dict[str, Agent]
) -> None:
    gov = await governed()
    run_id, cause = await gov.fail(Delegate.run, "research", "translate", "x", None, {})
    error = root(cause)
    assert error.type == "DelegationError" and error.non_retryable
    assert "lists no skill 'translate'" in error.message
    assert "'echo', 'slow', 'fail', 'ask', 'reject'" in error.message
    assert error.details[0]["skill"] == "translate" and error.details[0]["state"] is None
    assert agents["streaming"].received(await message_id_of(gov.client, run_id)) == []


async def test_a_blocked_agent_is_refused_by_its_a2a_subject_and_audited(
    governed: Make, agents: dict[str, Agent]
) -> None:
    gov = await governed(policy=Policy(blocked_tools=("a2a:research.*",)))
    run_id, cause = await gov.fail(Delegate.run, "research", "echo", "x", None, {})
    refused = root(cause)
    assert refused.type == "ToolDeniedError"
    assert "'a2a:research.echo' refused" in refused.message
    events = await gov.events(run_id)
    decisions = [e.data for e in events if e.kind == "policy.decision"]
    assert [(d["subject"], d["decision"], d["rule"], d["scope"]) for d in decisions] == [
        ("a2a:research.echo", "BLOCKED", "a2a:research.*", "run")
    ]
    assert [e for e in events if e.kind == "tool.call"] == []
    # A skill-less delegation is 'a2a:research.*': caught by the same glob.
    _, cause = await gov.fail(Delegate.run, "research", None, "x", None, {})
    assert "'a2a:research.*' refused" in root(cause).message
    # Another agent is not caught by the rule.
    assert await gov.run("poller", "echo", "fine", None, {}) == "fine"


async def test_look_alike_skills_and_agents_are_refused_before_anything_is_sent(
    governed: Make,
) -> None:
    gov = await governed(policy=Policy(blocked_tools=("a2a:research.echo",)))
    for target, skill in [
        ("research", "ｅcho"),  # fullwidth: folded, so the rule catches it
        ("research", "еcho"),  # Cyrillic е: not a compatibility form, refused by name
        ("research", "echo\u200b"),  # zero-width space
        ("research.x", "echo"),  # a dot in the alias
        ("http://127.0.0.1:1/*", "echo"),  # a star in a URL
    ]:
        _, cause = await gov.fail(Delegate.run, target, skill, "x", None, {"once": True})
        assert root(cause).type == "ToolDeniedError", (target, skill, root(cause).message)


async def test_failed_rejected_and_input_required_tasks_are_typed_final_errors(
    governed: Make, agents: dict[str, Agent]
) -> None:
    gov = await governed()
    for skill, state, kind, said in [
        ("fail", "failed", "DelegationError", "disk on fire"),
        ("reject", "rejected", "DelegationError", "not something this agent does"),
        ("ask", "input-required", "InputRequiredError", "which year do you mean?"),
    ]:
        for alias in ("research", "poller"):
            run_id, cause = await gov.fail(Delegate.run, alias, skill, "x", None, {})
            error = root(cause)
            assert (error.type, error.non_retryable) == (kind, True), error.message
            assert f"ended {state}" in error.message and said in error.message
            detail = error.details[0]
            assert detail["state"] == state and detail["agent"] == alias
            agent = agents["streaming" if alias == "research" else "polling"]
            sent = agent.received(await message_id_of(gov.client, run_id))
            assert [e["task_id"] for e in sent] == [detail["task_id"]], "one attempt, one task"
            calls = [e.data for e in await gov.events(run_id) if e.kind == "tool.call"]
            assert [c["outcome"] for c in calls] == ["failed"]


async def test_a_bearer_token_is_read_on_the_worker_and_never_in_history(
    governed: Make, agents: dict[str, Agent]
) -> None:
    secret = os.environ[TOKEN_ENV]
    gov = await governed()
    run_id = f"vault-{uuid.uuid4().hex[:8]}"
    handle = await gov.start("vault", "echo", {"q": 1}, None, {}, run_id=run_id)
    assert await handle.result() == {"q": 1}
    sent = agents["guarded"].received(await message_id_of(gov.client, run_id))
    assert [e["authorized"] for e in sent] == [True]

    text = (await handle.fetch_history()).to_json()
    assert "jamjet.a2a.send" in text  # the history is readable here: the check is not vacuous
    assert secret not in text
    assert TOKEN_ENV not in text, "not even the variable's name goes to history"
    trail = json.dumps([e.model_dump(mode="json") for e in await gov.events(run_id)])
    assert "a2a:vault.echo" in trail and secret not in trail

    # Without the token the agent says 401: a final failure, naming it, without any secret.
    _, cause = await gov.fail(Delegate.run, "vault-no-token", "echo", "x", None, {})
    error = root(cause)
    assert error.type == "RemoteAgentError" and error.non_retryable
    assert "401" in error.message and secret not in error.message


async def test_a_missing_token_variable_is_a_clear_final_error(
    governed: Make, agents: dict[str, Agent]
) -> None:
    gov = await governed(
        a2a_agents={
            "vault": {
                "url": agents["guarded"].url,
                "auth": {"type": "api_key", "header": "X-Key", "key_env": "JJ_A2A_UNSET_VAR"},
            }
        }
    )
    os.environ.pop("JJ_A2A_UNSET_VAR", None)
    _, cause = await gov.fail(Delegate.run, "vault", "echo", "x", None, {})
    error = root(cause)
    assert error.type == "ConfigError" and error.non_retryable
    assert "JJ_A2A_UNSET_VAR is not set in the worker's environment" in error.message


async def test_agents_declared_by_the_workflow_or_given_by_url(
    governed: Make, agents: dict[str, Agent]
) -> None:
    gov = await governed(a2a_agents={})  # delegation on, no agent of its own
    url = agents["streaming"].url
    # A pipeline's a2a.remote_agents entry travels with the call: no secrets in it.
    pipeline_agents = {"helper": {"url": url}, "other": {"url": "http://127.0.0.1:1"}}
    run_id = f"decl-{uuid.uuid4().hex[:8]}"
    handle = await gov.start(
        "helper", "echo", "via the pipeline", pipeline_agents, {}, run_id=run_id
    )
    assert await handle.result() == "via the pipeline"
    decision = next(e.data for e in await gov.events(run_id) if e.kind == "policy.decision")
    assert decision["subject"] == "a2a:helper.echo"
    # By URL: the subject is the URL as written.
    run_id = f"url-{uuid.uuid4().hex[:8]}"
    handle = await gov.start(url, "echo", "by url", None, {}, run_id=run_id)
    assert await handle.result() == "by url"
    decision = next(e.data for e in await gov.events(run_id) if e.kind == "policy.decision")
    assert decision["subject"] == f"a2a:{url}.echo"
    # A workflow cannot make the worker send a credential of its environment anywhere.
    sneaky = {"helper": {"url": url, "auth": {"type": "bearer", "token_env": TOKEN_ENV}}}
    _, cause = await gov.fail(Delegate.run, "helper", "echo", "x", sneaky, {})
    error = root(cause)
    assert error.type == "ConfigError" and error.non_retryable
    assert "credentials are read from the worker's environment only for agents" in error.message
    # An alias nobody declares.
    _, cause = await gov.fail(Delegate.run, "nowhere", "echo", "x", None, {})
    error = root(cause)
    assert error.type == "ConfigError" and "unknown A2A agent 'nowhere'" in error.message

    # An agent the worker declares answers to its alias only: its URL, or another alias for it,
    # would pass a rule written for 'a2a:research.*'.
    strict = await governed(policy=Policy(blocked_tools=("a2a:research.*",)))
    for target, given in [(url + "/", None), ("alias2", {"alias2": {"url": url}})]:
        run_id, cause = await strict.fail(Delegate.run, target, "echo", "x", given, {})
        error = root(cause)
        assert error.type == "ConfigError" and error.non_retryable, error.message
        assert "which this worker declares as 'research'" in error.message
        assert agents["streaming"].received(await message_id_of(strict.client, run_id)) == []


async def test_an_unreachable_agent_is_a_retryable_remote_agent_error(governed: Make) -> None:
    gov = await governed(a2a_agents={"gone": {"url": f"http://127.0.0.1:{free_port()}"}})
    _, cause = await gov.fail(Delegate.run, "gone", "echo", "x", None, {"once": True})
    error = root(cause)
    assert error.type == "RemoteAgentError" and not error.non_retryable
    assert "could not read its agent card" in error.message


async def test_cancelling_the_run_cancels_the_remote_task(
    governed: Make, agents: dict[str, Agent]
) -> None:
    gov = await governed()

    async def cancel_one(alias: str, agent: Agent) -> None:
        run_id = f"cancel-{uuid.uuid4().hex[:8]}"
        handle = await gov.start(alias, "slow", "x", None, {"heartbeat": 1}, run_id=run_id)
        message_id = await _wait_for(lambda: _scheduled_message_id(gov.client, run_id))
        sent = await _wait_for(lambda: agent.received(message_id) or None)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        task_id = sent[0]["task_id"]
        canceled = await _wait_for(
            lambda: _state_if(agent, task_id, "TASK_STATE_CANCELED"), within=15
        )
        assert canceled, f"remote task of {alias} not canceled"

    await cancel_one("research", agents["streaming"])
    await cancel_one("poller", agents["polling"])


@pytest.mark.parametrize("kind", ["streaming", "polling"])
async def test_a_caller_worker_killed_mid_delegation_makes_exactly_one_remote_task(
    temporal_server: DevServer,
    tmp_path: Path,
    task_queue: str,
    agents: dict[str, Agent],
    kind: str,
) -> None:
    """The first worker dies (SIGKILL) while the remote task runs; the retry, on a second
    worker, follows the task the first recorded (by tasks/subscribe on a streaming agent, by
    tasks/get on the other) instead of sending the message again."""
    audit = f"sqlite:///{tmp_path / 'audit.db'}"
    worker_agents = {"research": {"url": agents[kind].url}}
    first = start_worker(temporal_server.address, task_queue, audit, worker_agents)
    try:
        assert first.stdout is not None
        assert (await asyncio.to_thread(first.stdout.readline)).strip() == b"worker ready"
        config = JamJetConfig(audit=AuditConfig(store=audit), a2a_agents=worker_agents)
        client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
        run_id = f"kill-{uuid.uuid4().hex[:8]}"
        handle = await client.start_workflow(
            Delegate.run,
            args=["research", "slow", "survive", None, {"heartbeat": 2, "quick": True}],
            id=run_id,
            task_queue=task_queue,
        )

        async def recorded() -> dict[str, Any] | None:
            described = await handle.describe()
            for pending in described.raw_description.pending_activities:
                for payload in pending.heartbeat_details.payloads:
                    kept = json.loads(payload.data).get("jamjet", {}).get(A2A_TASK_DETAIL)
                    if kept and kept.get("task_id"):
                        return dict(kept)
            return None

        kept = await _wait_for(recorded, within=20)
        assert kept["state"] in ("submitted", "working")
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        async with Worker(client, task_queue=task_queue, workflows=[Delegate]):
            assert await handle.result() == "slow done: survive"
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    sent = agents[kind].received(kept["message_id"])
    assert [e["task_id"] for e in sent] == [kept["task_id"]], "the message was sent again"
    history = await handle.fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert attempts and attempts[-1] >= 2, "the delegation was not retried"
    store = open_store(audit)
    try:
        calls = [s.event.data for s in await store.events(run_id) if s.event.kind == "tool.call"]
    finally:
        await store.close()
    assert [(c["outcome"], c["attempt"]) for c in calls] == [("completed", attempts[-1])]


async def test_plain_code_gets_the_same_gate(governed: Make) -> None:
    gov = await governed(policy=Policy(blocked_tools=("a2a:research.*",)))
    call = {"agent": "research", "skill": "echo", "input": "raw", "message_id": "m-raw-1"}
    _, cause = await gov.fail(Raw.run, "jamjet.a2a.send", call, None)
    assert root(cause).type == "ToolDeniedError" and "'a2a:research.echo'" in root(cause).message
    done = await gov.run_raw({**call, "agent": "poller", "message_id": f"m-{uuid.uuid4().hex}"})
    assert done == "raw"
    _, cause = await gov.fail(Raw.run, "jamjet.a2a.send", {"skill": "echo"}, None)
    assert root(cause).type == "ToolDeniedError" and "not an A2ADelegation" in root(cause).message


async def test_a_worker_refuses_a_delegation_that_reached_it_undecided(
    temporal_server: DevServer, governed: Make, agents: dict[str, Agent]
) -> None:
    """Defence in depth: a workflow on a worker without the plugin schedules the delegation on
    a queue served by a plugin worker; the activity refuses it, records it, sends nothing."""
    gov = await governed()
    plain = await Client.connect(temporal_server.address)
    queue = f"plain-{uuid.uuid4().hex[:8]}"
    run_id = f"ungated-{uuid.uuid4().hex[:8]}"
    message_id = f"m-{uuid.uuid4().hex}"
    call = {"agent": "research", "skill": "echo", "input": "x", "message_id": message_id}
    async with Worker(plain, task_queue=queue, workflows=[Raw]):
        with pytest.raises(WorkflowFailureError) as failed:
            await plain.execute_workflow(
                Raw.run, args=["jamjet.a2a.send", call, gov.queue], id=run_id, task_queue=queue
            )
    error = root(failed.value.cause)
    assert error.type == "ToolNotClearedError" and "'a2a:research.echo' refused" in error.message
    assert agents["streaming"].received(message_id) == []
    refused = [e.data for e in await gov.events(run_id)]
    assert [(d["tool"], d["a2a_agent"]) for d in refused] == [("a2a:research.echo", "research")]


async def _wait_for(probe: Callable[[], Any], within: float = 10) -> Any:
    deadline = time.monotonic() + within
    while True:
        found = probe()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return found
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def _scheduled_message_id(client: Client, run_id: str) -> str | None:
    try:
        return await message_id_of(client, run_id)
    except AssertionError:
        return None


async def _state_if(agent: Agent, task_id: str, state: str) -> bool:
    return await agent.task_state(task_id) == state
