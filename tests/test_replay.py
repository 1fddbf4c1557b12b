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
from jamjet_temporal.approvals._load import load_approvals
from jamjet_temporal.pipeline import (
    PIPELINE_WORKFLOW,
    PipelineResult,
    PipelineRun,
    load_pipeline,
    parse_pipeline,
)
from jamjet_temporal.pipeline._workflow import ToolSignature
from tests.changed_workflow import changed_pipeline
from tests.pipeline.test_pipeline_run import LOOP, SIGS, bump, join
from workflows.crash_safe import analyze, fetch_data, pipeline
from workflows.transfer import transfer

HISTORIES = sorted(
    p for p in (Path(__file__).parent / "histories").glob("*.json") if p.stem != "legacy_transfer"
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


async def test_replay_catches_an_incompatible_change() -> None:
    """The guard has teeth: replaying old history with changed code fails."""
    replayer = Replayer(workflows=[changed_pipeline], plugins=[JamJetPlugin()])
    result = await replayer.replay_workflow(
        load(Path(__file__).parent / "histories" / "showcase_pipeline.json"),
        raise_on_replay_failure=False,
    )
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


async def test_histories_made_now_replay(
    client: Client, task_queue: str, jamjet_config: JamJetConfig
) -> None:
    """Fresh runs on a worker that keeps no cache, so every task already replays from the start.

    The replayer has the workers' governance (policy, approvals, audit store): a run pins it.
    """
    signatures = {**SIGS, "search": ToolSignature(params=["query", "limit"], required=1)}
    runs = [
        (parse_pipeline(LOOP, "loop.yaml"), {"n": 0}),
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
