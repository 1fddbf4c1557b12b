"""Workflows and tools for the attack tests (a module of their own: the sandbox re-imports it)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from temporalio import workflow as temporal_workflow
from temporalio.exceptions import ApplicationError

from activities.notes import search
from jamjet_temporal import engram, guard, idempotency_key, llm, task, workflow


@workflow(name="test-security.approval")
async def approval(amount: float) -> list[str]:
    decision = await guard.requires_approval(action="wire_transfer", amount=amount, to="ACME")
    return decision.approved_by


@workflow(name="test-security.parent")
async def parent(amount: float) -> list[str]:
    """The approval is asked for in a child: its requester is still the parent's user."""
    result: list[str] = await temporal_workflow.execute_child_workflow(
        "test-security.approval",
        amount,
        id=f"{temporal_workflow.info().workflow_id}-child",
        result_type=list[str],
    )
    return result


@task(name="test-security.summarize")
async def summarize(text: str, model: str) -> str:
    """A plain task that calls the model itself (the README's `analyze`)."""
    return await llm.call(f"summarize: {text}", model=model, max_tokens=50)


@workflow(name="test-security.task-calls-model")
async def task_calls_model(text: str, model: str) -> str:
    return await summarize(text, model)


@workflow(name="test-security.task-then-model")
async def task_then_model(text: str) -> list[str]:
    """A task spends from the run's budget; the workflow's own call sees what is left."""
    first = await summarize(text, "gpt-4o-mini")
    second = await llm.call(f"and then: {text}", model="gpt-4o-mini", max_tokens=50)
    return [first, second]


@workflow(name="test-security.continues")
async def continues(rounds: int, marker: str) -> str:
    """One model call per run; continues as new until ``rounds`` runs have called."""
    answer = await llm.call(f"{marker} round {rounds}", model="gpt-4o-mini", max_tokens=50)
    if rounds > 1:
        temporal_workflow.continue_as_new(args=[rounds - 1, marker])
    return answer


def _ledger() -> Path:
    return Path(os.environ["JAMJET_TEST_WIRE_LEDGER"])


@task(name="test-security.wire")
async def wire(amount: float) -> str:
    """A side effect: every execution of the body is counted in a ledger file."""
    key = idempotency_key()
    with sqlite3.connect(_ledger()) as db:
        db.execute("CREATE TABLE IF NOT EXISTS sent (key TEXT, amount REAL)")
        db.execute("INSERT INTO sent VALUES (?, ?)", (key, amount))
        # The storage outage starts while the wire is on its way: the audit store refuses
        # the call's record (the test lifts it again).
        audit = os.environ["JAMJET_TEST_AUDIT_FILE"]
    with sqlite3.connect(audit) as db:
        db.execute(
            "CREATE TRIGGER IF NOT EXISTS outage BEFORE INSERT ON audit_events "
            "WHEN NEW.kind = 'tool.call' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )
    return f"sent {amount:.0f}"


def _outage(kind: str) -> None:
    """The audit store starts refusing records of ``kind`` (the test lifts it again)."""
    with sqlite3.connect(os.environ["JAMJET_TEST_AUDIT_FILE"]) as db:
        db.execute(
            f"CREATE TRIGGER IF NOT EXISTS outage_{kind.replace('.', '_')} BEFORE INSERT ON "
            f"audit_events WHEN NEW.kind = '{kind}' "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )


@task(name="test-security.wire-rejected")
async def wire_rejected(amount: float) -> str:
    """Sends the wire, then the bank rejects the confirmation: a final failure after an effect."""
    with sqlite3.connect(_ledger()) as db:
        db.execute("CREATE TABLE IF NOT EXISTS sent (key TEXT, amount REAL)")
        db.execute("INSERT INTO sent VALUES (?, ?)", (idempotency_key(), amount))
    _outage("tool.call")
    raise ApplicationError(
        "the bank rejected the confirmation", type="BankError", non_retryable=True
    )


@task(name="test-security.ask-during-outage")
async def ask_during_outage(marker: str) -> str:
    """Calls the model while the audit store refuses to record model calls."""
    _outage("model.call")
    return await llm.call(f"question {marker}", model="gpt-4o-mini", max_tokens=20)


@workflow(name="test-security.pay-rejected")
async def pay_rejected(amount: float) -> str:
    return await wire_rejected(amount)


@workflow(name="test-security.ask")
async def ask(marker: str) -> str:
    return await ask_during_outage(marker)


@workflow(name="test-security.pay")
async def pay(amount: float) -> str:
    return await wire(amount)


@task(name="test-security.transfer")
async def transfer_funds(amount: float, to: str) -> str:
    return f"moved {amount:.0f} to {to}"


@workflow(name="test-security.pay-vendor")
async def pay_vendor(amount: float) -> str:
    """Calls the tool directly: the policy, not the code, asks for the approval."""
    return await transfer_funds(amount, "Vendor")


@temporal_workflow.defn(name="test-security.waits-then-searches")
class WaitsThenSearches:
    """Waits for a signal, then calls the `search` tool."""

    def __init__(self) -> None:
        self.go = False

    @temporal_workflow.signal(name="go")
    def release(self) -> None:
        self.go = True

    @temporal_workflow.run
    async def run(self) -> list[str]:
        await temporal_workflow.wait_condition(lambda: self.go)
        return await search("v2.3")


@task(name="test-security.open-account")
async def open_account(iban: str, password: str) -> dict[str, str]:
    return {"account": f"acct for {iban}", "pin": "4921-7733"}


@workflow(name="test-security.onboard")
async def onboard(iban: str, password: str) -> dict[str, str]:
    return await open_account(iban, password)


@task(name="test-security.fetch")
async def fetch(query: str) -> str:
    return f"fetched {query}"


@workflow(name="test-security.fan-out")
async def fan_out(marker: str) -> list[str]:
    """A task and a model call at once, under one budget: they take turns with it."""
    import asyncio

    fetched, answered = await asyncio.gather(
        fetch(marker), llm.call(f"summarize {marker}", model="gpt-4o-mini", max_tokens=50)
    )
    return [fetched, answered]


@workflow(name="test-security.two-at-once")
async def two_at_once(marker: str) -> list[str]:
    """Two model calls at once under one budget: the second cannot count the first's money."""
    import asyncio

    answers = await asyncio.gather(
        llm.call(f"first {marker}", model="gpt-4o-mini", max_tokens=50),
        llm.call(f"other {marker}", model="gpt-4o-mini", max_tokens=50),
        return_exceptions=True,
    )
    return [a if isinstance(a, str) else type(a).__name__ for a in answers]


@temporal_workflow.defn(name="test-security.waits-then-recalls")
class WaitsThenRecalls:
    """Waits for a signal, then reads its user's memory (a runtime-internal activity)."""

    def __init__(self) -> None:
        self.go = False

    @temporal_workflow.signal(name="go")
    def release(self) -> None:
        self.go = True

    @temporal_workflow.run
    async def run(self, user: str) -> int:
        await temporal_workflow.wait_condition(lambda: self.go)
        return len(await engram.facts(user))
