"""Following a run live and printing the showcase's console lines (client side).

Lines come from the run itself: history events as Temporal appends them, and the pending
activity table of ``describe()`` (attempts, last failure) while a step is being retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import WorkflowHandle
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from jamjet_temporal._shared._wire import A2A_TASK_DETAIL
from jamjet_temporal.cli._history import HistoryReader, RunReport, Step, failure_text

Printer = Callable[[str], None]

_TRANSIENT = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNKNOWN}
)

#: How far into a step --crash-at lets it run before the kill.
CRASH_AFTER = timedelta(milliseconds=150)


def fmt_ms(ms: int | None) -> str:
    """``420ms`` below a second, ``1.2s`` above."""
    if ms is None:
        return "?"
    return f"{ms}ms" if ms < 1000 else f"{ms / 1000:.1f}s"


@dataclass
class CrashPlan:
    """Kill the worker running ``node`` mid-step, then bring up the replacement.

    Attributes:
        node: Node id or label (case-insensitive) at which to crash.
        kill: Kills the doomed worker; returns its identity.
        replace: Starts the worker that takes the step over.
    """

    node: str
    kill: Callable[[], str]
    replace: Callable[[], Awaitable[None]]
    done: bool = False
    killed_at_attempt: dict[str, int] = field(default_factory=dict)


def _matches(step: Step, name: str) -> bool:
    wanted = name.lower()
    return step.label.lower() == wanted or step.activity_id.split("#")[0].lower() == wanted


async def follow(
    handle: WorkflowHandle[object, object],
    out: Printer,
    *,
    crash: CrashPlan | None = None,
    poll_interval: float = 0.1,
) -> RunReport:
    """Print progress lines until the run closes; return the report read from its history."""
    reader = HistoryReader()
    announced: set[tuple[str, int]] = set()
    closed = asyncio.Event()

    def by_id(activity_id: str) -> Step | None:
        for step in reversed(reader.report.steps):
            if step.activity_id == activity_id:
                return step
        return None

    async def stream() -> None:
        while reader.report.status == "running":
            try:
                async for event in handle.fetch_history_events(wait_new_event=True):
                    if event.event_id <= reader.last_event_id:
                        continue  # already seen before the connection dropped
                    show(reader.add(event))
                    if reader.report.status != "running":
                        break
            except RPCError as err:
                # The server restarted (or the long poll was cut): its history is durable,
                # so follow again from where we were.
                if err.status not in _TRANSIENT:
                    raise
                await asyncio.sleep(0.5)
        closed.set()

    def show(step: Step | None) -> None:
        if step is None or step.outcome is None:
            return
        if step.outcome == "completed":
            verb = "resumed" if step.attempt > 1 else "completed"
            out(f"▸ [{step.label}] ✓ {verb} {fmt_ms(step.duration_ms)}")
        else:
            attempts = f" after {step.attempt} attempt(s)" if step.attempt else ""
            out(f"▸ [{step.label}] ✗ {step.outcome}{attempts}: {step.failure}")

    async def watch() -> None:
        while not closed.is_set():
            with contextlib.suppress(Exception):
                desc = await handle.describe()
                for pending in desc.raw_description.pending_activities:
                    step = by_id(pending.activity_id)
                    if step is None:
                        continue
                    await _on_pending(step, pending)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(closed.wait(), poll_interval)

    remote_seen: dict[str, tuple[object, object]] = {}

    def _remote(step: Step, pending: object) -> None:
        """A delegated step's remote task, as its heartbeats report it (state changes only)."""
        payloads = pending.heartbeat_details.payloads  # type: ignore[attr-defined]
        if not payloads:
            return
        try:
            details = DataConverter.default.payload_converter.from_payloads(list(payloads))
        except Exception:  # not ours: nothing to show
            return
        for detail in details:
            kept = detail.get("jamjet") if isinstance(detail, dict) else None
            task = kept.get(A2A_TASK_DETAIL) if isinstance(kept, dict) else None
            if not isinstance(task, dict) or not task.get("task_id"):
                continue
            now = (task.get("state"), task.get("message"))
            if remote_seen.get(step.activity_id) == now:
                return
            remote_seen[step.activity_id] = now
            state = str(task.get("state") or "?").removeprefix("TASK_STATE_").lower()
            said = f": {task['message']}" if task.get("message") else ""
            who = f"{task['task_id']} ({task.get('agent')})"
            out(f"▸ [{step.label}] remote task {who} {state}{said}")

    async def _on_pending(step: Step, pending: object) -> None:
        _remote(step, pending)
        state = pending.state  # type: ignore[attr-defined]
        attempt = int(pending.attempt)  # type: ignore[attr-defined]
        if (
            crash is not None
            and not crash.done
            and state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            and _matches(step, crash.node)
        ):
            started = pending.last_started_time.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined]
            into = datetime.now(UTC) - started
            if into < CRASH_AFTER:
                return  # let the step get going: the point is to die mid-step
            crash.done = True
            victim = crash.kill()
            crash.killed_at_attempt[step.activity_id] = attempt
            ms = round(into.total_seconds() * 1000)
            out(f"▸ [{step.label}] ✗ worker crashed at {fmt_ms(ms)} (SIGKILL {victim})")
            await crash.replace()
            return
        if attempt <= 1 or (step.activity_id, attempt) in announced:
            return
        announced.add((step.activity_id, attempt))
        failure = pending.last_failure  # type: ignore[attr-defined]
        if failure.HasField("timeout_failure_info"):
            if crash is None or step.activity_id not in crash.killed_at_attempt:
                out(f"▸ [{step.label}] ✗ worker lost (no heartbeat: {failure.message})")
            out("▸ Lease expired · reclaiming...")
        else:
            why = failure_text(failure)
            out(f"▸ [{step.label}] ✗ attempt {attempt - 1} failed: {why} · retrying")

    await asyncio.gather(stream(), watch())
    return reader.report


def closing_lines(
    run_id: str, report: RunReport, nodes: tuple[int, int] | None = None
) -> list[str]:
    """The closing lines of a run, every figure taken from its history.

    ``nodes`` is (completed, visited) as the pipeline run itself counts its nodes, including
    those that run no activity (branch, wait, approval, eval); else activity steps are counted.
    """
    done, total = nodes if nodes is not None else (len(report.completed), len(report.steps))
    if report.status == "completed":
        lines = [f"▸ Execution complete · {done}/{total} nodes · {report.lost} events lost"]
        if report.resumed:
            names = ", ".join(f"{s.label} on attempt {s.attempt}" for s in report.resumed)
            lines.append(
                f"▸ {run_id} · {report.lost} events lost · {report.reruns} reruns · "
                f"resumed: {names}"
            )
        return lines
    # A node that failed before any activity of it ran (a template, a refusal, an eval that
    # halted) still counts: "2 of 3 nodes, failed at purge".
    failed_at = _FAILED_NODE.search(report.failure or "")
    where = ""
    if failed_at is not None:
        node = failed_at.group(1)
        where = f", failed at {node}"
        if nodes is None and not any(s.activity_id.split("#")[0] == node for s in report.steps):
            total += 1
    return [
        f"▸ Execution {report.status} · {done} of {total} nodes{where} · {report.lost} events lost",
        f"▸ {report.failure}" if report.failure else "",
    ]


_FAILED_NODE = re.compile(r"node '([^']+)'")
