"""Attack: a run is decided by whichever worker picks it up.

Three ``jamjet run``s at once shared the task queue ``jamjet``: a run started with a policy
that blocks ``search`` was executed by another run's worker ("search ALLOWED · no policy
configured"), and an unfinished run was completed later by a worker writing to another audit
store. Now ``jamjet run`` uses a queue of the run's own, and every run pins its governance
(policy, approvals, audit store) in its history: a worker with other governance cannot move it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.notes import search
from jamjet_temporal import acting_as
from jamjet_temporal.audit import open_store
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.modelserver import ModelServer
from jamjet_temporal.plugin import AuditConfig
from jamjet_temporal.policy import Policy
from tests.identities import PORTAL
from tests.security.conftest import MakeGoverned
from tests.security.security_workflows import WaitsThenRecalls, WaitsThenSearches
from tests.task_failures import first_task_failure

ROOT = Path(__file__).resolve().parent.parent.parent
NO_SEARCH = Policy(blocked_tools=("search",))


async def test_a_worker_with_other_governance_cannot_move_a_run(
    governed: MakeGoverned, tmp_path: Path
) -> None:
    strict = await governed(policy=NO_SEARCH)
    lax = await governed(audit=AuditConfig(store=f"sqlite:///{tmp_path / 'other-audit.db'}"))
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"pin-{uuid.uuid4().hex[:8]}"
    common = {"task_queue": queue, "workflows": [WaitsThenSearches], "activities": [search]}
    async with Worker(strict.client, max_cached_workflows=0, **common):  # type: ignore[arg-type]
        handle = await strict.client.start_workflow(
            WaitsThenSearches.run, id=run_id, task_queue=queue
        )
        for _ in range(100):  # until its first task (which pins the governance) is done
            if any(
                e.HasField("marker_recorded_event_attributes")
                for e in (await handle.fetch_history()).events
            ):
                break
            await asyncio.sleep(0.1)
    # The strict worker is gone; a worker with no policy and another audit store takes over.
    async with Worker(lax.client, **common):  # type: ignore[arg-type]
        await handle.signal(WaitsThenSearches.release)
        failure = await first_task_failure(handle, tries=100)
        assert "jamjet.governance" in failure, failure
        assert (await handle.describe()).status.name == "RUNNING"
    assert await lax.events(run_id) == [], "the other worker decided and recorded for the run"
    # The run's own governance comes back and decides, as the run started.
    async with Worker(strict.client, **common):  # type: ignore[arg-type]
        with pytest.raises(WorkflowFailureError) as refused:
            await handle.result()
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ToolDeniedError"
    decided = [e.data for e in await strict.events(run_id) if e.kind == "policy.decision"]
    assert [(d["subject"], d["decision"]) for d in decided] == [("search", "BLOCKED")]


def test_concurrent_jamjet_runs_are_decided_by_their_own_policies(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TEMPORAL_"))},
        "TEMPORAL_ADDRESS": temporal_server.address,
        "OPENAI_BASE_URL": model_server.base_url,
    }
    strict_policy = tmp_path / "strict.yaml"
    strict_policy.write_text("version: 1\nblocked_tools: [search]\n")
    pipeline = ROOT / "workflows" / "research-pipeline.yaml"
    runs = {
        "strict": ["--policy", str(strict_policy)],
        "open-1": [],
        "open-2": [],
    }
    procs = {}
    for name, extra in runs.items():
        procs[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jamjet_temporal",
                "run",
                str(pipeline),
                "--input",
                '{"topic": "isolation"}',
                "--id",
                f"{name}-{uuid.uuid4().hex[:6]}",
                "--audit-store",
                f"sqlite:///{tmp_path / name}.db",
                "--model-latency-ms",
                "0",
                *extra,
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    outcomes = {name: proc.communicate(timeout=180) for name, proc in procs.items()}
    codes = {name: proc.returncode for name, proc in procs.items()}
    assert codes == {"strict": 1, "open-1": 0, "open-2": 0}, outcomes
    decisions = asyncio.run(_decisions(tmp_path, list(runs)))
    assert ("search", "BLOCKED") in decisions["strict"]
    for name in ("open-1", "open-2"):
        assert ("search", "BLOCKED") not in decisions[name]
        assert ("search", "ALLOWED") in decisions[name]
    # Every store holds exactly one run: no trail was split across another run's store.
    assert all(len(runs_in_store) == 1 for runs_in_store in (await_all(tmp_path, list(runs))))


async def _decisions(tmp_path: Path, names: list[str]) -> dict[str, set[tuple[str, str]]]:
    found: dict[str, set[tuple[str, str]]] = {}
    for name in names:
        store = open_store(f"sqlite:///{tmp_path / name}.db")
        try:
            found[name] = {
                (str(s.event.data.get("subject")), str(s.event.data.get("decision")))
                for s in await store.events(kinds=["policy.decision"])
            }
        finally:
            await store.close()
    return found


def await_all(tmp_path: Path, names: list[str]) -> list[set[str]]:
    async def runs_of(name: str) -> set[str]:
        store = open_store(f"sqlite:///{tmp_path / name}.db")
        try:
            return {s.event.run_id for s in await store.events()}
        finally:
            await store.close()

    async def every() -> list[set[str]]:
        return [await runs_of(name) for name in names]

    return asyncio.run(every())


async def test_the_runs_internal_activities_run_only_where_its_governance_is(
    governed: MakeGoverned, tmp_path: Path
) -> None:
    """The run's audit records are local activities of the worker running it (which the pin
    holds to the run's governance). Its other runtime activities (memory) go through the queue:
    a worker with another audit store that picks one up refuses it, retryably, and the run
    goes on where its governance is."""
    strict = await governed(policy=NO_SEARCH)
    other = await governed(audit=AuditConfig(store=f"sqlite:///{tmp_path / 'other-audit.db'}"))
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"recall-{uuid.uuid4().hex[:8]}"
    async with (
        Worker(
            strict.client,
            task_queue=queue,
            workflows=[WaitsThenRecalls],
            no_remote_activities=True,
        ),
        Worker(other.client, task_queue=queue),
    ):
        with acting_as("carol@example.com", signer=PORTAL):
            handle = await strict.client.start_workflow(
                WaitsThenRecalls.run, "carol@example.com", id=run_id, task_queue=queue
            )
        await handle.signal(WaitsThenRecalls.release)
        failure = ""
        for _ in range(150):
            pending = (await handle.describe()).raw_description.pending_activities
            if pending and pending[0].HasField("last_failure"):
                failure = str(pending[0].last_failure)
                break
            await asyncio.sleep(0.1)
        assert "GovernanceMismatch" in failure, failure
    assert await other.events(run_id) == [], "another worker recorded the run's trail"
    async with Worker(strict.client, task_queue=queue, workflows=[WaitsThenRecalls]):
        assert await handle.result() == 0
    # Recorded where the run's governance is: the memory call's decision and record.
    trail = await strict.events(run_id)
    assert [e.kind for e in trail] == ["policy.decision", "memory.read", "run.closed"]
    assert trail[0].data["subject"] == "engram.read"
