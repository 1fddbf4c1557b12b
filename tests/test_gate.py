"""The policy gate and the audit trail, on the real dev server with the real model server."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer, Worker

from activities.notes import delete_database, read_files, search
from jamjet_temporal import JamJetConfig, JamJetPlugin, llm, workflow
from jamjet_temporal.audit import StoredEvent, open_store
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.errors import PolicyError
from jamjet_temporal.modelserver import ModelServer
from jamjet_temporal.plugin import AuditConfig, LLMConfig
from jamjet_temporal.policy import Policy, Rule
from starters import policy_gate as gate_demo
from tests.plain_workflows import PlainLocalSearch, PlainSearch


@workflow(name="test-gate.direct")
async def direct_calls(tools: list[str]) -> list[str]:
    """Plain workflow code calling tools, no agent involved."""
    done = []
    for name in tools:
        if name == "search":
            await search("v2.3")
        elif name == "read_files":
            await read_files(["notes/release.md"])
        elif name == "delete_database":
            await delete_database("prod")
        done.append(name)
    return done


@workflow(name="test-gate.model")
async def ask_model(model: str, marker: str) -> str:
    return await llm.call(f"hello {marker}", model=model)


async def events_of(url: str, run_id: str) -> list[StoredEvent]:
    store = open_store(url)
    try:
        return await store.events(run_id)
    finally:
        await store.close()


async def run_direct(
    temporal_server: DevServer,
    model_server: ModelServer,
    tmp_path: Path,
    policy: Policy,
    tools: list[str],
    identity: str | None = None,
) -> tuple[str, str, list[str] | BaseException]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    config = JamJetConfig(
        llm=LLMConfig(base_url=model_server.base_url), audit=AuditConfig(store=url), policy=policy
    )
    client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
    queue = f"gate-{uuid.uuid4().hex[:8]}"
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[direct_calls],
        activities=[search, read_files, delete_database],
        identity=identity,
    ):
        try:
            result: list[str] | BaseException = await client.execute_workflow(
                direct_calls.run, tools, id=run_id, task_queue=queue
            )
        except WorkflowFailureError as err:
            result = err.cause or err
    return url, run_id, result


async def test_allow_list_blocks_the_tool_and_the_agent_carries_on(
    tmp_path: Path, temporal_server: DevServer
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    lines = await gate_demo.main(url, temporal_server.address)
    assert lines[0] == "▸ [assistant] agent requests tool: delete_database"
    assert lines[1] == "▸ Policy: ALLOWED_TOOLS = {read_files, search}"
    assert lines[2] == "▸ Decision: BLOCKED · tool not in allow-list"
    assert lines[3].startswith("▸ Audit: evt_") and lines[3].endswith(
        " → policy.deny[delete_database]"
    )
    assert lines[4] == '▸ Agent: receives "tool unavailable; pick another"'
    assert lines[5] == "▸ Answer: v2.3 ships the policy violations panel."
    store = open_store(url)
    try:
        events = [e.event for e in await store.events()]
        assert (await store.verify()).ok
    finally:
        await store.close()
    denied = [e for e in events if e.data.get("decision") == "BLOCKED"]
    assert len(denied) == 1
    assert denied[0].data["scope"] == "agent:assistant"
    assert denied[0].actor["agent"] == "assistant"
    assert denied[0].actor["user"] == "sunil@example.com"
    calls = [e for e in events if e.kind == "tool.call"]
    assert [c.data["tool"] for c in calls] == ["search"], "delete_database never ran"


async def test_glob_rule_blocks_a_direct_call_before_it_runs(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    policy = Policy(rules=(Rule(match="*delete*", action="block"), Rule(match="*", action="allow")))
    url, run_id, result = await run_direct(
        temporal_server, model_server, tmp_path, policy, ["search", "delete_database"]
    )
    assert isinstance(result, ApplicationError) and result.type == "ToolDeniedError"
    assert "'delete_database' refused" in result.message and "scope run" in result.message
    events = await events_of(url, run_id)
    decisions = [e.event.data for e in events if e.event.kind == "policy.decision"]
    assert [(d["subject"], d["decision"], d["rule"]) for d in decisions] == [
        ("search", "ALLOWED", "*"),
        ("delete_database", "BLOCKED", "*delete*"),
    ]
    assert [e.event.data["tool"] for e in events if e.event.kind == "tool.call"] == ["search"]


async def test_default_deny_once_rules_are_configured(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    policy = Policy(rules=(Rule(match="search", action="allow"),))
    url, run_id, result = await run_direct(
        temporal_server, model_server, tmp_path, policy, ["search", "read_files"]
    )
    assert isinstance(result, ApplicationError) and result.type == "ToolDeniedError"
    denied = [
        e.event.data
        for e in await events_of(url, run_id)
        if e.event.data.get("decision") == "BLOCKED"
    ]
    assert len(denied) == 1
    assert denied[0]["subject"] == "read_files"
    assert denied[0]["scope"] == "run" and denied[0]["rule"] is None
    assert "default deny" in str(denied[0]["reason"])


async def test_require_approval_is_a_typed_refusal_until_approvals_exist(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    policy = Policy(require_approval_for=("delete_*",))
    _, _, result = await run_direct(
        temporal_server, model_server, tmp_path, policy, ["delete_database"]
    )
    assert isinstance(result, ApplicationError) and result.type == "ApprovalRequiredError"


async def test_model_allowlist_refuses_a_model_before_any_request(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    policy = Policy(model_allowlist=("gpt-4o-mini",))
    config = JamJetConfig(
        llm=LLMConfig(base_url=model_server.base_url), audit=AuditConfig(store=url), policy=policy
    )
    client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
    queue = f"gate-{uuid.uuid4().hex[:8]}"
    marker = uuid.uuid4().hex
    async with Worker(client, task_queue=queue, workflows=[ask_model]):
        ok = await client.execute_workflow(
            ask_model.run,
            args=["gpt-4o-mini", f"{marker}-ok"],
            id=f"m-{marker}-ok",
            task_queue=queue,
        )
        with pytest.raises(WorkflowFailureError) as info:
            await client.execute_workflow(
                ask_model.run,
                args=["gpt-4o", f"{marker}-no"],
                id=f"m-{marker}-no",
                task_queue=queue,
            )
    assert ok.startswith("[gpt-4o-mini]")
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ModelDeniedError"
    assert "model not in model_allowlist" in cause.message
    sent = str(model_server.calls())
    assert f"{marker}-ok" in sent and f"{marker}-no" not in sent
    refused = await events_of(url, f"m-{marker}-no")
    assert [e.event.kind for e in refused] == ["policy.model_decision", "run.closed"]
    assert refused[0].event.data["decision"] == "BLOCKED"
    assert refused[1].event.data["outcome"] == "failed"


def test_invalid_policy_file_stops_the_worker_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("version: 1\nrules:\n  - {match: 'shell.*', action: deny}\n")
    with pytest.raises(PolicyError) as info:
        JamJetPlugin(JamJetConfig(policy=bad))
    assert f"{bad}:3" in str(info.value)
    assert "block" in str(info.value)  # the fix names the valid actions


async def test_tool_scheduled_without_the_gate_is_refused_and_recorded(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    plain = await Client.connect(temporal_server.address)  # a workflow worker without the plugin
    gated = await Client.connect(
        temporal_server.address, plugins=[JamJetPlugin(JamJetConfig(audit=AuditConfig(store=url)))]
    )
    queue = f"gate-{uuid.uuid4().hex[:8]}"
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    async with (
        Worker(plain, task_queue=queue, workflows=[PlainSearch]),
        Worker(gated, task_queue=queue, activities=[search]),
    ):
        with pytest.raises(WorkflowFailureError) as info:
            await plain.execute_workflow(PlainSearch.run, "v2.3", id=run_id, task_queue=queue)
    cause = info.value.cause.cause  # ActivityError -> ApplicationError
    assert isinstance(cause, ApplicationError) and cause.type == "ToolNotClearedError"
    events = await events_of(url, run_id)
    assert [e.event.kind for e in events] == ["tool.refused"]
    assert events[0].event.data["tool"] == "search"


async def test_every_call_has_its_decision_recorded_first_and_replay_writes_nothing(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    url, run_id, result = await run_direct(
        temporal_server, model_server, tmp_path, Policy(), ["search", "read_files"]
    )
    assert result == ["search", "read_files"]
    events = await events_of(url, run_id)
    kinds = [
        (e.event.kind, e.event.data.get("tool") or e.event.data.get("subject")) for e in events
    ]
    assert kinds == [
        ("policy.decision", "search"),
        ("tool.call", "search"),
        ("policy.decision", "read_files"),
        ("tool.call", "read_files"),
        ("run.closed", None),  # the trail ends with the run's outcome
    ]
    assert events[-1].event.data == {"outcome": "completed"}
    call = events[1].event
    assert call.data["args"] == ["v2.3"] and call.data["result"] == ["notes/release.md"]
    assert call.data["attempt"] == 1 and str(call.data["idempotency_key"]).startswith("jj-")
    assert call.data["decision_event"] == events[0].event.id
    assert call.actor["worker"]
    assert isinstance(call.data["latency_ms"], float)

    client = await Client.connect(temporal_server.address)
    history = await client.get_workflow_handle(run_id).fetch_history()
    replayer = Replayer(
        workflows=[direct_calls], plugins=[JamJetPlugin(JamJetConfig(audit=AuditConfig(store=url)))]
    )
    await replayer.replay_workflow(history)
    assert len(await events_of(url, run_id)) == len(events), "replay wrote audit events"


async def test_the_trail_names_the_worker_as_temporal_does(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    """Worker(identity=...) is the name in the audit trail, as in the history (`jamjet status`),
    not the client's pid@host."""
    url, run_id, result = await run_direct(
        temporal_server, model_server, tmp_path, Policy(), ["search"], identity="worker-blue"
    )
    assert result == ["search"]
    calls = [e.event for e in await events_of(url, run_id) if e.event.kind == "tool.call"]
    assert [c.actor["worker"] for c in calls] == ["worker-blue"]
    client = await Client.connect(temporal_server.address)
    history = await client.get_workflow_handle(run_id).fetch_history()
    started = {
        e.activity_task_started_event_attributes.identity
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    }
    assert started == {"worker-blue"}


async def test_pipeline_policy_scopes_workflow_and_node(
    client: Client, task_queue: str, audit_url: str
) -> None:
    from jamjet_temporal.pipeline import PIPELINE_WORKFLOW, PipelineRun, parse_pipeline
    from jamjet_temporal.pipeline._workflow import ToolSignature

    text = """
workflow: {id: governed, start: find}
policy:
  rules:
    - {match: search, action: allow}
    - {match: read_files, action: allow}
nodes:
  find:
    type: tool
    tool: search
    arguments: {query: "v2.3"}
    output_key: paths
    next: read
  read:
    type: tool
    tool: read_files
    arguments: {paths: "{{ state.paths }}"}
    policy: {blocked_tools: [read_files]}
"""
    spec = parse_pipeline(text, "governed.yaml")
    sigs = {
        "search": ToolSignature(params=["query"], required=1),
        "read_files": ToolSignature(params=["paths"], required=1),
    }
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=task_queue, activities=[search, read_files]):
        with pytest.raises(WorkflowFailureError) as info:
            await client.execute_workflow(
                PIPELINE_WORKFLOW,
                PipelineRun(spec=spec, tool_params=sigs),
                id=run_id,
                task_queue=task_queue,
            )
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ToolDeniedError"
    decisions = [
        (e.event.data["subject"], e.event.data["decision"], e.event.data["scope"])
        for e in await events_of(audit_url, run_id)
        if e.event.kind == "policy.decision"
    ]
    assert decisions == [("search", "ALLOWED", "workflow"), ("read_files", "BLOCKED", "node:read")]


async def test_local_activities_are_gated_like_activities(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    """Adding the plugin must not break a team's local activities, nor let them skip the gate."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    outcomes: dict[str, object] = {}
    for name, policy in (
        ("open", None),
        ("closed", Policy(blocked_tools=("search",))),
    ):
        config = JamJetConfig(
            llm=LLMConfig(base_url=model_server.base_url),
            audit=AuditConfig(store=url),
            policy=policy,
        )
        client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
        queue, run_id = f"local-{uuid.uuid4().hex[:8]}", f"local-{name}-{uuid.uuid4().hex[:6]}"
        async with Worker(
            client, task_queue=queue, workflows=[PlainLocalSearch], activities=[search]
        ):
            try:
                outcomes[name] = await client.execute_workflow(
                    PlainLocalSearch.run, "v2.3", id=run_id, task_queue=queue
                )
            except WorkflowFailureError as err:
                outcomes[name] = err.cause
        kinds = [(e.event.kind, e.event.data.get("decision")) for e in await events_of(url, run_id)]
        outcomes[f"{name}-audit"] = kinds
    assert outcomes["open"] == ["notes/release.md"]
    assert outcomes["open-audit"] == [
        ("policy.decision", "ALLOWED"),
        ("tool.call", None),
        ("run.closed", None),
    ]
    refused = outcomes["closed"]
    assert isinstance(refused, ApplicationError) and refused.type == "ToolDeniedError"
    assert outcomes["closed-audit"] == [("policy.decision", "BLOCKED"), ("run.closed", None)]


@workflow(name="test-gate.slow-model")
async def ask_slow_model(marker: str) -> str:
    return await llm.call(
        f"hello {marker}", model="gpt-4o-mini", attempt_timeout=timedelta(minutes=7)
    )


async def test_a_slow_models_timeout_reaches_temporal(
    temporal_server: DevServer, model_server: ModelServer
) -> None:
    config = JamJetConfig(llm=LLMConfig(base_url=model_server.base_url))
    client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
    queue = f"gate-{uuid.uuid4().hex[:8]}"
    run_id = f"slow-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[ask_slow_model]):
        await client.execute_workflow(ask_slow_model.run, run_id, id=run_id, task_queue=queue)
    history = await client.get_workflow_handle(run_id).fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "jamjet.llm.chat"
    ]
    assert [s.start_to_close_timeout.seconds for s in scheduled] == [420]
