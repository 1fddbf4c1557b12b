"""Gate 3: an action that needs a human."""

from jamjet_temporal import guard, workflow
from workflows.transfer import bank


@workflow
async def transfer(amount: float, to: str) -> str:
    await guard.requires_approval(
        action="wire_transfer",
        amount=amount,
        to=to,
    )
    return await bank.send(amount, to)
