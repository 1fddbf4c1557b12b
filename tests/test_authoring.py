"""``@task`` / ``@workflow`` against the real dev server, side by side with plain Temporal."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity
from temporalio import workflow as temporal_workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

from jamjet_temporal import default_task_config, idempotency_key, task, workflow
from jamjet_temporal.errors import ConfigError, InlineTaskError, JamJetError
from workflows.crash_safe import analyze, fetch_data, pipeline

ATTEMPT_KEYS: dict[str, list[str]] = {}


@task(retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50), maximum_attempts=3))
async def flaky_step(tag: str) -> str:
    """Fails on its first attempt; records the idempotency key of every attempt."""
    ATTEMPT_KEYS.setdefault(tag, []).append(idempotency_key())
    if activity.info().attempt == 1:
        raise RuntimeError("transient failure")
    return idempotency_key()


@task
async def broken_step(x: int) -> int:
    raise TypeError(f"bad input {x}")


@workflow
async def two_flaky_steps(tag: str) -> list[str]:
    return [await flaky_step(f"{tag}-a"), await flaky_step(f"{tag}-b")]


@workflow(name="jamjet-test.calls-broken")
async def calls_broken() -> int:
    return await broken_step(7)


@activity.defn(name="plain_double")
async def plain_double(x: int) -> int:
    return 2 * x


@temporal_workflow.defn(name="jamjet-test.plain")
class PlainWorkflow:
    """A hand-written Temporal workflow using a @task and a plain activity."""

    @temporal_workflow.run
    async def run(self, x: int) -> int:
        doubled = await temporal_workflow.execute_activity(
            plain_double, x, start_to_close_timeout=timedelta(seconds=10)
        )
        return await temporal_workflow.execute_activity(
            "jamjet-test.add-one", doubled, start_to_close_timeout=timedelta(seconds=10)
        )


@task(name="jamjet-test.add-one")
async def add_one(x: int) -> int:
    return x + 1


async def test_showcase_pipeline_runs_as_written(client: Client, task_queue: str) -> None:
    async with Worker(
        client, task_queue=task_queue, workflows=[pipeline], activities=[fetch_data, analyze]
    ):
        result = await client.execute_workflow(
            pipeline.run, id=f"exec_{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
    # The local model server answered over HTTP: its default answer names the model.
    assert result["summary"].startswith("[gpt-4o-mini]")
    assert "T-1042" in result["summary"] or "502" in result["summary"]


async def test_task_outside_a_workflow_just_runs() -> None:
    assert await add_one(41) == 42
    with pytest.raises(TypeError):
        await broken_step(1)


async def test_idempotency_key_stable_across_retries_distinct_across_steps(
    client: Client, task_queue: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    async with Worker(
        client, task_queue=task_queue, workflows=[two_flaky_steps], activities=[flaky_step]
    ):
        keys = await client.execute_workflow(
            two_flaky_steps.run, tag, id=f"idem-{tag}", task_queue=task_queue
        )
    first, second = ATTEMPT_KEYS[f"{tag}-a"], ATTEMPT_KEYS[f"{tag}-b"]
    assert len(first) == 2 and len(set(first)) == 1, "retry must reuse the key"
    assert len(second) == 2 and len(set(second)) == 1
    assert first[0] != second[0], "different steps must get different keys"
    assert keys == [first[0], second[0]]


async def test_task_defaults_reach_temporal_and_override_by_keyword(
    client: Client, task_queue: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    async with Worker(
        client, task_queue=task_queue, workflows=[two_flaky_steps], activities=[flaky_step]
    ):
        handle = await client.start_workflow(
            two_flaky_steps.run, tag, id=f"opts-{tag}", task_queue=task_queue
        )
        await handle.result()
    history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    defaults = default_task_config()
    attrs = scheduled[0]
    assert attrs.activity_type.name == "flaky_step"
    assert attrs.heartbeat_timeout.ToTimedelta() == defaults["heartbeat_timeout"]
    assert attrs.start_to_close_timeout.ToTimedelta() == defaults["start_to_close_timeout"]
    # Overridden by keyword on this task:
    assert attrs.retry_policy.maximum_attempts == 3
    assert attrs.retry_policy.initial_interval.ToTimedelta() == timedelta(milliseconds=50)


async def test_type_error_is_not_retried_and_fails_readably(
    client: Client, task_queue: str
) -> None:
    async with Worker(
        client, task_queue=task_queue, workflows=[calls_broken], activities=[broken_step]
    ):
        handle = await client.start_workflow(
            calls_broken.run, id=f"broken-{uuid.uuid4().hex[:6]}", task_queue=task_queue
        )
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    assert isinstance(info.value.cause, ActivityError)
    cause = info.value.cause.cause
    assert isinstance(cause, ApplicationError) and cause.type == "TypeError"
    assert "bad input 7" in cause.message
    history = await handle.fetch_history()
    types = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    started = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and types[e.activity_task_started_event_attributes.scheduled_event_id] == "broken_step"
    ]
    assert started == [1], "TypeError is non-retryable by default"


async def test_plain_temporal_workflows_work_side_by_side(client: Client, task_queue: str) -> None:
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[PlainWorkflow, two_flaky_steps],
        activities=[plain_double, add_one, flaky_step],
    ):
        result = await client.execute_workflow(
            PlainWorkflow.run, 20, id=f"plain-{uuid.uuid4().hex[:6]}", task_queue=task_queue
        )
    assert result == 41


def test_workflow_class_is_importable_by_name_for_the_sandbox() -> None:
    import workflows.crash_safe as module

    assert getattr(module, pipeline.__name__) is pipeline
    assert temporal_workflow._Definition.must_from_class(pipeline).name == "pipeline"
    assert temporal_workflow._Definition.must_from_class(calls_broken).name == (
        "jamjet-test.calls-broken"
    )


def test_misuse_is_a_config_error_that_says_the_fix() -> None:
    def sync_fn(x: int) -> int:
        return x

    with pytest.raises(ConfigError, match="async def"):
        task(sync_fn)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="did you mean 'heartbeat_timeout'"):
        task(heartbeat_timout=timedelta(seconds=1))(add_one)  # type: ignore[call-overload]
    with pytest.raises(ConfigError, match="positive"):
        task(heartbeat_timeout=timedelta(0))(add_one)
    with pytest.raises(ConfigError, match="async def"):
        workflow(sync_fn)  # type: ignore[arg-type]
    # Options that would do nothing are refused, not ignored.
    with pytest.raises(ConfigError, match="max_iters= bounds a strategy's loop"):
        task(max_iters=3)(add_one)
    with pytest.raises(ConfigError, match="start_to_close_timeout would be ignored"):
        task(max_cost=0.1, start_to_close_timeout=timedelta(seconds=5))(add_one)
    assert issubclass(ConfigError, JamJetError)


@task(max_cost=0.05)
async def budgeted_note(path: str) -> str:
    # A budget makes the body run in the workflow: this file read is what users try.
    with open(path) as notes:  # noqa: ASYNC230 (the mistake under test)
        return notes.read()


@workflow(name="jamjet-test.budgeted-note")
async def reads_a_note(path: str) -> str:
    return await budgeted_note(path)


async def test_an_inline_task_registered_as_an_activity_says_where_its_body_runs(
    client: Client, task_queue: str
) -> None:
    with pytest.raises(InlineTaskError) as refused:
        Worker(client, task_queue=task_queue, activities=[budgeted_note])
    said = str(refused.value)
    assert "Worker(activities=...)" in said and "has max_cost=" in said
    assert "runs inside the workflow" in said and "what-runs-where" in said
    assert "missing attributes" not in said


async def test_io_in_an_inline_task_fails_the_run_instead_of_hanging_it(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hello")
    async with Worker(client, task_queue=task_queue, workflows=[reads_a_note]):
        handle = await client.start_workflow(
            reads_a_note.run,
            str(note),
            id=f"inline-io-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
            # Without the typed error the workflow task would retry until this timeout.
            execution_timeout=timedelta(seconds=60),
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InlineTaskError"
    assert "@task 'budgeted_note' has max_cost=" in cause.message
    assert "sandbox refused" in cause.message and "open" in cause.message
