"""The official MCP servers, started by the tests: `mcp-server-time` (PyPI) and
`@modelcontextprotocol/server-filesystem` (npm, installed in .ci/node by .ci/run; skipped with
the reason when node or the package is missing). Plain workflow code, YAML pipelines and agents
call them through the gate; their annotations are policy input; a write waits for approval; a
worker SIGKILLed while a write's answer is on its way leaves the file written once, right."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin, acting_as
from jamjet_temporal.approvals._client import find_pending, sign, submit
from jamjet_temporal.approvals._identity import generate_identity
from jamjet_temporal.approvals._load import parse_approvals
from jamjet_temporal.audit import open_store
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.modelserver import ModelServer
from jamjet_temporal.pipeline import PIPELINE_WORKFLOW, PipelineResult, PipelineRun
from jamjet_temporal.pipeline._spec import parse_pipeline
from jamjet_temporal.plugin import AuditConfig
from jamjet_temporal.policy import parse_policy
from tests.identities import PORTAL
from tests.mcp.agent_workflows import library, shout
from tests.mcp.helpers import (
    FILESYSTEM_SERVER,
    NODE,
    ROOT,
    Make,
    activity_types,
    filesystem_server,
    needs_filesystem_server,
    needs_time_server,
    shelf,
    shelf_script,
    time_server,
)
from tests.mcp.mcp_workflows import CallTool, Durable, Steps

#: The annotations decide: what a server marks destructive is blocked, the rest allowed.
NO_DESTRUCTIVE = """
rules:
  - {match: "filesystem.*", when: destructive, action: block}
  - {match: "*", action: allow}
blocked_tools: ["filesystem.move_*"]
"""


def step(server: str, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"op": "call", "server": server, "tool": tool, "arguments": arguments or {}}


@needs_time_server
async def test_plain_code_calls_the_time_server_by_its_policy_name(governed: Make) -> None:
    gov = await governed({"time": time_server()})
    run_id = f"time-{uuid.uuid4().hex[:8]}"
    outcomes = await gov.run(
        Steps.run,
        [
            {
                "op": "dotted",  # await mcp.call("time.get_current_time", {...})
                "server": "time",
                "tool": "get_current_time",
                "arguments": {"timezone": "UTC"},
            },
            step("time", "get_current_time", {"timezone": 5}),  # the schema says a string
            step("time", "get_current_time", {}),  # a required argument left out
            step("time", "get_time"),  # no such tool
        ],
        id=run_id,
    )
    now = outcomes[0]
    assert now["outcome"] == "done", now
    assert now["result"]["timezone"] == "UTC"
    assert datetime.fromisoformat(now["result"]["datetime"]).utcoffset() is not None
    for bad in outcomes[1:3]:
        assert bad["outcome"] == "McpToolError" and bad["retryable"] is False
        assert "MCP tool 'time.get_current_time' returned an error" in bad["message"]
        assert "timezone" in bad["message"]
    unknown = outcomes[3]
    assert unknown["outcome"] == "McpToolError" and unknown["retryable"] is False
    assert "MCP tool 'time.get_time' does not exist" in unknown["message"]
    assert "it lists: convert_time, get_current_time" in unknown["message"]

    events = await gov.events(run_id)
    decision = next(e.data for e in events if e.kind == "policy.decision")
    assert decision["subject"] == "time.get_current_time"
    assert decision["mcp_annotations"] == {
        "readOnlyHint": True,
        "destructiveHint": False,
        "idempotentHint": True,
        "openWorldHint": False,
    }
    kinds = activity_types(await gov.history(run_id))
    assert kinds.count("jamjet.mcp.list_tools") == 1 and kinds[0] == "jamjet.mcp.list_tools"


@needs_filesystem_server
async def test_the_filesystem_servers_annotations_and_globs_decide(
    governed: Make, tmp_path: Path
) -> None:
    folder = shelf(tmp_path)
    policy = parse_policy(NO_DESTRUCTIVE, "policy.yaml")
    gov = await governed({"filesystem": filesystem_server(folder)}, policy=policy)
    run_id = f"fs-{uuid.uuid4().hex[:8]}"
    outcomes = await gov.run(
        Steps.run,
        [
            step("filesystem", "list_directory", {"path": str(folder)}),
            step("filesystem", "read_text_file", {"path": str(folder / "notes.md")}),
            step("filesystem", "write_file", {"path": str(folder / "x.md"), "content": "x"}),
            step("filesystem", "create_directory", {"path": str(folder / "drafts")}),
            step(
                "filesystem",
                "move_file",
                {"source": str(folder / "todo.md"), "destination": str(folder / "done.md")},
            ),
            step("filesystem", "read_text_file", {"path": "/etc/hostname"}),
        ],
        id=run_id,
    )
    listing, read, write, mkdir, move, outside = outcomes
    assert listing["outcome"] == "done" and "[FILE] notes.md" in str(listing["result"])
    assert read["outcome"] == "done" and "MCP calls are activities." in str(read["result"])
    # write_file is marked destructive by its server: the `when: destructive` rule blocks it.
    assert write["outcome"] == "ToolDeniedError" and write["rule"] == "filesystem.*"
    assert "when destructive" in write["message"]
    # create_directory says destructiveHint: false: the catch-all allows it.
    assert mkdir["outcome"] == "done" and (folder / "drafts").is_dir()
    # blocked_tools by glob, whatever the annotations.
    assert move["outcome"] == "ToolDeniedError" and move["rule"] == "filesystem.move_*"
    # The server's own refusal is the tool's error result.
    assert outside["outcome"] == "McpToolError" and "Access denied" in outside["message"]
    assert not (folder / "x.md").exists() and (folder / "todo.md").exists()

    decisions = [e.data for e in await gov.events(run_id) if e.kind == "policy.decision"]
    summary = [(d["subject"], d["decision"], d["rule"]) for d in decisions]
    assert summary == [
        ("filesystem.list_directory", "ALLOWED", "*"),
        ("filesystem.read_text_file", "ALLOWED", "*"),
        ("filesystem.write_file", "BLOCKED", "filesystem.*"),
        ("filesystem.create_directory", "ALLOWED", "*"),
        ("filesystem.move_file", "BLOCKED", "filesystem.move_*"),
        ("filesystem.read_text_file", "ALLOWED", "*"),
    ]
    assert decisions[1]["mcp_annotations"] == {"readOnlyHint": True, "openWorldHint": False}


@needs_filesystem_server
async def test_a_destructive_write_waits_for_an_approver_then_runs(
    governed: Make, tmp_path: Path
) -> None:
    folder = shelf(tmp_path)
    alice, _ = generate_identity("alice@example.com", tmp_path / "keys")
    approvals = parse_approvals(
        f"""
approvers:
  - {{id: alice@example.com, public_key: "{alice.public_key}"}}
clients:
  - {{id: portal, public_key: "{PORTAL.public_key}", acts_for: ["*@example.com"]}}
rules:
  - {{action: "filesystem.*", approvers: [alice@example.com]}}
""",
        "approvals.yaml",
    )
    policy = parse_policy(
        """
rules:
  - {match: "*", when: destructive, action: require_approval}
  - {match: "*", action: allow}
""",
        "policy.yaml",
    )
    gov = await governed({"filesystem": filesystem_server(folder)}, policy, approvals)
    target = folder / "report.md"
    run_id = f"held-{uuid.uuid4().hex[:8]}"
    with acting_as("requester@example.com", signer=PORTAL):
        handle = await gov.client.start_workflow(
            CallTool.run,
            args=["filesystem", "write_file", {"path": str(target), "content": "# Report\n"}, True],
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
    assert request is not None, "write_file was not held for approval"
    assert request.action == "filesystem.write_file"
    assert request.args == {"path": str(target), "content": "# Report\n"}
    assert not target.exists(), "the write ran before it was approved"
    assert (await submit(gov.client, sign(alice, request, "approved"))).complete
    assert "Successfully wrote to" in str(await handle.result())
    assert target.read_text() == "# Report\n"
    decisions = [e.data for e in await gov.events(run_id) if e.kind == "policy.decision"]
    assert [(d["subject"], d["decision"], d["rule"]) for d in decisions] == [
        ("filesystem.write_file", "ALLOWED", "*")
    ]
    assert decisions[0]["reason"].startswith("approved by alice@example.com")


PIPELINE = """
workflow: {id: shelf-report}
mcp:
  servers:
    time: {transport: stdio, command: "{python}", args: ["-m", "mcp_server_time"]}
    filesystem: {command: "{node}", args: ["{index}", "{folder}"]}
policy:
  rules:
    - {match: "*", when: destructive, action: block}
    - {match: "*", action: allow}
nodes:
  listing:
    type: mcp_tool
    server: filesystem
    tool: list_directory
    input: {path: "{folder}"}
    output_to_state: files
    next: clock
  clock:
    type: tool
    server: time
    tool: get_current_time
    arguments: {timezone: UTC}
    output_key: now
    next: route
  route:
    type: branch
    conditions: [{if: "state.save", next: save}]
    default: end
  save:
    type: mcp_tool
    server: filesystem
    tool: write_file
    input: {path: "{folder}/report.md", content: "{{ state.files }}"}
    output_key: saved
"""


async def run_pipeline(
    temporal_server: DevServer, text: str, state: dict[str, Any], audit: str
) -> PipelineResult:
    spec = parse_pipeline(text, "shelf.yaml")
    config = JamJetConfig(mcp_servers=spec.mcp_servers, audit=AuditConfig(store=audit))
    client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
    queue = f"mcp-yaml-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue):
        result: PipelineResult = await client.execute_workflow(
            PIPELINE_WORKFLOW,
            PipelineRun(spec=spec, input=state),
            id=f"mcp-yaml-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
            result_type=PipelineResult,
        )
        return result


@needs_time_server
@needs_filesystem_server
async def test_a_yaml_pipeline_lists_and_calls_both_official_servers(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    folder = shelf(tmp_path)
    text = (
        PIPELINE.replace("{python}", sys.executable)
        .replace("{node}", str(NODE))
        .replace("{index}", str(FILESYSTEM_SERVER))
        .replace("{folder}", str(folder))
    )
    result = await run_pipeline(temporal_server, text, {}, f"sqlite:///{tmp_path / 'a.db'}")
    assert "[FILE] notes.md" in str(result.state["files"])
    assert result.state["now"]["timezone"] == "UTC"

    # The pipeline's own policy blocks what the server marks destructive.
    audit = f"sqlite:///{tmp_path / 'b.db'}"
    try:
        await run_pipeline(temporal_server, text, {"save": True}, audit)
    except WorkflowFailureError as err:
        cause = err.cause
        assert isinstance(cause, ApplicationError) and cause.type == "ToolDeniedError"
        assert "filesystem.write_file" in cause.message
    else:
        raise AssertionError("the destructive write was not blocked")
    assert not (folder / "report.md").exists()


@needs_time_server
@needs_filesystem_server
async def test_an_agent_is_offered_the_mcp_tools_and_each_call_is_gated(
    governed: Make, model_server: ModelServer, tmp_path: Path
) -> None:
    folder = shelf(tmp_path)
    marker = f"shelf-{uuid.uuid4().hex[:8]}"
    model_server.add_rules(shelf_script(marker, folder))
    servers = {"filesystem": filesystem_server(folder), "time": time_server()}
    gov = await governed(
        servers, model_url=model_server.base_url, workflows=[library], activities=[shout]
    )
    run_id = f"agent-{uuid.uuid4().hex[:8]}"
    result = await gov.run(library.run, f"What is on the shelf? [{marker}]", id=run_id)
    answer = result["answer"]
    assert answer["output"] == "Two notes; MCP calls are activities."
    calls = answer["tool_calls"]
    assert [(c["name"], c["outcome"]) for c in calls] == [
        ("filesystem__list_directory", "ok"),
        ("shout", "ok"),
        ("filesystem__read_text_file", "error"),  # isError: back to the model, run goes on
        ("filesystem__write_file", "blocked"),  # not among the tools offered
        ("filesystem__read_text_file", "ok"),
        ("time__get_current_time", "ok"),
    ]
    assert "Access denied" in calls[2]["reason"]
    assert "'filesystem.read_text_file'" in calls[2]["reason"]
    assert calls[4]["result"] == {"content": "# Notes\nMCP calls are activities.\n"}
    assert result["now"]["timezone"] == "UTC"
    assert not (folder / "x.md").exists()

    # The model was offered the MCP tools with the servers' JSON schemas.
    sent = next(c for c in model_server.calls() if marker in json.dumps(c["messages"]))
    offered = {tool["function"]["name"]: tool["function"] for tool in sent["tools"]}
    assert set(offered) == {
        "shout",
        "filesystem__read_text_file",
        "filesystem__list_directory",
        "time__get_current_time",
    }
    reader = offered["filesystem__read_text_file"]
    assert reader["parameters"]["required"] == ["path"] and "$schema" not in reader["parameters"]
    assert "Read the complete contents of a file" in reader["description"]
    tool_reply = next(
        m["content"]
        for c in model_server.calls()
        if marker in json.dumps(c["messages"])
        for m in c["messages"]
        if m.get("role") == "tool" and "Access denied" in str(m.get("content"))
    )
    assert tool_reply.startswith("tool error: MCP tool 'filesystem.read_text_file'")

    # Listed once per server (the agent's and the plain call's share the run's list).
    kinds = activity_types(await gov.history(run_id))
    assert kinds.count("jamjet.mcp.list_tools") == 2
    decisions = [e.data for e in await gov.events(run_id) if e.kind == "policy.decision"]
    assert [(d["subject"], d["decision"]) for d in decisions] == [
        ("filesystem.list_directory", "ALLOWED"),
        ("shout", "ALLOWED"),
        ("filesystem.read_text_file", "ALLOWED"),
        ("filesystem__write_file", "BLOCKED"),
        ("filesystem.read_text_file", "ALLOWED"),
        ("time.get_current_time", "ALLOWED"),
        ("time.get_current_time", "ALLOWED"),
    ]
    assert {d["scope"] for d in decisions if d["subject"].startswith("filesystem")} == {
        "agent:librarian"
    }


@needs_filesystem_server
async def test_a_worker_killed_while_an_approved_write_answers_leaves_one_right_file(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    """The filesystem server wrote the file; its answer is held back (slow_answers.py) and the
    worker is SIGKILLed before it hears it. Another worker retries the call (write_file is
    idempotent: it overwrites), the run completes once, the approval is not asked again."""
    folder = shelf(tmp_path)
    alice, _ = generate_identity("alice@example.com", tmp_path / "keys")
    approvals = tmp_path / "approvals.yaml"
    approvals.write_text(
        f"""
approvers:
  - {{id: alice@example.com, public_key: "{alice.public_key}"}}
clients:
  - {{id: portal, public_key: "{PORTAL.public_key}", acts_for: ["*@example.com"]}}
rules:
  - {{action: "filesystem.write_file", approvers: [alice@example.com]}}
"""
    )
    audit = f"sqlite:///{tmp_path / 'audit.db'}"
    log = tmp_path / "answers.log"
    queue = f"fs-crash-{uuid.uuid4().hex[:8]}"

    async def start_worker() -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.mcp.fs_worker",
            temporal_server.address,
            queue,
            audit,
            str(approvals),
            str(folder),
            str(log),
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"worker ready"
        return proc

    async def wait_for(text: str) -> None:
        for _ in range(300):
            if log.exists() and text in log.read_text():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{text!r} never came: {log.read_text() if log.exists() else ''}")

    client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin()])
    target = folder / "report.md"
    content = "# Shelf report\n\n- notes.md\n- todo.md\n"
    run_id = f"fs-crash-{uuid.uuid4().hex[:8]}"
    first = await start_worker()
    second: asyncio.subprocess.Process | None = None
    try:
        with acting_as("requester@example.com", signer=PORTAL):
            handle = await client.start_workflow(
                Durable.run,
                args=["filesystem", "write_file", {"path": str(target), "content": content}],
                id=run_id,
                task_queue=queue,
            )
        request = None
        for _ in range(200):
            try:
                request = await find_pending(client, run_id, None)
                break
            except Exception:
                await asyncio.sleep(0.1)
        assert request is not None and request.action == "filesystem.write_file"
        assert (await submit(client, sign(alice, request, "approved"))).complete
        await wait_for("answered")  # the server wrote the file; its answer is held back
        assert target.read_text() == content
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        second = await start_worker()
        result = await asyncio.wait_for(handle.result(), 120)
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.terminate()
                await proc.wait()
    assert "Successfully wrote to" in str(result)
    assert target.read_text() == content
    assert sorted(p.name for p in folder.iterdir()) == ["notes.md", "report.md", "todo.md"]
    assert log.read_text().count("called") == 2, "at least once: the call ran again"

    store = open_store(audit)
    try:
        events = [stored.event for stored in await store.events(run_id)]
    finally:
        await store.close()
    kinds = [e.kind for e in events]
    assert kinds.count("approval.requested") == 1, kinds
    decisions = [e.data for e in events if e.kind == "policy.decision"]
    assert [(d["subject"], d["decision"]) for d in decisions] == [
        ("filesystem.write_file", "ALLOWED")
    ]
    calls = [e.data for e in events if e.kind == "tool.call"]
    assert [(c["tool"], c["outcome"], c["attempt"]) for c in calls] == [
        ("filesystem.write_file", "completed", 2)
    ]
