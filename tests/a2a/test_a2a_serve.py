"""Serving workflows as an A2A agent (A2AServer, ``jamjet a2a serve``) on the real dev server:
a plain a2a-sdk client calls it (streaming and not), a message sent twice is one task, tasks/get
reads the run, cancel cancels it, an approval inside the run is ``auth-required``, inputs are
checked before a run starts, and the server killed mid-task and started again loses nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    SendMessageConfiguration,
    SendMessageRequest,
    TaskState,
)
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError
from google.protobuf import json_format
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin, acting_as
from jamjet_temporal._shared._wire import A2A_APPROVAL_META, A2A_TASK_DETAIL
from jamjet_temporal.a2a import CallerIdentity, TrustedCallers, generate_caller_key, task_id_for
from jamjet_temporal.a2a._activities import parts_value
from jamjet_temporal.approvals._client import find_pending, sign, submit
from jamjet_temporal.approvals._identity import generate_identity
from jamjet_temporal.approvals._load import ApprovalConfig, parse_approvals
from jamjet_temporal.cli._devserver import DevServer, free_port
from jamjet_temporal.plugin import AuditConfig
from tests.a2a.a2a_workflows import Delegate
from tests.a2a.served_workflows import guarded, plan, slow, summarize
from tests.a2a.serving import card_of, message, plain_client, send, serve_process, serving
from tests.identities import PORTAL, TRUSTED_PORTAL

SKILLS = [summarize, plan, slow]


def state(task: Any) -> str:
    return str(TaskState.Name(task.status.state))


@pytest.mark.parametrize("streaming", [True, False])
async def test_a_plain_a2a_sdk_client_calls_a_served_workflow(
    temporal_server: DevServer, tmp_path: Path, streaming: bool
) -> None:
    async with serving(
        temporal_server.address, SKILLS, SKILLS, tmp_path, allow_anonymous=True
    ) as served:
        async with plain_client(served.url, streaming=streaming) as client:
            card = await card_of(served.url)
            assert [s.id for s in card.skills] == [
                "test-served.summarize",
                "test-served.plan",
                "test-served.slow",
            ]
            assert card.skills[0].description == "Summarizes a topic in one line (for the tests)."
            assert card.capabilities.streaming
            assert not card.security_schemes  # anonymous: nothing advertised

            sent = message("tides", skill="test-served.summarize")
            events = await send(client, SendMessageRequest(message=sent))
            final = events[-1]
            task = final.task if final.HasField("task") else None
            if streaming:
                # The task first, then the artifact and the final status as updates.
                kinds = [e.WhichOneof("payload") for e in events]
                assert kinds[0] == "task" and kinds[-1] == "status_update", kinds
                assert "artifact_update" in kinds
                task = await client.get_task(GetTaskRequest(id=events[0].task.id))
            assert task is not None
            assert state(task) == "TASK_STATE_COMPLETED"
            assert parts_value(task.artifacts[0].parts) == {
                "topic": "tides",
                "summary": "NOTES ON TIDES",
            }
            # The task is the workflow: its id is the run's id, derived from the message id.
            assert task.id == task_id_for(None, sent.message_id)
            described = await served.client.get_workflow_handle(task.id).describe()
            assert described.status == WorkflowExecutionStatus.COMPLETED
            assert described.task_queue == served.queue
            assert [m.message_id for m in task.history] == [sent.message_id]

            # Several parameters take an object by their names; defaults may be left out.
            events = await send(
                client,
                SendMessageRequest(
                    message=message({"goal": "ship", "steps": 3}, skill="test-served.plan")
                ),
            )
            task = await client.get_task(GetTaskRequest(id=_task_id(events)))
            assert parts_value(task.artifacts[0].parts) == [
                "ship: step 1",
                "ship: step 2",
                "ship: step 3",
            ]


def _task_id(events: list[Any]) -> str:
    first = events[0]
    kind = first.WhichOneof("payload")
    return str(first.task.id if kind == "task" else getattr(first, kind).task_id)


async def test_the_same_message_sent_twice_is_one_task_and_one_run(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    async with serving(
        temporal_server.address, SKILLS, SKILLS, tmp_path, allow_anonymous=True
    ) as served:
        async with plain_client(served.url, streaming=False) as client:
            sent = message("once", skill="test-served.summarize")
            first = await send(client, SendMessageRequest(message=sent))
            # Running and closed alike: the second send answers with the same task.
            again = await send(client, SendMessageRequest(message=sent))
            assert first[-1].task.id == again[-1].task.id
            assert state(again[-1].task) == "TASK_STATE_COMPLETED"
            # Sent with the task id (as a caller retrying a lost answer might): the same.
            resent = message("once", skill="test-served.summarize", message_id=sent.message_id)
            resent.task_id = first[-1].task.id
            third = await send(client, SendMessageRequest(message=resent))
            assert third[-1].task.id == first[-1].task.id
        runs = [
            run async for run in served.client.list_workflows(f'WorkflowId = "{first[-1].task.id}"')
        ]
        assert len(runs) == 1, "the message started a second run"


async def test_tasks_get_list_and_cancel_read_and_drive_the_run(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    async with serving(
        temporal_server.address, SKILLS, SKILLS, tmp_path, allow_anonymous=True
    ) as served:
        async with plain_client(served.url, streaming=False) as client:
            sent = message("long", skill="test-served.slow")
            events = await send(
                client,
                SendMessageRequest(
                    message=sent, configuration=SendMessageConfiguration(return_immediately=True)
                ),
            )
            task_id = events[-1].task.id
            assert state(events[-1].task) == "TASK_STATE_WORKING"
            got = await client.get_task(GetTaskRequest(id=task_id))
            assert state(got) == "TASK_STATE_WORKING"
            listed = await client.list_tasks(ListTasksRequest())
            assert task_id in [t.id for t in listed.tasks]

            canceled = await client.cancel_task(CancelTaskRequest(id=task_id))
            assert state(canceled) == "TASK_STATE_CANCELED"
            described = await served.client.get_workflow_handle(task_id).describe()
            assert described.status == WorkflowExecutionStatus.CANCELED
            with pytest.raises(TaskNotFoundError):
                await client.get_task(GetTaskRequest(id=f"a2a-{uuid.uuid4().hex}"))


async def test_an_input_that_does_not_fit_the_skill_is_invalid_params_and_starts_nothing(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    async with serving(
        temporal_server.address, SKILLS, SKILLS, tmp_path, allow_anonymous=True
    ) as served:
        async with plain_client(served.url, streaming=False) as client:
            for value, skill, said in [
                ({"goal": "x", "steps": "many"}, "test-served.plan", "'steps'"),
                ({"steps": 2}, "test-served.plan", "needs 'goal'"),
                ({"goal": "x", "extra": 1}, "test-served.plan", "unknown: extra"),
                ("x", "test-served.nope", "no skill 'test-served.nope'"),
                ("x", None, "name a skill"),
            ]:
                sent = message(value, skill=skill)
                with pytest.raises(InvalidParamsError) as refused:
                    await send(client, SendMessageRequest(message=sent))
                assert said in str(refused.value), str(refused.value)
                runs = served.client.list_workflows(
                    f'WorkflowId = "{task_id_for(None, sent.message_id)}"'
                )
                assert [r async for r in runs] == []


async def test_an_approval_inside_the_run_is_auth_required_until_approved(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    """The caller's token names its user; the server (a client the callee's approvals config
    trusts) starts the run acting for that user, whose approval request is auth-required."""
    alice, _ = generate_identity("alice@example.com", tmp_path / "keys")
    caller = CallerIdentity.generate("coordinator")
    approvals = parse_approvals(
        f"""
approvers:
  - {{id: alice@example.com, public_key: "{alice.public_key}"}}
clients:
  - {{id: portal, public_key: "{PORTAL.public_key}", acts_for: ["*@example.com"]}}
rules:
  - action: quick_*
    approvers: [alice@example.com]
""",
        "approvals.yaml",
    )
    audit = f"sqlite:///{tmp_path / 'callee.db'}"
    config = JamJetConfig(audit=AuditConfig(store=audit), approvals=approvals)
    async with serving(
        temporal_server.address,
        [guarded],
        [guarded],
        tmp_path,
        config=config,
        trusted_callers={"coordinator": caller.public_key},
        signer=PORTAL,
    ) as served:
        token, _ = caller.sign(served.url, user="bob@example.com")
        bearer = {"Authorization": f"Bearer {token}"}
        async with plain_client(served.url, streaming=True, headers=bearer) as client:
            events = await send(client, SendMessageRequest(message=message(5.0)))
            # The stream stops where the run waits: auth-required, naming the approval.
            last = events[-1]
            status = last.status_update.status if last.HasField("status_update") else None
            if status is None:
                status = last.task.status
            assert TaskState.Name(status.state) == "TASK_STATE_AUTH_REQUIRED", str(status)
            meta = json_format.MessageToDict(status.message.metadata)[A2A_APPROVAL_META]
            assert meta["action"] == "quick_export" and meta["eligible"] == ["alice@example.com"]
            text = status.message.parts[0].text
            assert "waiting for approval of 'quick_export'" in text and "jamjet approve" in text
            task_id = _task_id(events)

            request = await find_pending(served.client, task_id, None)
            assert request.requester == "bob@example.com"  # the caller's user, proven
            result = await submit(served.client, sign(alice, request, "approved", "fine"))
            assert result.complete
            for _ in range(100):
                task = await client.get_task(GetTaskRequest(id=task_id))
                if state(task) == "TASK_STATE_COMPLETED":
                    break
                await asyncio.sleep(0.1)
            assert parts_value(task.artifacts[0].parts) == ["alice@example.com"]

        # Our own caller follows an approval wait on the agent's side (it is not final): the
        # delegation waits, shows it, and completes once the approver says yes.
        key_file = tmp_path / "keys" / "coordinator.a2a.key"
        served.server.trusted = TrustedCallers(
            {"coordinator": generate_caller_key("coordinator", key_file).public_key}
        )
        caller_config = JamJetConfig(
            audit=AuditConfig(store=f"sqlite:///{tmp_path / 'caller.db'}"),
            approvals=ApprovalConfig(clients=(TRUSTED_PORTAL,)),
            a2a_agents={
                "exporter": {
                    "url": served.url,
                    "auth": {"type": "signed", "key_file": str(key_file)},
                }
            },
        )
        caller = await Client.connect(
            temporal_server.address, plugins=[JamJetPlugin(caller_config)]
        )
        queue = f"caller-{uuid.uuid4().hex[:8]}"
        async with Worker(caller, task_queue=queue, workflows=[Delegate]):
            with acting_as("bob@example.com", signer=PORTAL):
                handle = await caller.start_workflow(
                    Delegate.run,
                    args=["exporter", "test-served.guarded", 7.0, None, {"heartbeat": 2}],
                    id=f"caller-{uuid.uuid4().hex[:8]}",
                    task_queue=queue,
                )
            kept: dict[str, Any] = {}
            for _ in range(200):
                described = await handle.describe()
                for pending in described.raw_description.pending_activities:
                    for payload in pending.heartbeat_details.payloads:
                        kept = json.loads(payload.data).get("jamjet", {}).get(A2A_TASK_DETAIL, {})
                if kept.get("state") == "auth-required":
                    break
                await asyncio.sleep(0.1)
            assert kept.get("state") == "auth-required", kept
            assert "waiting for approval of 'quick_export'" in kept["message"]
            request = await find_pending(served.client, kept["task_id"], None)
            assert request.requester == "bob@example.com"
            await submit(served.client, sign(alice, request, "approved", "ok"))
            assert await asyncio.wait_for(handle.result(), 60) == ["alice@example.com"]


async def test_the_server_killed_mid_task_and_started_again_completes_the_one_task(
    temporal_server: DevServer, tmp_path: Path, task_queue: str
) -> None:
    """A caller (our delegate) follows a task while the callee's process (server and worker)
    is SIGKILLed and started again on the same port: the task completes, once."""
    port = free_port()
    attempts = tmp_path / "attempts.log"
    env = {"A2A_ATTEMPTS_LOG": str(attempts)}
    args = ("--anonymous", "--audit-store", f"sqlite:///{tmp_path / 'callee.db'}")
    target = "tests.a2a.served_workflows:slow"
    log = tmp_path / "serve.log"
    first = serve_process(temporal_server.address, target, port, *args, env=env, log=log)
    second: subprocess.Popen[bytes] | None = None
    url = f"http://127.0.0.1:{port}"
    try:
        config = JamJetConfig(
            audit=AuditConfig(store=f"sqlite:///{tmp_path / 'caller.db'}"),
            a2a_agents={"cruncher": {"url": url}},
        )
        client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
        async with Worker(client, task_queue=task_queue, workflows=[Delegate]):
            handle = await client.start_workflow(
                Delegate.run,
                args=["cruncher", "test-served.slow", "data", None, {}],
                id=f"caller-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )
            # Wait until the remote task's workflow is at work, then kill the whole process.
            for _ in range(200):
                if attempts.exists() and attempts.read_text().strip():
                    break
                await asyncio.sleep(0.05)
            assert attempts.exists(), "the served task never started working"
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            await asyncio.sleep(1.0)  # the caller's polls now fail: it retries, then follows
            second = serve_process(temporal_server.address, target, port, *args, env=env, log=log)
            assert await asyncio.wait_for(handle.result(), 90) == "crunched: data"
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(15)
    # One task: one workflow run for the message, its work resumed (attempt 2) after the kill.
    lines = attempts.read_text().split()
    workflow_ids = set(lines[0::2])
    assert len(workflow_ids) == 1, lines
    task_id = workflow_ids.pop()
    runs = [r async for r in client.list_workflows(f'WorkflowId = "{task_id}"')]
    assert len(runs) == 1
    assert lines[1::2][-1] != "1", "the work was not resumed by the restarted server's worker"
    remote = await client.get_workflow_handle(task_id).result()
    assert remote == "crunched: data"
    print(json.dumps({"task": task_id, "attempts": lines[1::2]}))
