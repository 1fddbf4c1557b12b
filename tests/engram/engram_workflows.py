"""Workflows for the Engram tests (a module of their own: the sandbox re-imports it)."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow as temporal_workflow

from jamjet_temporal import engram, task, workflow
from jamjet_temporal.errors import ToolDeniedError
from jamjet_temporal.memory import Context, Fact, Forgotten, Ingested, Message


@workflow(name="test-engram.remember")
async def remember(user: str, session: str, at: datetime, messages: list[Message]) -> Ingested:
    return await engram.remember(user, session, messages, at=at)


@workflow(name="test-engram.record-then-context")
async def record_then_context(user: str, topic: str) -> tuple[list[Fact], Context]:
    await engram.record(user, "Pune", attribute="location", session="s2")
    await temporal_workflow.sleep(timedelta(milliseconds=10))
    await engram.record(user, "Amsterdam", attribute="location", session="s6")
    await engram.record(user, f"{user} prefers concise answers", session="s6")
    history = await engram.facts(user, include_superseded=True)
    return history, await engram.context_for(user=user, topic=topic, budget_tokens=400)


@workflow(name="test-engram.bad-budget")
async def bad_budget(user: str) -> Context:
    return await engram.context_for(user=user, topic="x", budget_tokens=0)


@workflow(name="test-engram.forget")
async def forget(user: str) -> Forgotten:
    return await engram.forget(user)


@workflow(name="test-engram.governed")
async def governed(user: str) -> tuple[Context, list[Fact], Forgotten]:
    await engram.record(user, "Pune", attribute="location", session="s2")
    await engram.record(user, "Amsterdam", attribute="location", session="s6")
    context = await engram.context_for(
        user=user, topic="where does the user live", budget_tokens=300
    )
    found = await engram.facts(user, include_superseded=True)
    return context, found, await engram.forget(user)


@workflow(name="test-engram.write-then-read")
async def write_then_read(user: str) -> str:
    try:
        await engram.record(user, "Lisbon", attribute="location", session="s1")
    except ToolDeniedError as err:
        written = f"write refused ({err.subject}, {err.scope})"
    else:
        written = "written"
    context = await engram.context_for(user=user, topic="location", budget_tokens=200)
    return f"{written}; read {len(context.items)} items"


@task(name="test-engram.reader-agent", tools=[], memory="read")
async def reader_agent(user: str) -> str:
    context = await engram.context_for(user=user, topic="location", budget_tokens=200)
    try:
        await engram.record(user, "Oslo", attribute="location", session="s9")
    except ToolDeniedError as err:
        return f"read {len(context.items)} items; write refused ({err.subject}, {err.scope})"
    return "written"


@workflow(name="test-engram.agent-reads")
async def agent_reads(user: str) -> str:
    await engram.record(user, "Lisbon", attribute="location", session="s1")
    return await reader_agent(user)
