"""Gate 3: an action that needs a human (the bank's side is ``activities/bank.py``)."""

from activities import bank
from jamjet_temporal import guard, workflow


@workflow
async def transfer(amount: float, to: str) -> str:
    await guard.requires_approval(
        action="wire_transfer",
        amount=amount,
        to=to,
    )
    return await bank.send(amount, to)
