"""MCP tools in the durable runtime, against a real MCP server (tests/mcp/server.py over stdio)
on the real dev server: calls, the policy gate and its audit trail, look-alike names, secrets
kept out of history, typed failures, a server that dies, replay without any server."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError
from temporalio.worker import Replayer, Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin, acting_as
from jamjet_temporal._shared._canonical import digest
from jamjet_temporal.approvals._client import find_pending, sign, submit
from jamjet_temporal.approvals._identity import generate_identity
from jamjet_temporal.approvals._load import parse_approvals
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.plugin import AuditConfig
from jamjet_temporal.policy import Policy
from tests.identities import PORTAL
from tests.mcp.helpers import Make, readable, root, stdio
from tests.mcp.mcp_workflows import WORKFLOWS, Attempts, CallTool, Raw, RawOnQueue, Tour


async def test_a_workflow_lists_and_calls_tools_and_each_call_is_audited(
    governed: Make, tmp_path: Path
) -> None:
    gov = await governed()
    target = tmp_path / "notes.txt"
    calls = [
        ("add", {"a": 1, "b": 2}),
        ("shout", {"text": '{"json": "stays text"}'}),
        ("write_file", {"path": str(target), "text": "first line"}),
    ]
    run_id = f"tour-{uuid.uuid4().hex[:8]}"
    result = await gov.client.execute_workflow(
        Tour.run, args=["files", calls], id=run_id, task_queue=gov.queue
    )
    names = {tool["name"]: tool for tool in result["tools"]}
    assert {"add", "echo", "shout", "write_file", "fail"} <= set(names)
    assert names["write_file"]["input_schema"]["required"] == ["path", "text"]
    assert names["add"]["description"] == "Add two numbers."
    assert result["results"] == [
        {"result": 3.0},  # structured content
        '{"JSON": "STAYS TEXT"}',  # one text: the string, JSON-looking or not
        f"wrote 10 characters to {target}",
    ]
    assert target.read_text() == "first line\n"

    events = await gov.events(run_id)
    trail = [(e.kind, e.data.get("tool") or e.data.get("subject")) for e in events]
    assert trail == [
        ("policy.decision", "files.add"),
        ("tool.call", "files.add"),
        ("policy.decision", "files.shout"),
        ("tool.call", "files.shout"),
        ("policy.decision", "files.write_file"),
        ("tool.call", "files.write_file"),
        ("run.closed", None),
    ], "list_tools is the runtime's own: not a tool call, not decided"
    decision, call = events[4].data, events[5].data
    assert decision["subject"] == "files.write_file" and decision["decision"] == "ALLOWED"
    assert decision["mcp_server"] == "files" and decision["activity"] == "jamjet.mcp.call_tool"
    assert call["mcp_server"] == "files" and call["outcome"] == "completed"
    listed = names["write_file"]
    assert call["args"] == [
        {
            "server": "files",
            "tool": "write_file",
            "arguments": {"path": str(target), "text": "first line"},
            "idempotency_key": None,
            # The tool as the run listed it, stamped by the gate, checked again by the worker.
            "listed": {
                "found": True,
                "schema_digest": digest(listed["input_schema"]),
                "annotations": listed["annotations"],
            },
        }
    ]
    assert call["result"] == f"wrote 10 characters to {target}"
    assert isinstance(call["latency_ms"], float)

    # Replay needs no MCP server: every answer is in the history.
    history = await gov.client.get_workflow_handle(run_id).fetch_history()
    replayer = Replayer(
        workflows=WORKFLOWS,
        plugins=[JamJetPlugin(JamJetConfig(audit=AuditConfig(store=gov.url)))],
    )
    await replayer.replay_workflow(history)
    assert len(await gov.events(run_id)) == len(events), "replay wrote audit events"


async def test_a_blocked_mcp_tool_is_refused_by_its_alias_dot_tool_name(
    governed: Make, tmp_path: Path
) -> None:
    gov = await governed(policy=Policy(blocked_tools=("files.write_*",)))
    target = tmp_path / "never.txt"
    run_id, cause = await gov.fail(
        CallTool.run, "files", "write_file", {"path": str(target), "text": "x"}, True
    )
    refused = root(cause)
    assert refused.type == "ToolDeniedError"
    assert "'files.write_file' refused" in refused.message
    assert not target.exists(), "the blocked tool ran"
    events = await gov.events(run_id)
    decisions = [e.data for e in events if e.kind == "policy.decision"]
    assert [(d["subject"], d["decision"], d["rule"], d["scope"]) for d in decisions] == [
        ("files.write_file", "BLOCKED", "files.write_*", "run")
    ]
    assert [e for e in events if e.kind == "tool.call"] == []
    # Another tool of the same server is not caught by the rule.
    assert await gov.run(CallTool.run, "files", "echo", {"text": "hi"}, True) == {"result": "hi"}


async def test_require_approval_holds_an_mcp_tool_until_an_approver_signs(
    governed: Make, tmp_path: Path
) -> None:
    alice, _ = generate_identity("alice@example.com", tmp_path / "keys")
    approvals = parse_approvals(
        f"""
approvers:
  - {{id: alice@example.com, public_key: "{alice.public_key}"}}
clients:
  - {{id: portal, public_key: "{PORTAL.public_key}", acts_for: ["*@example.com"]}}
rules:
  - {{action: "files.write_*", approvers: [alice@example.com]}}
""",
        "approvals.yaml",
    )
    gov = await governed(
        policy=Policy(require_approval_for=("files.write_*",)), approvals=approvals
    )
    target = tmp_path / "approved.txt"
    run_id = f"held-{uuid.uuid4().hex[:8]}"
    with acting_as("requester@example.com", signer=PORTAL):
        handle = await gov.client.start_workflow(
            CallTool.run,
            args=["files", "write_file", {"path": str(target), "text": "once"}, False],
            id=run_id,
            task_queue=gov.queue,
        )
    request = None
    for _ in range(100):
        try:
            request = await find_pending(gov.client, run_id, None)
            break
        except Exception:
            await asyncio.sleep(0.1)
    assert request is not None, "the call was not held for approval"
    # The approver sees the tool as the policy names it, with its arguments by name.
    assert request.action == "files.write_file"
    assert request.args == {"path": str(target), "text": "once"}
    assert not target.exists(), "the tool ran before it was approved"
    assert (await submit(gov.client, sign(alice, request, "approved"))).complete
    assert str(await handle.result()).startswith("wrote 4 characters")
    assert target.read_text() == "once\n"
    decisions = [e.data for e in await gov.events(run_id) if e.kind == "policy.decision"]
    assert [(d["subject"], d["decision"], d["rule"]) for d in decisions] == [
        ("files.write_file", "ALLOWED", "files.write_*")
    ]
    assert decisions[0]["reason"] == "approved by alice@example.com (apr_1)"


async def test_look_alike_names_do_not_slip_past_a_block_rule(
    governed: Make, tmp_path: Path
) -> None:
    gov = await governed(policy=Policy(blocked_tools=("files.write_*",)))
    target = tmp_path / "attacked.txt"
    arguments = {"path": str(target), "text": "pwned"}
    spellings = [
        ("FILES", "write_file"),  # case
        ("files", "Write_File"),
        ("files", "WRITE_FILE"),
        ("ｆｉｌｅｓ", "write_file"),  # fullwidth (NFKC)
        ("files", "ｗｒｉｔｅ_file"),
        ("files", "wrіte_file"),  # Cyrillic і: not a compatibility form
        ("files", "write\u200b_file"),  # zero-width space
        ("files", "write_file\u0000"),  # caught by the glob's '*' first
        ("files.write", "file"),  # a dot in the alias: the subject split another way
        ("files", "write_file"),  # the real thing, for comparison
    ]
    run_id = f"alike-{uuid.uuid4().hex[:8]}"
    outcomes = await gov.client.execute_workflow(
        Attempts.run,
        [(server, tool, arguments) for server, tool in spellings],
        id=run_id,
        task_queue=gov.queue,
    )
    assert not target.exists(), f"a look-alike reached write_file: {outcomes}"
    by_rule = {"outcome": "ToolDeniedError", "scope": "run", "rule": "files.write_*"}
    by_name = {"outcome": "ToolDeniedError", "scope": "runtime", "rule": None}
    assert outcomes == [
        by_rule,
        by_rule,
        by_rule,
        by_rule,
        by_rule,
        by_name,
        by_name,
        by_rule,
        by_name,
        by_rule,
    ]
    events = await gov.events(run_id)
    decisions = [e.data for e in events if e.kind == "policy.decision"]
    assert [d["subject"] for d in decisions] == [f"{s}.{t}" for s, t in spellings]
    assert all(d["decision"] == "BLOCKED" for d in decisions)
    assert "MCP's tool name characters" in str(decisions[5]["reason"])
    assert [e for e in events if e.kind == "tool.call"] == []


async def test_a_secret_in_env_is_filled_on_the_worker_and_never_in_history(
    governed: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"s3cret-{uuid.uuid4().hex}"
    monkeypatch.setenv("JJ_MCP_TEST_SECRET", secret)
    servers = {"files": stdio(env={"API_TOKEN": "${JJ_MCP_TEST_SECRET}", "PLAIN": "$${NOT_A_VAR}"})}
    gov = await governed(servers)
    run_id = f"secret-{uuid.uuid4().hex[:8]}"
    digest = await gov.client.execute_workflow(
        CallTool.run,
        args=["files", "env_sha256", {"name": "API_TOKEN"}, True],
        id=run_id,
        task_queue=gov.queue,
    )
    assert digest == hashlib.sha256(secret.encode()).hexdigest(), "the server got the secret"
    plain = await gov.run(CallTool.run, "files", "env_sha256", {"name": "PLAIN"}, True)
    assert plain == hashlib.sha256(b"${NOT_A_VAR}").hexdigest(), "$$ is a literal $"

    history = await gov.client.get_workflow_handle(run_id).fetch_history()
    text = readable(json.loads(history.to_json()))
    assert "env_sha256" in text  # the history is readable here: the check below is not vacuous
    assert secret not in text
    assert "JJ_MCP_TEST_SECRET" not in text, "not even the variable's name goes to history"
    trail = json.dumps([e.model_dump(mode="json") for e in await gov.events(run_id)])
    assert "env_sha256" in trail and secret not in trail


async def test_a_missing_variable_is_a_clear_final_error_naming_it(governed: Make) -> None:
    servers = {"files": stdio(env={"API_TOKEN": "${JJ_MCP_TEST_UNSET_VARIABLE}"})}
    os.environ.pop("JJ_MCP_TEST_UNSET_VARIABLE", None)
    gov = await governed(servers)
    _, cause = await gov.fail(CallTool.run, "files", "echo", {"text": "x"}, False)
    error = root(cause)
    assert error.type == "ConfigError" and error.non_retryable
    assert "JJ_MCP_TEST_UNSET_VARIABLE" in error.message and "env.API_TOKEN" in error.message
    assert "'files'" in error.message


async def test_an_error_result_is_a_typed_final_failure_recorded_as_such(governed: Make) -> None:
    gov = await governed()
    run_id, cause = await gov.fail(
        CallTool.run, "files", "fail", {"message": "disk on fire"}, False
    )
    error = root(cause)
    assert error.type == "McpToolError" and error.non_retryable
    assert "MCP tool 'files.fail' returned an error" in error.message
    assert "disk on fire" in error.message
    assert isinstance(cause, ActivityError) and cause.retry_state is not None
    calls = [e.data for e in await gov.events(run_id) if e.kind == "tool.call"]
    assert len(calls) == 1 and calls[0]["outcome"] == "failed" and calls[0]["attempt"] == 1
    assert "disk on fire" in str(calls[0]["error"])

    # A tool the server does not have: the server's own error result, typed the same.
    _, cause = await gov.fail(CallTool.run, "files", "no_such_tool", {}, False)
    error = root(cause)
    assert error.type == "McpToolError" and "no_such_tool" in error.message


async def test_an_unknown_alias_is_a_final_error_naming_the_known_ones(governed: Make) -> None:
    gov = await governed({"files": stdio(), "other": stdio()})
    run_id, cause = await gov.fail(CallTool.run, "nowhere", "echo", {"text": "x"}, False)
    error = root(cause)
    assert error.type == "ConfigError" and error.non_retryable
    assert "unknown MCP server 'nowhere'" in error.message
    assert "this worker knows files, other" in error.message
    # The server's tools could not be listed, so the call was not decided: recorded as refused.
    events = await gov.events(run_id)
    assert [e for e in events if e.kind == "tool.call"] == []
    refusals = [e.data for e in events if e.kind == "policy.decision"]
    assert [(d["subject"], d["decision"], d["scope"]) for d in refusals] == [
        ("nowhere.echo", "BLOCKED", "runtime")
    ]
    assert "tools of MCP server 'nowhere' could not be listed" in str(refusals[0]["reason"])
    assert "this worker knows files, other" in str(refusals[0]["reason"])


async def test_a_server_that_does_not_start_names_its_command_and_stderr(governed: Make) -> None:
    crash = "import sys; sys.stderr.write('boom: no config file\\n'); sys.exit(3)"
    servers = {
        "broken": {"command": sys.executable, "args": ["-c", crash]},
        "missing": {"command": "/nonexistent/mcp-server-binary"},
    }
    gov = await governed(servers)
    _, cause = await gov.fail(CallTool.run, "broken", "echo", {"text": "x"}, True)
    error = root(cause)
    assert error.type == "McpServerError"
    assert "MCP server 'broken'" in error.message and "could not be started" in error.message
    assert "boom: no config file" in error.message
    assert "sys.exit(3)" in error.message  # the command, as configured
    _, cause = await gov.fail(CallTool.run, "missing", "echo", {"text": "x"}, False)
    error = root(cause)
    assert error.type == "McpServerError" and error.non_retryable
    assert "/nonexistent/mcp-server-binary" in error.message


async def test_a_server_that_died_is_started_again(governed: Make) -> None:
    gov = await governed()
    first = int(await gov.run(CallTool.run, "files", "pid", {}, False))
    assert int(await gov.run(CallTool.run, "files", "pid", {}, False)) == first, "one per worker"
    os.kill(first, signal.SIGKILL)
    second = int(await gov.run(CallTool.run, "files", "pid", {}, False))
    assert second != first


async def test_plain_code_gets_the_same_gate_and_cannot_list_tools_itself(
    governed: Make, tmp_path: Path
) -> None:
    gov = await governed(policy=Policy(blocked_tools=("files.write_*",)))
    target = tmp_path / "raw.txt"
    # Scheduling the MCP activity by name with a plain dict: decided on the tool it names.
    _, cause = await gov.fail(
        Raw.run,
        "jamjet.mcp.call_tool",
        {"server": "files", "tool": "write_file", "arguments": {"path": str(target), "text": "x"}},
    )
    assert root(cause).type == "ToolDeniedError" and "'files.write_file'" in root(cause).message
    assert not target.exists()
    done = await gov.run(
        Raw.run,
        "jamjet.mcp.call_tool",
        {"server": "files", "tool": "echo", "arguments": {"text": "raw"}},
    )
    assert done == {"result": "raw"}
    # An argument that names no tool is refused, not sent.
    _, cause = await gov.fail(Raw.run, "jamjet.mcp.call_tool", {"path": str(target)})
    assert root(cause).type == "ToolDeniedError" and "not an McpCall" in root(cause).message
    # Listing tools is the runtime's: plain code scheduling it is refused.
    _, cause = await gov.fail(Raw.run, "jamjet.mcp.list_tools", "files")
    assert "runtime-internal" in root(cause).message


async def test_a_worker_refuses_an_mcp_call_that_reached_it_undecided(
    temporal_server: DevServer, governed: Make, tmp_path: Path
) -> None:
    """Defence in depth: a workflow on a worker without the plugin schedules the MCP call on a
    queue served by a plugin worker; the activity refuses it and records the attempt."""
    gov = await governed()
    target = tmp_path / "ungated.txt"
    plain = await Client.connect(temporal_server.address)
    queue = f"plain-{uuid.uuid4().hex[:8]}"
    run_id = f"ungated-{uuid.uuid4().hex[:8]}"
    call = {
        "server": "files",
        "tool": "write_file",
        "arguments": {"path": str(target), "text": "x"},
    }
    async with Worker(plain, task_queue=queue, workflows=[RawOnQueue]):
        with pytest.raises(WorkflowFailureError) as failed:
            await plain.execute_workflow(
                RawOnQueue.run, args=[gov.queue, call], id=run_id, task_queue=queue
            )
    assert failed.value.cause is not None
    error = root(failed.value.cause)
    assert error.type == "ToolNotClearedError"
    assert "'files.write_file' refused" in error.message
    assert not target.exists()
    refused = [e.data for e in await gov.events(run_id)]
    assert [(d["tool"], d["mcp_server"]) for d in refused] == [("files.write_file", "files")]


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    """The same tools served over streamable HTTP in this process, behind a bearer token."""
    import threading

    import uvicorn

    from jamjet_temporal.cli._devserver import free_port
    from tests.mcp.server import server

    app = server.streamable_http_app()

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            sent = dict(scope["headers"]).get(b"authorization", b"")
            if sent != f"Bearer {HTTP_TOKEN}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await app(scope, receive, send)

    port = free_port()
    config = uvicorn.Config(guarded, host="127.0.0.1", port=port, log_level="warning")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not runner.started:
        assert time.monotonic() < deadline, "the HTTP MCP server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        runner.should_exit = True
        thread.join(10)


HTTP_TOKEN = f"bearer-{uuid.uuid4().hex}"


async def test_an_http_server_with_a_bearer_token_from_the_workers_environment(
    governed: Make, http_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JJ_MCP_TEST_BEARER", HTTP_TOKEN)
    wrong = f"wrong-{uuid.uuid4().hex}"
    monkeypatch.setenv("JJ_MCP_TEST_WRONG", wrong)
    servers = {
        "web": {
            "transport": "streamable_http",
            "url": http_server,
            "headers": {"Authorization": "Bearer ${JJ_MCP_TEST_BEARER}"},
        },
        "intruder": {
            "url": http_server,
            "headers": {"Authorization": "Bearer ${JJ_MCP_TEST_WRONG}"},
        },
    }
    gov = await governed(servers)
    run_id = f"http-{uuid.uuid4().hex[:8]}"
    result = await gov.client.execute_workflow(
        Tour.run,
        args=["web", [("add", {"a": 2, "b": 5}), ("shout", {"text": "over http"})]],
        id=run_id,
        task_queue=gov.queue,
    )
    assert result["results"] == [{"result": 7.0}, "OVER HTTP"]
    history = await gov.client.get_workflow_handle(run_id).fetch_history()
    assert HTTP_TOKEN not in readable(json.loads(history.to_json()))

    failed_id, cause = await gov.fail(CallTool.run, "intruder", "echo", {"text": "x"}, True)
    error = root(cause)
    assert error.type == "McpServerError" and "'intruder'" in error.message
    history = await gov.client.get_workflow_handle(failed_id).fetch_history()
    assert wrong not in readable(json.loads(history.to_json())), "the token leaked in the error"
