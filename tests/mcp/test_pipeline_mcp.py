"""MCP tools from a YAML pipeline: `type: tool` + `server:` and `mcp_tool` nodes, servers from a
`jamjet.toml` beside the file (as JamJet's templates declare them) and from the `mcp:` block,
gated by the pipeline's policy, run against the real MCP server on the real dev server."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.audit import open_store
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.pipeline import PIPELINE_WORKFLOW, PipelineResult, PipelineRun
from jamjet_temporal.pipeline._spec import PipelineSpec, load_pipeline
from jamjet_temporal.plugin import AuditConfig

SERVER = Path(__file__).with_name("server.py")

PIPELINE = """
workflow: {id: mcp-pipe}
mcp:
  servers:
    calc: {transport: stdio, command: "{python}", args: ["{server}"]}
policy:
  blocked_tools: ["files.write_*"]
nodes:
  add:
    type: tool
    server: files
    tool: add
    arguments: {a: "{{ state.a }}", b: 2}
    output_key: sum
    next: shout
  shout:
    type: mcp_tool
    server: calc
    tool: shout
    input: {text: "total {{ state.sum.result }}"}
    output_to_state: loud
    next: {next}
  route:
    type: branch
    conditions: [{if: "state.path", next: write}]
    default: end
  write:
    type: mcp_tool
    server: files
    tool: write_file
    input: {path: "{{ state.path }}", text: pwned}
    output_key: wrote
"""


def project(tmp_path: Path, next_node: str) -> PipelineSpec:
    # The jamjet.toml shape of JamJet's templates; `python server.py` starts in this folder.
    (tmp_path / "server.py").write_text(SERVER.read_text())
    (tmp_path / "jamjet.toml").write_text(
        '[project]\nname = "demo"\n\n[[mcp_servers]]\nname = "files"\n'
        f'command = "{sys.executable}"\nargs = ["server.py"]\n'
    )
    text = (
        PIPELINE.replace("{python}", sys.executable)
        .replace("{server}", str(SERVER))
        .replace("{next}", next_node)
    )
    (tmp_path / "workflow.yaml").write_text(text)
    spec = load_pipeline(tmp_path / "workflow.yaml")
    # The toml's server runs `python server.py` in the pipeline's folder.
    assert spec.mcp_servers["files"]["cwd"] == str(tmp_path.resolve())
    return spec


async def run(
    temporal_server: DevServer, spec: PipelineSpec, state: dict[str, object], audit: str
) -> PipelineResult:
    # The worker serves the pipeline's servers, as `jamjet run` and `jamjet worker --pipeline` do.
    config = JamJetConfig(mcp_servers=spec.mcp_servers, audit=AuditConfig(store=audit))
    client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
    queue = f"mcp-pipe-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue):
        result: PipelineResult = await client.execute_workflow(
            PIPELINE_WORKFLOW,
            PipelineRun(spec=spec, input=state),
            id=f"mcp-pipe-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
            result_type=PipelineResult,
        )
        return result


async def test_mcp_nodes_from_jamjet_toml_and_the_mcp_block(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    spec = project(tmp_path, "route")
    result = await run(temporal_server, spec, {"a": 40}, f"sqlite:///{tmp_path / 'a.db'}")
    assert result.state["sum"] == {"result": 42.0}
    assert result.state["loud"] == "TOTAL 42.0"


async def test_the_pipelines_policy_blocks_an_mcp_tool_and_the_trail_names_it(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    spec = project(tmp_path, "route")
    target = tmp_path / "target.txt"
    audit = f"sqlite:///{tmp_path / 'b.db'}"
    with pytest.raises(WorkflowFailureError) as info:
        await run(temporal_server, spec, {"a": 1, "path": str(target)}, audit)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ToolDeniedError"
    assert not target.exists()
    store = open_store(audit)
    try:
        decisions = [s.event for s in await store.events() if s.event.kind == "policy.decision"]
    finally:
        await store.close()
    refused = [e for e in decisions if e.data.get("decision") == "BLOCKED"]
    assert [e.data.get("subject") for e in refused] == ["files.write_file"]
