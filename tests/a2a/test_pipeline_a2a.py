"""A YAML pipeline's `a2a_task` node, as JamJet's a2a-delegator template writes it, against a
real A2A agent in its own process, on the real dev server: the result lands in the state, and
the pipeline's policy blocks a skill by its `a2a:ALIAS.SKILL` name."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.pipeline import PIPELINE_WORKFLOW, PipelineResult, PipelineRun
from jamjet_temporal.pipeline._spec import PipelineSpec, parse_pipeline
from jamjet_temporal.plugin import AuditConfig
from tests.a2a.test_a2a_run import Agent, start_agent, stop

PIPELINE = """
workflow:
  id: delegator
  state_schema: {task: {type: str, default: "Summarise Q3"}, agent_result: str}
a2a:
  remote_agents:
    research: {url: "{url}"}
policy:
  blocked_tools: ["a2a:research.slow*"]
nodes:
  delegate:
    type: a2a_task
    remote_agent: research
    skill: echo
    input: {message: "{{ state.task }}"}
    output_to_state: agent_result
    timeout: 60s
    next: route
  route:
    type: branch
    conditions: [{if: "state.want_slow", next: slow}]
    default: by_url
  by_url:
    type: a2a_task
    agent_url: "{{ state.direct }}"
    skill: echo
    input: "again: {{ state.agent_result }}"
    output_key: second
  slow:
    type: a2a_task
    remote_agent: research
    skill: slow
    input: {message: x}
"""


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Agent, Agent]]:
    """The declared agent ('research') and another one reached only by its URL."""
    folder = tmp_path_factory.mktemp("a2a-pipe")
    declared = start_agent(folder)
    other = start_agent(folder, "--no-streaming")
    try:
        yield declared, other
    finally:
        stop(declared.process)
        stop(other.process)


def spec_for(agent: Agent) -> PipelineSpec:
    return parse_pipeline(PIPELINE.replace("{url}", agent.url), "delegator.yaml")


async def run(
    temporal_server: DevServer, spec: PipelineSpec, state: dict[str, object], audit: Path
) -> PipelineResult:
    # The worker knows the pipeline's agents, as `jamjet run` configures the worker it starts.
    config = JamJetConfig(
        a2a_agents=spec.remote_agents, audit=AuditConfig(store=f"sqlite:///{audit}")
    )
    client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
    queue = f"a2a-pipe-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue):
        result: PipelineResult = await client.execute_workflow(
            PIPELINE_WORKFLOW,
            PipelineRun(spec=spec, input=state),  # type: ignore[arg-type]
            id=f"a2a-pipe-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
            result_type=PipelineResult,
        )
        return result


async def test_a2a_task_nodes_delegate_by_alias_and_by_url(
    temporal_server: DevServer, agents: tuple[Agent, Agent], tmp_path: Path
) -> None:
    agent, other = agents
    before = (len(agent.received()), len(other.received()))
    result = await run(temporal_server, spec_for(agent), {"direct": other.url}, tmp_path / "a.db")
    assert "Summarise Q3" in str(result.state["agent_result"])
    assert "again:" in str(result.state["second"])
    assert (len(agent.received()), len(other.received())) == (before[0] + 1, before[1] + 1)


async def test_a_declared_agent_cannot_be_reached_by_its_url_to_dodge_its_policy_name(
    temporal_server: DevServer, agents: tuple[Agent, Agent], tmp_path: Path
) -> None:
    agent, _ = agents
    with pytest.raises(WorkflowFailureError) as info:
        await run(temporal_server, spec_for(agent), {"direct": agent.url}, tmp_path / "c.db")
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and "by its alias" in cause.message


async def test_the_pipelines_policy_blocks_a_skill_by_its_a2a_name(
    temporal_server: DevServer, agents: tuple[Agent, Agent], tmp_path: Path
) -> None:
    agent, _ = agents
    before = len(agent.received())
    with pytest.raises(WorkflowFailureError) as info:
        await run(temporal_server, spec_for(agent), {"want_slow": True}, tmp_path / "b.db")
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ToolDeniedError"
    assert "a2a:research.slow" in cause.message
    # The first delegation reached the agent; the blocked one never did.
    assert len(agent.received()) == before + 1


def test_jamjet_run_shows_the_remote_tasks_progress(
    temporal_server: DevServer, agents: tuple[Agent, Agent], tmp_path: Path
) -> None:
    agent, _ = agents
    pipeline = tmp_path / "slow.yaml"
    pipeline.write_text(
        "workflow: {id: slow-delegation}\n"
        f"a2a: {{remote_agents: {{research: {{url: '{agent.url}'}}}}}}\n"
        "nodes:\n"
        "  ask: {type: a2a_task, remote_agent: research, skill: slow, input: {message: hi},\n"
        # Temporal sends an attempt's first heartbeat at once, later ones at most every 0.8
        # heartbeat timeouts: 2 s lets a 'working' beat through while the 3 s task runs.
        "        output_key: answer, label: Research, heartbeat_timeout_seconds: 2}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "OPENAI_"))}
    env["TEMPORAL_ADDRESS"] = temporal_server.address
    done = subprocess.run(
        [sys.executable, "-m", "jamjet_temporal", "run", str(pipeline), "--audit-store", ""],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    progress = [line for line in done.stdout.splitlines() if "remote task" in line]
    # The remote task's id and its working state, as the delegation's heartbeats report them.
    assert progress and progress[0].startswith("▸ [Research] remote task "), done.stdout
    assert any(" working" in line for line in progress), done.stdout
    assert done.stdout.splitlines()[-1] == "▸ Execution complete · 1/1 nodes · 0 events lost"
