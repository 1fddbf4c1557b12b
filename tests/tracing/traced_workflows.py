"""Workflows for the tracing tests (a module of their own: the sandbox re-imports it)."""

from __future__ import annotations

from jamjet_temporal import agent, guard, llm, task, workflow
from jamjet_temporal.agent import AgentResult


@task(name="tracing.lookup")
async def lookup(term: str) -> str:
    """Look a term up in the glossary."""
    return f"{term}: a durable step"


@task(name="tracing.unlisted")
async def unlisted(term: str) -> str:
    """A tool the agent is not given (the gate blocks it)."""
    return term


@task(tools=[lookup])
async def researcher(question: str) -> AgentResult:
    return await agent.run(question, system="Answer briefly.")


@workflow(name="tracing.ask")
async def ask(question: str) -> AgentResult:
    """An agent with one tool."""
    return await researcher(question)


@task(max_cost=0.05)
async def chatty(topic: str) -> int:
    """Asks until the budget refuses a call."""
    calls = 0
    while True:
        await llm.call(f"tell me more about {topic}", model="gpt-4o", max_tokens=2000)
        calls += 1


@workflow(name="tracing.budget")
async def budgeted(topic: str) -> int:
    return await chatty(topic)


@workflow(name="tracing.approve")
async def approve_then_lookup(amount: float, to: str) -> str:
    """Waits for a person to approve, then calls a tool."""
    await guard.requires_approval(action="wire_transfer", amount=amount, to=to)
    return await lookup(to)
