"""Workflows for the approval tests (a module of their own: the sandbox re-imports it)."""

from jamjet_temporal import guard, workflow
from workflows.transfer import bank


@workflow(name="test-approvals.guarded")
async def guarded(action: str, amount: float) -> list[str]:
    decision = await guard.requires_approval(action=action, amount=amount)
    return decision.approved_by


@workflow(name="test-approvals.pay")
async def pay(amount: float, to: str) -> str:
    """Calls the bank directly: the policy, not the code, asks for the approval."""
    return await bank.send(amount, to)
