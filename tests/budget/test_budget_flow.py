"""Budgets on the real dev server with the real model server (scripted usage)."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.audit import open_store
from jamjet_temporal.authoring._strategies import ReflectionResult
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule, ScriptUsage
from jamjet_temporal.plugin import BudgetConfig
from starters import budget as demo
from tests.budget.budget_workflows import child, parent, plain, unpriced
from workflows.budget import research

ROOT = Path(__file__).resolve().parent.parent.parent


async def events(url: str, run_id: str) -> list[tuple[str, str]]:
    store = open_store(url)
    try:
        return [
            (s.event.kind, str(s.event.data.get("decision"))) for s in await store.events(run_id)
        ]
    finally:
        await store.close()


async def test_reflection_halts_before_the_cap_with_best_so_far(
    tmp_path: Path, temporal_server: DevServer
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    lines, result = await demo.main(url, temporal_server.address)
    assert lines == [
        "▸ [reasoner] iter 1 · $0.08 · confidence 0.62",
        "▸ [reasoner] iter 2 · $0.16 · confidence 0.71",
        "▸ [reasoner] iter 3 · $0.27 · confidence 0.78",
        "▸ [reasoner] iter 4 · $0.41 · confidence 0.81",
        "▸ Budget: $0.41 + projected $0.18 > cap $0.50",
        "▸ Decision: HALT · returning best-so-far (0.81)",
    ]
    assert result.stopped == "budget" and (result.answer or "").startswith("draft 4 ")
    assert result.spent <= Decimal("0.50")
    assert result.halt is not None and not result.halt.allowed
    assert result.spent + result.halt.projected.cost > Decimal("0.50")
    store = open_store(url)
    try:
        kinds = [(s.event.kind, s.event.data.get("decision")) for s in await store.events()]
    finally:
        await store.close()
    assert kinds.count(("budget.decision", "ALLOWED")) == 4
    assert kinds.count(("budget.decision", "HALT")) == 1
    assert [k for k, _ in kinds].count("model.call") == 4


def expensive(model: ModelServer, marker: str) -> None:
    """Calls mentioning ``marker`` use 1,500 output tokens (gpt-4o: $0.015 each)."""
    model.add_rules(
        [
            ScriptRule(
                marker=marker,
                responses=[
                    ScriptResponse(usage=ScriptUsage(prompt_tokens=50, completion_tokens=1500))
                ],
            )
        ]
    )


async def test_plain_budgeted_task_raises_budget_exceeded(
    client: Client, task_queue: str, audit_url: str, model_server: ModelServer
) -> None:
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    expensive(model_server, run_id)
    async with Worker(client, task_queue=task_queue, workflows=[plain]):
        with pytest.raises(WorkflowFailureError) as info:
            await client.execute_workflow(plain.run, run_id, id=run_id, task_queue=task_queue)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "BudgetExceededError"
    assert "> cap $0.05" in cause.message
    decisions = [d for k, d in await events(audit_url, run_id) if k == "budget.decision"]
    assert decisions[-1] == "HALT" and set(decisions[:-1]) == {"ALLOWED"}


async def test_unknown_model_price_is_a_configuration_error(
    client: Client, task_queue: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[unpriced]):
        with pytest.raises(WorkflowFailureError) as info:
            await client.execute_workflow(
                unpriced.run, id=f"exec_{uuid.uuid4().hex[:8]}", task_queue=task_queue
            )
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "UnknownModelPriceError"
    assert "no-such-model-anywhere" in cause.message and "prices=" in cause.message


async def test_child_cannot_spend_more_than_its_slice(
    client: Client, task_queue: str, audit_url: str, model_server: ModelServer
) -> None:
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    expensive(model_server, run_id)
    async with Worker(client, task_queue=task_queue, workflows=[parent, child]):
        calls = await client.execute_workflow(parent.run, run_id, id=run_id, task_queue=task_queue)
    store = open_store(audit_url)
    try:
        child_events = [s.event for s in await store.events(f"{run_id}-child")]
    finally:
        await store.close()
    decisions = [e.data for e in child_events if e.kind == "budget.decision"]
    assert [d["decision"] for d in decisions] == ["ALLOWED"] * calls + ["HALT"]
    halt = decisions[-1]
    assert Decimal(str(halt["cap_cost"])) == Decimal("0.05"), "the slice, not the parent's $0.20"
    assert calls == 2, "two $0.015 calls fit; a third could reach $0.05 + its projection"
    assert Decimal(str(halt["spent_cost"])) <= Decimal("0.05")


async def test_worker_killed_mid_loop_totals_equal_an_uninterrupted_run(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    _, reference = await demo.main(f"sqlite:///{tmp_path / 'ref.db'}", temporal_server.address)
    async with ModelServer(latency_ms=700) as model:
        run_id = f"exec_{uuid.uuid4().hex[:8]}"
        model.add_rules(demo.script(run_id))
        audit = f"sqlite:///{tmp_path / 'audit.db'}"

        async def start_worker() -> asyncio.subprocess.Process:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "starters.budget_worker",
                temporal_server.address,
                model.base_url,
                audit,
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ},
            )
            assert proc.stdout is not None
            assert (await proc.stdout.readline()).strip() == b"worker ready"
            return proc

        first = await start_worker()
        client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin()])
        handle = await client.start_workflow(
            research.run,
            f"Is the migration safe? [{run_id}]",
            id=run_id,
            task_queue="budget-demo",
            result_type=ReflectionResult,
        )
        while len([c for c in model.calls() if run_id in str(c["messages"])]) < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        first.kill()  # mid-loop: the third model call is in flight
        await first.wait()
        second = await start_worker()
        try:
            result = await handle.result()
        finally:
            second.terminate()
            await second.wait()
    assert result.spent == reference.spent
    assert [(i.n, i.spent, i.confidence) for i in result.iterations] == [
        (i.n, i.spent, i.confidence) for i in reference.iterations
    ]
    assert result.halt is not None and reference.halt is not None
    assert result.halt.reason == reference.halt.reason


def test_budget_config_errors() -> None:
    from jamjet_temporal import task
    from jamjet_temporal.errors import ConfigError

    async def f() -> None: ...

    with pytest.raises(ConfigError, match="strategy"):
        task(strategy="tree")(f)  # type: ignore[call-overload]
    with pytest.raises(ConfigError, match="max_iters"):
        task(strategy="reflection", max_iters=0)(f)
    with pytest.raises(ConfigError, match="max_cost"):
        task(max_cost="lots")(f)
    with pytest.raises(ConfigError):
        JamJetPlugin(
            JamJetConfig(
                budget=BudgetConfig(prices={"m": {"input_per_mtok": "-1", "output_per_mtok": 1}})
            )
        )


async def test_run_budget_covers_every_model_call_of_a_run(
    client: Client, task_queue: str, audit_url: str, model_server: ModelServer
) -> None:
    from jamjet_temporal import run_budget
    from tests.budget.budget_workflows import unbudgeted

    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    expensive(model_server, run_id)
    async with Worker(client, task_queue=task_queue, workflows=[unbudgeted]):
        with run_budget(max_cost=0.04), pytest.raises(WorkflowFailureError) as info:
            await client.execute_workflow(unbudgeted.run, run_id, id=run_id, task_queue=task_queue)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "BudgetExceededError"
    assert "> cap $0.04" in cause.message and "scope run" in cause.message
