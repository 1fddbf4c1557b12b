"""The governed run of the multi-host test (a module of its own: the sandbox re-imports it).

One run, every governance path: Engram memory read and written (shared PostgreSQL store), a
budgeted model call and a call the budget halts, a tool the policy blocks, a wire transfer that
waits for signed approvals (two approvers above 5,000), and the booking itself, a side effect
keyed by its idempotency key.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow as temporal_workflow

from jamjet_temporal import engram, guard, llm, task, workflow
from jamjet_temporal.errors import BudgetExceededError, ToolDeniedError
from tests.multihost.mh_tools import book, purge

MODEL = "gpt-4o-mini"


class Payment(BaseModel):
    user: str
    amount: float
    payee: str


class Assessment(BaseModel):
    answer: str
    halted: str


class Outcome(BaseModel):
    txn: str
    approved_by: list[str]
    assessment: str
    halted: str
    blocked: str
    remembered: int


def fact_for(workflow_id: str, payment: Payment) -> str:
    """What a run remembers about its payment (one fact per run)."""
    return f"{workflow_id} wired {payment.amount:.2f} to {payment.payee}"


@task(max_cost=0.01)
async def assess(payee: str, amount: float) -> Assessment:
    answer = await llm.call(f"Assess paying {amount:.2f} to {payee}", model=MODEL, max_tokens=200)
    try:
        # Projected at 100,000 output tokens: over the task's cap, so never sent.
        await llm.call(f"Write the full memo on {payee}", model=MODEL, max_tokens=100_000)
    except BudgetExceededError as err:
        return Assessment(answer=answer, halted=err.reason)
    return Assessment(answer=answer, halted="")


@workflow(name="multihost.governed")
async def governed(payment: Payment) -> Outcome:
    run = temporal_workflow.info().workflow_id
    context = await engram.context_for(
        user=payment.user, topic=f"payments to {payment.payee}", budget_tokens=300
    )
    assessed = await assess(payment.payee, payment.amount)
    blocked = ""
    try:
        await purge(payment.payee)
    except ToolDeniedError as err:
        blocked = err.reason
    decision = await guard.requires_approval(
        action="wire_transfer", amount=payment.amount, to=payment.payee
    )
    txn = await book(payment.amount, payment.payee)
    await engram.record(payment.user, fact_for(run, payment), session=run)
    return Outcome(
        txn=txn,
        approved_by=decision.approved_by,
        assessment=assessed.answer,
        halted=assessed.halted,
        blocked=blocked,
        remembered=len(context.facts),
    )
