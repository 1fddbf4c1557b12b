"""The policy gate, activity side: record every decision and call; refuse uncleared calls.

Runs on the worker. A tool activity records the gate's decision *before* its body runs (so a
decision is durable before its effect), then one call event when it completes or fails for
good. Event ids are deterministic, so a retried attempt or a second worker taking the step
over stores nothing twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import JsonValue
from pydantic_core import to_jsonable_python
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from ._activity_support import idempotency_key
from ._gate_workflow import GATE_HEADER, INTERNAL_ACTIVITIES, RECORD_ACTIVITY, Clearance
from .audit import AuditEvent, AuditStore, event_id, open_store


class AuditSink:
    """One plugin's audit store, opened on first use (no I/O at worker construction)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: AuditStore | None = None
        self._lock = asyncio.Lock()

    async def store(self) -> AuditStore:
        """The open store."""
        async with self._lock:
            if self._store is None:
                self._store = open_store(self.url)
            return self._store

    async def append(self, events: Sequence[AuditEvent]) -> None:
        """Append durably (idempotent by event id)."""
        await (await self.store()).append(events)

    async def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            await self._store.close()
            self._store = None


class RecordActivities:
    """``jamjet.audit.record``: workflow code's way to record events (refusals)."""

    def __init__(self, sink: AuditSink | None) -> None:
        self._sink = sink

    @activity.defn(name=RECORD_ACTIVITY)
    async def record(self, events: list[AuditEvent]) -> None:
        """Append the events to the audit store."""
        if self._sink is not None:
            await self._sink.append(events)


def _jsonable(value: object) -> JsonValue:
    return to_jsonable_python(value, fallback=repr)  # type: ignore[no-any-return]


def _final(err: BaseException, info: activity.Info) -> bool:
    """Whether Temporal will not retry after this failure."""
    if isinstance(err, ApplicationError) and err.non_retryable:
        return True
    policy = info.retry_policy
    if policy is None:
        return False
    if type(err).__name__ in (policy.non_retryable_error_types or ()):
        return True
    if isinstance(err, ApplicationError) and err.type in (policy.non_retryable_error_types or ()):
        return True
    return bool(policy.maximum_attempts) and info.attempt >= policy.maximum_attempts


class GateActivityInbound(ActivityInboundInterceptor):
    """Records decisions and calls; refuses activities the gate never cleared."""

    def __init__(self, next: ActivityInboundInterceptor, sink: AuditSink | None) -> None:
        super().__init__(next)
        self._sink = sink

    async def execute_activity(self, input: ExecuteActivityInput) -> object:
        info = activity.info()
        if info.activity_type in INTERNAL_ACTIVITIES:
            return await super().execute_activity(input)
        run_id = info.workflow_id or ""
        wf_run = info.workflow_run_id or ""
        payload = input.headers.get(GATE_HEADER)
        if payload is None:
            refusal = AuditEvent(
                id=event_id(run_id, wf_run, info.activity_id, "tool.refused"),
                run_id=run_id or "-",
                workflow_run_id=wf_run or "-",
                kind="tool.refused",
                at=datetime.now(UTC),
                actor={"workflow_type": info.workflow_type, "worker": _worker_identity()},
                data={
                    "tool": info.activity_type,
                    "activity_id": info.activity_id,
                    "reason": "scheduled without a gate decision",
                },
            )
            if self._sink is not None:
                await self._sink.append([refusal])
            raise ApplicationError(
                f"tool '{info.activity_type}' refused: it was scheduled without a JamJet gate "
                "decision; run the workflow on a worker with JamJetPlugin",
                type="ToolNotClearedError",
                non_retryable=True,
            )
        clearance = activity.payload_converter().from_payloads([payload], [Clearance])[0]
        assert isinstance(clearance, Clearance)
        actor: dict[str, JsonValue] = {**clearance.actor, "worker": _worker_identity()}
        if self._sink is not None:
            budget: list[AuditEvent] = []
            if clearance.budget is not None:
                # The budget check that let this model call go ahead, stored beside its
                # policy decision and before the call runs.
                budget.append(
                    AuditEvent(
                        id=event_id(clearance.event_id, "budget"),
                        run_id=run_id,
                        workflow_run_id=wf_run,
                        kind="budget.decision",
                        at=clearance.decided_at,
                        actor=clearance.actor,
                        data={
                            **clearance.budget.model_dump(mode="json"),
                            "decision": "ALLOWED",
                            "activity_id": info.activity_id,
                        },
                    )
                )
            await self._sink.append(
                [
                    AuditEvent(
                        id=clearance.event_id,
                        run_id=run_id,
                        workflow_run_id=wf_run,
                        kind=clearance.kind,
                        at=clearance.decided_at,
                        actor=clearance.actor,
                        data={
                            **clearance.decision.model_dump(mode="json"),
                            "args_digest": clearance.args_digest,
                            "activity_id": info.activity_id,
                            "tool": info.activity_type,
                        },
                    ),
                    *budget,
                ]
            )
        started = time.monotonic()
        try:
            result = await super().execute_activity(input)
        except BaseException as err:
            if self._sink is not None and isinstance(err, Exception) and _final(err, info):
                await self._record_call(input, info, actor, clearance, started, error=err)
            raise
        if self._sink is not None:
            await self._record_call(input, info, actor, clearance, started, result=result)
        return result

    async def _record_call(
        self,
        input: ExecuteActivityInput,
        info: activity.Info,
        actor: dict[str, JsonValue],
        clearance: Clearance,
        started: float,
        *,
        result: object = None,
        error: Exception | None = None,
    ) -> None:
        assert self._sink is not None
        run_id = info.workflow_id or ""
        wf_run = info.workflow_run_id or ""
        kind = "model.call" if clearance.kind == "policy.model_decision" else "tool.call"
        data: dict[str, JsonValue] = {
            "tool": info.activity_type,
            "activity_id": info.activity_id,
            "args": _jsonable(list(input.args)),
            "latency_ms": round((time.monotonic() - started) * 1000, 3),
            "attempt": info.attempt,
            "idempotency_key": idempotency_key(),
            "decision_event": clearance.event_id,
            "outcome": "failed" if error is not None else "completed",
        }
        if error is not None:
            data["error"] = f"{type(error).__name__}: {error}"
        else:
            data["result"] = _jsonable(result)
        await self._sink.append(
            [
                AuditEvent(
                    id=event_id(run_id, wf_run, info.activity_id, kind),
                    run_id=run_id,
                    workflow_run_id=wf_run,
                    kind=kind,
                    at=datetime.now(UTC),
                    actor=actor,
                    data=data,
                )
            ]
        )


def _worker_identity() -> str:
    try:
        return activity.client().identity
    except RuntimeError:
        return ""
