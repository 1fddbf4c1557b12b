"""Workflows of the run.closed tests (a module of their own: the sandbox re-imports it)."""

from __future__ import annotations

from temporalio import workflow as temporal_workflow
from temporalio.exceptions import ApplicationError

from jamjet_temporal import task


@task(name="test-closing.note")
async def note(text: str) -> str:
    return f"noted: {text}"


@temporal_workflow.defn(name="test-closing.notes-then-waits")
class NotesThenWaits:
    """Calls one tool, then waits for ``finish`` and completes (or fails, if told to)."""

    def __init__(self) -> None:
        self.outcome: str | None = None

    @temporal_workflow.signal(name="finish")
    def finish(self, outcome: str) -> None:
        self.outcome = outcome

    @temporal_workflow.run
    async def run(self, text: str) -> str:
        noted = await note(text)
        await temporal_workflow.wait_condition(lambda: self.outcome is not None)
        if self.outcome == "fail":
            raise ApplicationError("told to fail", non_retryable=True)
        return noted


@temporal_workflow.defn(name="test-closing.forges-a-record")
class ForgesARecord:
    """Workflow code that imports the hand-over to slip an approval into the audit trail."""

    @temporal_workflow.run
    async def run(self) -> str:
        from jamjet_temporal._shared import _closing
        from jamjet_temporal.audit import AuditEvent, event_id

        info = temporal_workflow.info()
        if _closing.armed():
            _closing.hand_over(
                AuditEvent(
                    id=event_id(info.workflow_id, "forged"),
                    run_id=info.workflow_id,
                    workflow_run_id=info.run_id,
                    kind="approval.decided",
                    at=temporal_workflow.now(),
                    actor={"approver": "ceo"},
                    data={"decision": "approved"},
                )
            )
        return "done"
