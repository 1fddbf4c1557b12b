"""Replay: recorded histories run through ``Replayer`` with the plugin, no nondeterminism."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer, Worker

from activities.research import search
from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal._shared._wire import PIPELINE_EVENT_SIGNAL
from jamjet_temporal.approvals._load import load_approvals
from jamjet_temporal.pipeline import (
    PIPELINE_WORKFLOW,
    PipelineResult,
    PipelineRun,
    load_pipeline,
    parse_pipeline,
)
from jamjet_temporal.pipeline._workflow import PipelineEvent, ToolSignature
from jamjet_temporal.plugin import AuditConfig
from tests.changed_workflow import changed_pipeline
from tests.pipeline.test_pipeline_run import LOOP, SIGS, bump, join
from workflows.crash_safe import analyze, fetch_data, pipeline
from workflows.transfer import transfer

HISTORIES = sorted(
    p
    for p in (Path(__file__).parent / "histories").glob("*.json")
    if p.stem not in ("legacy_transfer", "graph_nodes")
)
ROOT = Path(__file__).resolve().parent.parent


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_committed_history_replays_with_current_code(path: Path) -> None:
    replayer = Replayer(workflows=[pipeline], plugins=[JamJetPlugin()])
    result = await replayer.replay_workflow(load(path))
    assert result.replay_failure is None


def test_committed_histories_cover_crash_and_failure() -> None:
    assert {"research_ok", "research_crash", "tool_failure", "showcase_pipeline"} <= {
        p.stem for p in HISTORIES
    }


async def test_a_run_from_before_runs_pinned_their_governance_replays() -> None:
    """Recorded with the code before the security fixes: a transfer acting for a user (a
    plain-text header then), a malformed decision signal (dropped then) and an approval signed
    without a run id or nonce. Runs in flight at an upgrade replay as they ran."""
    folder = Path(__file__).parent / "histories"
    config = JamJetConfig(approvals=load_approvals(folder / "legacy_approvals.yaml"))
    replayer = Replayer(workflows=[transfer], plugins=[JamJetPlugin(config)])
    result = await replayer.replay_workflow(load(folder / "legacy_transfer.json"))
    assert result.replay_failure is None


async def test_a_graph_pipeline_run_replays_with_current_code() -> None:
    """Recorded from GRAPH below (parallel, wait + event, branch, eval escalating) on a worker
    with the audit trail off: any change to how the interpreter schedules those nodes fails."""
    config = JamJetConfig(audit=AuditConfig(store=""))
    replayer = Replayer(workflows=[], plugins=[JamJetPlugin(config)])
    history = load(Path(__file__).parent / "histories" / "graph_nodes.json")
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None


async def test_replay_catches_an_incompatible_change() -> None:
    """The guard has teeth: replaying old history with changed code fails."""
    replayer = Replayer(workflows=[changed_pipeline], plugins=[JamJetPlugin()])
    result = await replayer.replay_workflow(
        load(Path(__file__).parent / "histories" / "showcase_pipeline.json"),
        raise_on_replay_failure=False,
    )
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


#: Every node kind that decides in the workflow: state schema defaults, parallel branches and
#: their join, a wait for an event, a branch, an eval that retries its node once.
GRAPH = """
workflow:
  id: graph
  state_schema: {n: {type: int, default: 1}}
nodes:
  fan: {type: parallel, branches: [a, b], join: wait}
  a: {type: tool, tool: test.bump, arguments: {n: "{{ state.n }}"}, output_key: x, next: wait}
  b: {type: tool, tool: test.bump, arguments: {n: 10, by: 5}, output_key: y, next: wait}
  wait: {type: wait, event: go, timeout: 1h, next: route}
  route:
    type: branch
    conditions: [{if: "state.ok and state.x + state.y == 17", next: grow}]
    default: end
  grow: {type: tool, tool: test.bump, arguments: {n: "{{ state.x }}"}, output_key: x, next: check}
  check:
    type: eval
    input: state.x
    scorers: [{type: assertion, check: "output >= 4"}]
    on_fail: escalate
    escalate_to: grow
    next: end
"""


async def test_histories_made_now_replay(
    client: Client, task_queue: str, jamjet_config: JamJetConfig
) -> None:
    """Fresh runs on a worker that keeps no cache, so every task already replays from the start.

    The replayer has the workers' governance (policy, approvals, audit store): a run pins it.
    """
    signatures = {**SIGS, "search": ToolSignature(params=["query", "limit"], required=1)}
    runs = [
        (parse_pipeline(LOOP, "loop.yaml"), {"n": 0}),
        (parse_pipeline(GRAPH, "graph.yaml"), {}),
        (load_pipeline(ROOT / "workflows" / "research-pipeline.yaml"), {"topic": "replay"}),
    ]
    handles: list[WorkflowHandle[object, object]] = []
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[pipeline],
        activities=[bump, join, search, fetch_data, analyze],
        max_cached_workflows=0,
    ):
        for spec, state in runs:
            handle = await client.start_workflow(
                PIPELINE_WORKFLOW,
                PipelineRun(spec=spec, input=state, tool_params=signatures),  # type: ignore[arg-type]
                id=f"replay-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
                result_type=PipelineResult,
            )
            if spec.workflow.id == "graph":
                await handle.signal(
                    PIPELINE_EVENT_SIGNAL, PipelineEvent(event="go", data={"ok": True})
                )
            await handle.result()
            handles.append(handle)
        handle = await client.start_workflow(
            pipeline.run, id=f"replay-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        await handle.result()
        handles.append(handle)
    replayer = Replayer(workflows=[pipeline], plugins=[JamJetPlugin(jamjet_config)])
    for handle in handles:
        result = await replayer.replay_workflow(await handle.fetch_history())
        assert result.replay_failure is None
