"""Workflows for the budget tests (a module of their own: the sandbox re-imports it)."""

from datetime import timedelta

from temporalio import workflow as temporal_workflow

from jamjet_temporal import llm, task, workflow
from jamjet_temporal.budget import child_budget


@task(max_cost=0.05)
async def chatty(topic: str) -> int:
    """No strategy: keeps asking until the budget refuses a call."""
    calls = 0
    while True:
        await llm.call(f"tell me more about {topic}", model="gpt-4o", max_tokens=2000)
        calls += 1


@workflow(name="test-budget.plain")
async def plain(topic: str) -> int:
    return await chatty(topic)


@workflow(name="test-budget.unpriced")
async def unpriced() -> str:
    return await unpriced_task()


@task(max_cost=1)
async def unpriced_task() -> str:
    return await llm.call("hi", model="no-such-model-anywhere")


@workflow(name="test-budget.child")
async def child(topic: str) -> int:
    calls = 0
    try:
        while True:
            await llm.call(f"child asks about {topic}", model="gpt-4o", max_tokens=2000)
            calls += 1
    except Exception:
        return calls


@task(max_cost=0.20)
async def parent_task(topic: str) -> int:
    with child_budget(max_cost=0.05):
        return await temporal_workflow.execute_child_workflow(
            "test-budget.child",
            topic,
            id=f"{temporal_workflow.info().workflow_id}-child",
            execution_timeout=timedelta(minutes=2),
        )


@workflow(name="test-budget.parent")
async def parent(topic: str) -> int:
    return await parent_task(topic)


@workflow(name="test-budget.unbudgeted")
async def unbudgeted(topic: str) -> int:
    """No budget in the code: the run's budget (set by the client) applies."""
    calls = 0
    while True:
        await llm.call(f"more about {topic}", model="gpt-4o", max_tokens=1000)
        calls += 1
