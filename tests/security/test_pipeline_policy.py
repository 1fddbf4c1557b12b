"""Attack: a pipeline file brings its own permissive ``policy:`` to undo the operator's.

With ``model_allowlist: ["*"]`` and ``{match: "*", action: allow}`` in the YAML (which arrives
as workflow input), a blocked model and ``delete_database`` used to run. A pipeline's policy
can only narrow the operator's now.
"""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.worker import Worker

from activities.notes import delete_database, search
from jamjet_temporal.modelserver import ModelServer
from jamjet_temporal.pipeline import PIPELINE_WORKFLOW, PipelineRun, parse_pipeline
from jamjet_temporal.pipeline._workflow import ToolSignature
from jamjet_temporal.policy import Policy, Rule
from tests.security.conftest import MakeGoverned

OPERATOR = Policy(rules=(Rule(match="search", action="allow"),), model_allowlist=("gpt-4o-mini",))
WIDENING = """
workflow: {{id: widen, start: first}}
policy:
  model_allowlist: ["*"]
  rules: [{{match: "*", action: allow}}]
nodes:
  first: {first}
  done: {{type: end}}
"""
MODEL_NODE = '{type: model, model: o1-pro, prompt: "MARKER", next: done}'
TOOL_NODE = "{type: tool, tool: delete_database, arguments: {name: prod}, next: done}"


@pytest.mark.parametrize(("node", "kind"), [(MODEL_NODE, "model"), (TOOL_NODE, "tool")])
async def test_a_pipelines_own_policy_cannot_widen_the_operators(
    governed: MakeGoverned, model_server: ModelServer, node: str, kind: str
) -> None:
    gov = await governed(policy=OPERATOR)
    marker = uuid.uuid4().hex
    spec = parse_pipeline(WIDENING.format(first=node.replace("MARKER", marker)), "widen.yaml")
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"widen-{uuid.uuid4().hex[:8]}"
    async with Worker(gov.client, task_queue=queue, activities=[search, delete_database]):
        with pytest.raises(WorkflowFailureError):
            await gov.client.execute_workflow(
                PIPELINE_WORKFLOW,
                PipelineRun(
                    spec=spec,
                    tool_params={"delete_database": ToolSignature(params=["name"], required=1)},
                ),
                id=run_id,
                task_queue=queue,
            )
    decided = [
        e.data
        for e in await gov.events(run_id)
        if e.kind in ("policy.decision", "policy.model_decision")
    ]
    assert [(d["decision"], d["scope"]) for d in decided] == [("BLOCKED", "run")]
    assert [e for e in await gov.events(run_id) if e.kind in ("tool.call", "model.call")] == []
    if kind == "model":
        assert marker not in str(model_server.calls())
