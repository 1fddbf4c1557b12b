"""The workflow of the Web UI tests (a module of its own: the sandbox re-imports it)."""

from activities import bank
from activities.notes import search
from jamjet_temporal import agent, guard, workflow


@workflow(name="test-webui.research_then_pay")
async def research_then_pay(question: str, amount: float, to: str) -> str:
    """An agent looks something up (model calls, a tool call), then a wire waits for approval."""
    await agent.run(question, tools=[search])
    await guard.requires_approval(action="wire_transfer", amount=amount, to=to)
    return await bank.send(amount, to)
