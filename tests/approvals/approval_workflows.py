"""Workflows for the approval tests (a module of their own: the sandbox re-imports it)."""

from activities import bank
from activities.notes import delete_database, search
from jamjet_temporal import guard, llm, task, workflow
from jamjet_temporal.budget import BudgetExceededError
from jamjet_temporal.errors import ToolDeniedError


@workflow(name="test-approvals.guarded")
async def guarded(action: str, amount: float) -> list[str]:
    decision = await guard.requires_approval(action=action, amount=amount)
    return decision.approved_by


@workflow(name="test-approvals.pay")
async def pay(amount: float, to: str) -> str:
    """Calls the bank directly: the policy, not the code, asks for the approval."""
    return await bank.send(amount, to)


@task(max_cost=0.05)
async def spend_until_halted(marker: str) -> int:
    """Calls the model until the budget refuses the next call; returns how many it made."""
    calls = 0
    try:
        while True:
            await llm.call(f"estimate {marker}", model="gpt-4o", max_tokens=2000)
            calls += 1
    except BudgetExceededError:
        return calls


@workflow(name="test-export.everything")
async def everything(marker: str) -> int:
    """One run with a tool call, a denial, an approval and a budget halt."""
    await search("v2.3")
    try:
        await delete_database("prod")
    except ToolDeniedError:
        pass
    await guard.requires_approval(action="quick_export", amount=1.0)
    return await spend_until_halted(marker)
