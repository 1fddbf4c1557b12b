"""The policy gate, activity side: record every decision and call; refuse uncleared calls.

Runs on the worker. A tool activity records the gate's decision *before* its body runs (so a
decision is durable before its effect), then one call event when it completes or fails for
good. Event ids are deterministic, so a retried attempt or a second worker taking the step
over stores nothing twice.

The tool body never runs twice because bookkeeping failed: when the call record cannot be
written after the body succeeded, the result is kept in the activity's heartbeat details and
the attempt fails; the retry finds it there, writes only the record and returns the kept
result.

Model calls a task makes itself (``llm.call`` in a ``@task`` body) pass the same gate as those
from workflow code (:class:`ActivityGate`): decided against the model allow-lists the clearance
carries, projected against the budget set aside for the task, recorded, and their cost sent
back with the task's result (or failure) to be charged to the run.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol

from pydantic import JsonValue
from pydantic_core import to_jsonable_python
from temporalio import activity
from temporalio.converter import DataConverter, PayloadCodec, PayloadConverter
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from jamjet_temporal._shared._activity import (
    current_heartbeat_details,
    heartbeat_details,
    idempotency_key,
)
from jamjet_temporal._shared._observe import observer
from jamjet_temporal._shared._runtime import INTERNAL_HEADER, is_reserved
from jamjet_temporal._shared._wire import (
    GATE_HEADER,
    MEMORY_EVENT_KINDS,
    MEMORY_SUBJECTS,
    RUN_CLOSED,
    SPEND_DETAIL,
)
from jamjet_temporal.audit import AuditEvent, AuditStore, event_id, open_store
from jamjet_temporal.audit._checkpoint import CheckpointSigner
from jamjet_temporal.audit._export import redact_event
from jamjet_temporal.audit._keys import checkpoint_marks_path, load_or_create_signing_key
from jamjet_temporal.audit._seal import SEALED_FIELDS, is_sealed, seal
from jamjet_temporal.budget._ledger import Budget, BudgetLedger, CallCost, call_cost, project
from jamjet_temporal.budget._prices import PriceTable
from jamjet_temporal.budget._tokens import count_message_tokens
from jamjet_temporal.budget._workflow import DEFAULT_MAX_OUTPUT_TOKENS
from jamjet_temporal.errors import ToolNotClearedError, UnknownModelPriceError
from jamjet_temporal.gate._workflow import (
    Clearance,
    SpentResult,
    TaskSpend,
    a2a_call,
    digest,
    is_a2a_call,
    is_mcp_call,
    mcp_call,
)
from jamjet_temporal.llm._types import ChatRequest, ChatResult
from jamjet_temporal.memory._audit import memory_record
from jamjet_temporal.policy import Policy, PolicyScopes, decide_model

#: Key of our own entry in an activity's heartbeat details.
_DETAILS_KEY = "jamjet"


class AuditSink:
    """One plugin's audit store, opened on first use (no I/O at worker construction).

    Appends through it sign checkpoints of the store's chain head with the audit signing
    key, which the store's database users cannot forge: at the signer's cadence, and with
    every ``run.closed`` event, so that each finished run's trail is covered.

    Args:
        url: The audit store URL.
        key: The signing key file; None: ``$JAMJET_AUDIT_KEY`` or
            ``~/.jamjet/audit-signing.key`` (created on first use).
    """

    def __init__(
        self, url: str, key: str | os.PathLike[str] | None = None, redact: Sequence[str] = ()
    ) -> None:
        self.url = url
        self._key = None if key is None else Path(key).expanduser()
        self._redact = tuple(redact)
        self._codec: PayloadCodec | None = None
        self._converter: PayloadConverter | None = None
        self._store: AuditStore | None = None
        self._lock = asyncio.Lock()

    def use_converter(self, converter: DataConverter) -> None:
        """Seal audited payloads with this data converter's codec, when it has one."""
        self._codec = converter.payload_codec
        self._converter = converter.payload_converter

    async def _prepare(self, event: AuditEvent) -> AuditEvent:
        """The event as stored: redaction rules applied, payload fields sealed by the codec.

        Both happen before the event is hashed into the chain, so neither the plain value of a
        redacted field nor, with an encrypting codec, any audited payload is ever at rest.
        """
        if not self._redact and self._codec is None:
            return event
        body = event.model_dump(mode="json")
        if self._redact:
            body, masked = redact_event(body, self._redact)
            if masked:
                body["data"]["redacted"] = [m["path"] for m in masked]
        if self._codec is not None and self._converter is not None:
            data = body["data"]
            for name in SEALED_FIELDS:
                if name in data and not is_sealed(data[name]):
                    data[name] = await seal(data[name], self._converter, self._codec)
        return AuditEvent.model_validate(body)

    async def store(self) -> AuditStore:
        """The open store (a bad signing key raises ``SigningKeyError`` here)."""
        async with self._lock:
            if self._store is None:
                key = await asyncio.to_thread(load_or_create_signing_key, self._key)
                # The newest checkpoint this key signed per store is kept beside the key: a
                # store that lost it (rewritten, checkpoints deleted) is refused, not re-signed.
                marks = checkpoint_marks_path(self._key)
                self._store = open_store(self.url, signer=CheckpointSigner(key, marks=marks))
            return self._store

    async def append(self, events: Sequence[AuditEvent]) -> None:
        """Append durably (idempotent by event id), with a checkpoint if a run closes."""
        closing = any(event.kind == RUN_CLOSED for event in events)
        prepared = [await self._prepare(event) for event in events]
        await (await self.store()).append(prepared, checkpoint=closing)

    async def append_detached(self, events: Sequence[AuditEvent]) -> None:
        """Append as ``append`` does, through a store opened for this call only (for a caller
        on an event loop of its own, which the shared store's connection is not bound to)."""
        own = AuditSink(self.url, self._key, self._redact)
        own._codec, own._converter = self._codec, self._converter
        try:
            await own.append(events)
        finally:
            await own.close()

    async def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            await self._store.close()
            self._store = None


class RecordActivities:
    """``jamjet.audit.record``: workflow code's way to record events (refusals, run.closed)."""

    def __init__(self, sink: AuditSink | None) -> None:
        self._sink = sink

    @activity.defn(name="jamjet.audit.record")
    async def record(self, events: list[AuditEvent]) -> None:
        """Append the events to the audit store."""
        if self._sink is not None:
            await self._sink.append(events)


class ChatClient(Protocol):
    """What an activity gate needs to make a model call: the plugin's model client."""

    async def complete(self, request: ChatRequest) -> ChatResult:
        """One chat completion."""
        ...


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


def _keep(**state: object) -> None:
    """Keep ``state`` in this attempt's heartbeat details (a retry of the attempt finds it)."""
    heartbeat_details.set({**heartbeat_details.get(), **state})
    activity.heartbeat(*current_heartbeat_details())


def _kept_state(info: activity.Info) -> dict[str, Any]:
    """What an earlier attempt of this activity left in its heartbeat details."""
    for detail in info.heartbeat_details:
        if isinstance(detail, dict) and isinstance(detail.get(_DETAILS_KEY), dict):
            return dict(detail[_DETAILS_KEY])
    return {}


_GATE: ContextVar[ActivityGate | None] = ContextVar("jamjet_activity_gate", default=None)


def current_activity_gate() -> ActivityGate | None:
    """The gate of the governed activity running now (None outside one)."""
    return _GATE.get()


class ActivityGate:
    """Model calls made inside one governed activity attempt: decided, budgeted, recorded."""

    def __init__(
        self,
        clearance: Clearance,
        sink: AuditSink | None,
        chat: ChatClient,
        prices: PriceTable,
        spent: tuple[CallCost, ...],
    ) -> None:
        self._clearance = clearance
        self._sink = sink
        self._chat = chat
        self._prices = prices
        self.calls = spent
        self._count = 0
        self._lock = asyncio.Lock()

    def _scopes(self) -> tuple[PolicyScopes, dict[str, str]]:
        stack = tuple(
            (m.scope, Policy(model_allowlist=m.allow)) for m in self._clearance.model_scopes
        )
        return PolicyScopes(scopes=stack), {
            m.scope: m.policy_version for m in self._clearance.model_scopes
        }

    async def chat(self, request: ChatRequest) -> ChatResult:
        """One model call from inside the activity, through the gate."""
        async with self._lock:  # one at a time: each is projected against what the last spent
            return await self._chat_locked(request)

    async def _chat_locked(self, request: ChatRequest) -> ChatResult:
        info = activity.info()
        self._count += 1
        base = (
            info.workflow_id or "-",
            info.workflow_run_id or "-",
            info.activity_id,
            f"attempt-{info.attempt}",
            "model",
            str(self._count),
        )
        actor: dict[str, JsonValue] = {**self._clearance.actor, "worker": _worker_identity()}
        scopes, versions = self._scopes()
        decision = decide_model(scopes, request.model)
        if decision.scope in versions:
            decision = decision.model_copy(update={"policy_version": versions[decision.scope]})

        def event(kind: str, suffix: str, data: dict[str, JsonValue]) -> AuditEvent:
            return AuditEvent(
                id=event_id(*base, suffix),
                run_id=info.workflow_id or "-",
                workflow_run_id=info.workflow_run_id or "-",
                kind=kind,
                at=datetime.now(UTC),
                actor=actor,
                data={"activity_id": info.activity_id, "tool": info.activity_type, **data},
            )

        decided = event(
            "policy.model_decision",
            "decision",
            {**decision.model_dump(mode="json"), "args_digest": digest([request])},
        )
        watch = observer()  # tracing: the decision as a span event (None when off)
        if watch is not None:
            watch.gate_decision(decided.kind, decision, decided.id if self._sink else None)
        if not decision.allowed:
            await self._append([decided])
            raise ApplicationError(
                f"model '{request.model}' refused: {decision.reason} (scope {decision.scope}) "
                f"[audit {decided.id}]",
                type="ModelDeniedError",
                non_retryable=True,
            )
        allowance = self._clearance.allowance
        price = None
        before: list[AuditEvent] = [decided]
        if allowance is not None:
            if request.max_tokens is None:
                request = request.model_copy(update={"max_tokens": DEFAULT_MAX_OUTPUT_TOKENS})
            assert request.max_tokens is not None
            try:
                price = self._prices.price(request.model)
            except UnknownModelPriceError as err:
                raise ApplicationError(
                    err.reason or str(err), type="UnknownModelPriceError", non_retryable=True
                ) from err
            ledger = BudgetLedger(budget=allowance)
            for call in self.calls:
                ledger = ledger.charge(call)
            projection = project(
                price, count_message_tokens(request.messages, request.tools), request.max_tokens
            )
            check = ledger.check(projection)
            verdict = "ALLOWED" if check.allowed else "HALT"
            budget_event = event(
                "budget.decision",
                "budget",
                {**check.model_dump(mode="json"), "decision": verdict, "scope": "task"},
            )
            before.append(budget_event)
            if not check.allowed and watch is not None:
                watch.budget_halt(check, "task", budget_event.id)
            if not check.allowed:
                await self._append(before)
                raise ApplicationError(
                    f"budget: {check.reason} [audit {budget_event.id}]",
                    {SPEND_DETAIL: TaskSpend(calls=self.calls).model_dump(mode="json")},
                    type="BudgetExceededError",
                    non_retryable=True,
                )
        await self._append(before)
        started = time.monotonic()
        result = await self._chat.complete(request)
        data: dict[str, JsonValue] = {
            "model": request.model,
            "usage": result.usage.model_dump(mode="json"),
            "latency_ms": round((time.monotonic() - started) * 1000, 3),
            "decision_event": decided.id,
        }
        if price is not None:
            cost = call_cost(price, result.usage)
            self.calls = (*self.calls, cost)
            data["cost"] = str(cost.cost)
            # Survives a retry of this activity: the next attempt's allowance is what is left.
            _keep(spent=TaskSpend(calls=self.calls).model_dump(mode="json"))
        called = event("model.call", "call", data)
        try:
            await self._append([called])
        except Exception:
            # The model has answered (and been paid): a failed record must not make the task's
            # body, and this call, run again. It is kept and written with the task's record.
            _keep(
                pending=[
                    *heartbeat_details.get().get("pending", []),
                    called.model_dump(mode="json"),
                ]
            )
        return result

    async def _append(self, events: list[AuditEvent]) -> None:
        if self._sink is not None:
            await self._sink.append(events)

    @property
    def allowance(self) -> Budget | None:
        """The budget set aside for what this activity spends (None: no budget in force)."""
        return self._clearance.allowance

    @property
    def user(self) -> str | None:
        """The proven user the run acts for (None: none)."""
        user = self._clearance.actor.get("user")
        return user if isinstance(user, str) else None

    def charge(self, call: CallCost) -> None:
        """Count ``call`` as spent by this activity: spend made elsewhere (a remote A2A agent's
        reported spend) goes back to the run with the result or failure, like its own model
        calls. Kept across a retry; charging the same call again (a retry that reads the same
        final report) counts it once."""
        if call in self.calls:
            return
        self.calls = (*self.calls, call)
        _keep(spent=TaskSpend(calls=self.calls).model_dump(mode="json"))

    async def record(self, kind: str, suffix: str, data: dict[str, JsonValue]) -> str | None:
        """Append one event of this activity attempt to the audit trail (its id, None when the
        trail is off). ``suffix`` tells apart the attempt's events of one kind."""
        info = activity.info()
        event = AuditEvent(
            id=event_id(
                info.workflow_id or "-",
                info.workflow_run_id or "-",
                info.activity_id,
                f"attempt-{info.attempt}",
                suffix,
            ),
            run_id=info.workflow_id or "-",
            workflow_run_id=info.workflow_run_id or "-",
            kind=kind,
            at=datetime.now(UTC),
            actor={**self._clearance.actor, "worker": _worker_identity()},
            data={"activity_id": info.activity_id, **data},
        )
        await self._append([event])
        return event.id if self._sink is not None else None


class GateActivityInbound(ActivityInboundInterceptor):
    """Records decisions and calls; refuses activities the gate never cleared."""

    def __init__(
        self,
        next: ActivityInboundInterceptor,
        sink: AuditSink | None,
        governance: str,
        chat: ChatClient,
        prices: PriceTable,
    ) -> None:
        super().__init__(next)
        self._sink = sink
        self._governance = governance
        self._chat = chat
        self._prices = prices

    async def _refuse(
        self,
        info: activity.Info,
        reason: str,
        message: str,
        tool: dict[str, JsonValue] | None = None,
    ) -> NoReturn:
        run_id = info.workflow_id or ""
        wf_run = info.workflow_run_id or ""
        refusal = AuditEvent(
            id=event_id(run_id, wf_run, info.activity_id, "tool.refused"),
            run_id=run_id or "-",
            workflow_run_id=wf_run or "-",
            kind="tool.refused",
            at=datetime.now(UTC),
            actor={"workflow_type": info.workflow_type, "worker": _worker_identity()},
            data={
                **(tool or {"tool": info.activity_type}),
                "activity_id": info.activity_id,
                "reason": reason,
            },
        )
        if self._sink is not None:
            await self._sink.append([refusal])
        raise ApplicationError(message, type=ToolNotClearedError.__name__, non_retryable=True)

    async def execute_activity(self, input: ExecuteActivityInput) -> object:
        info = activity.info()
        if is_reserved(info.activity_type):
            mark = input.headers.get(INTERNAL_HEADER)
            if mark is None:
                await self._refuse(
                    info,
                    "runtime-internal activity scheduled without the runtime's mark",
                    f"'{info.activity_type}' refused: it is runtime-internal and only the "
                    "JamJet runtime schedules it",
                )
            assert mark is not None
            governance = activity.payload_converter().from_payloads([mark], [str])[0]
            self._check_governance(governance)
            if info.activity_type in MEMORY_SUBJECTS and self._sink is not None:
                return await self._memory_call(input, info)
            return await super().execute_activity(input)
        tool = _tool_fields(info, input)
        payload = input.headers.get(GATE_HEADER)
        if payload is None:
            await self._refuse(
                info,
                "scheduled without a gate decision",
                f"tool '{tool['tool']}' refused: it was scheduled without a JamJet gate "
                "decision; run the workflow on a worker with JamJetPlugin",
                tool,
            )
        assert payload is not None
        clearance = activity.payload_converter().from_payloads([payload], [Clearance])[0]
        assert isinstance(clearance, Clearance)
        self._check_governance(clearance.governance)
        governed = is_mcp_call(info.activity_type) or is_a2a_call(info.activity_type)
        if governed and clearance.decision.subject != tool["tool"]:
            # The decision travels beside the arguments: one decided for another tool (a
            # header copied onto another call) clears nothing.
            what = "MCP tool" if is_mcp_call(info.activity_type) else "A2A delegation"
            await self._refuse(
                info,
                f"the gate decision is for '{clearance.decision.subject}', not this call",
                f"{what} '{tool['tool']}' refused: its gate decision was made for "
                f"'{clearance.decision.subject}'",
                tool,
            )
        kept = _kept_state(info)
        spent = tuple(
            CallCost.model_validate(c) for c in (kept.get("spent") or {}).get("calls", [])
        )
        token = heartbeat_details.set(
            {key: kept[key] for key in ("spent", "pending") if key in kept}
        )
        try:
            if "outcome" in kept:
                # The body ran (and succeeded, or failed for good) in an earlier attempt; only
                # its record was missing.
                done = kept["outcome"]
                await self._record_call(
                    input,
                    info,
                    clearance,
                    tool,
                    done["latency_ms"],
                    done["attempt"],
                    result=done.get("result"),
                    error=done.get("error"),
                )
                if "error" not in done:
                    return self._answer(clearance, done["result"], spent)
                final = ApplicationError(done["message"], type=done["type"], non_retryable=True)
                raise (
                    _with_spend(final, spent)
                    if clearance.allowance is not None and spent
                    else final
                )
            await self._record_decision(info, clearance, tool)
            gate = ActivityGate(clearance, self._sink, self._chat, self._prices, spent)
            gate_token = _GATE.set(gate)
            started = time.monotonic()
            try:
                result = await super().execute_activity(input)
            except BaseException as err:
                latency = round((time.monotonic() - started) * 1000, 3)
                if self._sink is not None and isinstance(err, Exception) and _final(err, info):
                    text = f"{type(err).__name__}: {err}"
                    try:
                        await self._record_call(
                            input, info, clearance, tool, latency, info.attempt, error=text
                        )
                    except Exception as store_error:
                        # Recording the failure failed: keep it, and let the retry record it
                        # and fail as the tool did, instead of running the body again.
                        _keep(
                            outcome={
                                "error": text,
                                "type": err.type
                                if isinstance(err, ApplicationError) and err.type
                                else type(err).__name__,
                                "message": err.message
                                if isinstance(err, ApplicationError)
                                else str(err),
                                "latency_ms": latency,
                                "attempt": info.attempt,
                            }
                        )
                        raise ApplicationError(
                            f"'{info.activity_type}' failed, and recording the failure failed "
                            f"({type(store_error).__name__}: {store_error}); the failure is kept "
                            "and only its record is retried, the tool does not run again",
                            type="AuditRecordError",
                        ) from store_error
                if isinstance(err, Exception) and clearance.allowance is not None and gate.calls:
                    raise _with_spend(err, gate.calls) from err
                raise
            finally:
                _GATE.reset(gate_token)
            latency = round((time.monotonic() - started) * 1000, 3)
            plain = _jsonable(result)
            try:
                await self._record_call(
                    input, info, clearance, tool, latency, info.attempt, result=plain
                )
            except Exception as err:
                _keep(outcome={"result": plain, "latency_ms": latency, "attempt": info.attempt})
                raise ApplicationError(
                    f"'{info.activity_type}' ran, but recording its call failed "
                    f"({type(err).__name__}: {err}); the result is kept and only the record "
                    "is retried, the tool does not run again",
                    type="AuditRecordError",
                ) from err
            return self._answer(clearance, result, gate.calls)
        finally:
            heartbeat_details.reset(token)

    async def _memory_call(self, input: ExecuteActivityInput, info: activity.Info) -> object:
        """A memory call: its decision stored before it runs, then what it read or wrote
        (counts, tokens, ids: never the memory itself).

        Repeating a memory call is harmless (reads read, writes merge, forget finds nothing
        more), so a record that fails fails the attempt and the retry runs the call again.
        """
        subject = MEMORY_SUBJECTS[info.activity_type]
        payload = input.headers.get(GATE_HEADER)
        clearance: Clearance | None = None
        if payload is not None:
            clearance = activity.payload_converter().from_payloads([payload], [Clearance])[0]
            assert isinstance(clearance, Clearance)
            if clearance.decision.subject != subject:
                await self._refuse(
                    info,
                    f"the gate decision is for '{clearance.decision.subject}', not this call",
                    f"memory call '{subject}' refused: its gate decision was made for "
                    f"'{clearance.decision.subject}'",
                    {"tool": subject, "activity": info.activity_type},
                )
            await self._record_decision(
                info, clearance, {"tool": subject, "activity": info.activity_type}
            )
        # else: scheduled by a worker from before memory calls were decided (its run goes on).
        started = time.monotonic()
        result: object = None
        error: str | None = None
        try:
            result = await super().execute_activity(input)
        except BaseException as err:
            if not (isinstance(err, Exception) and _final(err, info)):
                raise
            error = f"{type(err).__name__}: {err}"
            await self._record_memory(input, info, clearance, started, None, error)
            raise
        await self._record_memory(input, info, clearance, started, result, None)
        return result

    async def _record_memory(
        self,
        input: ExecuteActivityInput,
        info: activity.Info,
        clearance: Clearance | None,
        started: float,
        result: object,
        error: str | None,
    ) -> None:
        assert self._sink is not None
        kind = MEMORY_EVENT_KINDS[info.activity_type]
        request = input.args[0] if len(input.args) == 1 else None
        data: dict[str, JsonValue] = {
            "tool": MEMORY_SUBJECTS[info.activity_type],
            "activity": info.activity_type,
            "activity_id": info.activity_id,
            **(memory_record(info.activity_type, request, result) if request is not None else {}),
            "latency_ms": round((time.monotonic() - started) * 1000, 3),
            "attempt": info.attempt,
            "decision_event": clearance.event_id if clearance is not None else None,
            "outcome": "failed" if error is not None else "completed",
        }
        if error is not None:
            data["error"] = error
        actor: dict[str, JsonValue] = (
            clearance.actor if clearance is not None else {"workflow_type": info.workflow_type}
        )
        await self._sink.append([_after_call(info, kind, actor, data)])

    def _check_governance(self, governance: str) -> None:
        """Refuse (retryably) an activity of a run pinned to other governance than ours."""
        if governance and governance != self._governance:
            # Another worker on this task queue may hold the run's governance; Temporal
            # retries the attempt there (or here once this worker is reconfigured).
            raise ApplicationError(
                f"this worker's governance ({self._governance}) is not the run's "
                f"({governance}): it does not run the run's activities or record its trail",
                type="GovernanceMismatch",
            )

    @staticmethod
    def _answer(clearance: Clearance, result: object, calls: tuple[CallCost, ...]) -> object:
        if clearance.allowance is None:
            return result
        return SpentResult(result=_jsonable(result), spend=TaskSpend(calls=calls))

    async def _record_decision(
        self, info: activity.Info, clearance: Clearance, tool: dict[str, JsonValue]
    ) -> None:
        if self._sink is None:
            return
        run_id = info.workflow_id or ""
        wf_run = info.workflow_run_id or ""
        budget: list[AuditEvent] = []
        if clearance.budget is not None:
            # The budget check that let this model call go ahead, stored beside its policy
            # decision and before the call runs.
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
                        **tool,
                    },
                ),
                *budget,
            ]
        )

    async def _record_call(
        self,
        input: ExecuteActivityInput,
        info: activity.Info,
        clearance: Clearance,
        tool: dict[str, JsonValue],
        latency_ms: float,
        attempt: int,
        *,
        result: JsonValue = None,
        error: str | None = None,
    ) -> None:
        """Write the call's record, with any events an earlier attempt could not write."""
        if self._sink is None:
            return
        pending = [AuditEvent.model_validate(e) for e in heartbeat_details.get().get("pending", [])]
        kind = "model.call" if clearance.kind == "policy.model_decision" else "tool.call"
        data: dict[str, JsonValue] = {
            **tool,
            "activity_id": info.activity_id,
            "args": _jsonable(list(input.args)),
            "latency_ms": latency_ms,
            "attempt": attempt,
            "idempotency_key": idempotency_key(),
            "decision_event": clearance.event_id,
            "outcome": "failed" if error is not None else "completed",
        }
        if error is not None:
            data["error"] = error
        else:
            data["result"] = result
        await self._sink.append([*pending, _after_call(info, kind, clearance.actor, data)])


def _after_call(
    info: activity.Info, kind: str, actor: dict[str, JsonValue], data: dict[str, JsonValue]
) -> AuditEvent:
    """The event recording a call once it is done (one per activity and kind: a retry that
    records it again stores nothing new)."""
    run_id = info.workflow_id or ""
    wf_run = info.workflow_run_id or ""
    return AuditEvent(
        id=event_id(run_id, wf_run, info.activity_id, kind),
        run_id=run_id,
        workflow_run_id=wf_run,
        kind=kind,
        at=datetime.now(UTC),
        actor={**actor, "worker": _worker_identity()},
        data=data,
    )


def _tool_fields(info: activity.Info, input: ExecuteActivityInput) -> dict[str, JsonValue]:
    """How the audit trail names the tool an activity is: its activity type, or for an MCP
    call the tool ``ALIAS.TOOL`` with the server's alias and the activity type beside it (for
    an A2A delegation ``a2a:ALIAS.SKILL``, with the agent's alias or URL)."""
    if is_a2a_call(info.activity_type):
        delegation = a2a_call(input.args)
        if delegation is None:
            return {"tool": info.activity_type}
        return {
            "tool": delegation.subject,
            "a2a_agent": delegation.agent,
            "activity": info.activity_type,
        }
    if not is_mcp_call(info.activity_type):
        return {"tool": info.activity_type}
    call = mcp_call(input.args)
    if call is None:
        return {"tool": info.activity_type}
    fields: dict[str, JsonValue] = {
        "tool": call.subject,
        "mcp_server": call.server,
        "activity": info.activity_type,
    }
    if call.listed is not None and call.listed.annotations is not None:
        # What the decision's `when:` rules tested, as the run listed it.
        fields["mcp_annotations"] = call.listed.annotations
    return fields


def _with_spend(err: Exception, calls: tuple[CallCost, ...]) -> ApplicationError:
    """The same failure, carrying what the task's model calls cost (charged by the gate)."""
    spend = {SPEND_DETAIL: TaskSpend(calls=calls).model_dump(mode="json")}
    if isinstance(err, ApplicationError):
        if any(isinstance(d, dict) and SPEND_DETAIL in d for d in err.details):
            return err
        return ApplicationError(
            err.message,
            *err.details,
            spend,
            type=err.type,
            non_retryable=err.non_retryable,
            next_retry_delay=err.next_retry_delay,
        )
    return ApplicationError(str(err), spend, type=type(err).__name__)


#: The identity of the worker running the current activity (``Worker(identity=...)``), set by
#: :class:`WorkerIdentity`; the SDK tells an activity its client, not its worker.
_WORKER_IDENTITY: ContextVar[str | None] = ContextVar("jamjet_worker_identity", default=None)


class WorkerIdentity(Interceptor):
    """Tells the gate which worker runs each activity (the identity ``jamjet status`` shows).

    Added innermost by the plugin's ``configure_worker``: the SDK builds an activity's
    interceptor chain innermost first, in the activity's own task, so the identity is set
    before any outer interceptor (the gate) runs.
    """

    def __init__(self, identity: str) -> None:
        self.identity = identity

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        _WORKER_IDENTITY.set(self.identity)
        return next


def _worker_identity() -> str:
    known = _WORKER_IDENTITY.get()
    if known:
        return known
    try:
        return activity.client().identity
    except RuntimeError:
        return ""
