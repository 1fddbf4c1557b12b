"""Workflows for the approval tests (a module of their own: the sandbox re-imports it)."""

from jamjet_temporal import guard, workflow


@workflow(name="test-approvals.guarded")
async def guarded(action: str, amount: float) -> list[str]:
    decision = await guard.requires_approval(action=action, amount=amount)
    return decision.approved_by
