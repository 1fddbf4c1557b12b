"""Reading a run back from its Temporal history (client side).

Every figure the CLI prints (durations, attempts, nodes, events lost, reruns) is computed here
from the history Temporal recorded, never from what the CLI itself believes happened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from jamjet_temporal._shared._wire import INTERNAL_ACTIVITIES

_CLOSED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "completed",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "failed",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "timed out",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "canceled",
}
_WORKFLOW_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued as new",
}


def decode_text(payload: Payload) -> str:
    """A JSON or plain-text payload as text (summaries and the like)."""
    raw = payload.data.decode(errors="replace")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    return value if isinstance(value, str) else raw


def failure_text(failure: Failure) -> str:
    """A failure chain as one readable line: ``Type: message`` for each link not yet said."""
    text = ""
    link: Failure | None = failure
    while link is not None:
        # An activity failure only wraps its cause ("Activity task failed"): say the cause.
        message = "" if link.HasField("activity_failure_info") else link.message
        kind = (
            link.application_failure_info.type if link.HasField("application_failure_info") else ""
        )
        if kind and not message.startswith(kind):
            message = f"{kind}: {message}"
        if message and message not in text:
            text = f"{text}: {message}" if text else message
        link = link.cause if link.HasField("cause") else None
    return text


@dataclass
class Step:
    """One scheduled activity (a node, a task) and what became of it."""

    activity_id: str
    activity_type: str
    label: str
    scheduled_at: datetime
    attempt: int = 0
    started_at: datetime | None = None
    worker: str = ""
    previous_failure: str = ""
    outcome: str | None = None
    closed_at: datetime | None = None
    failure: str = ""
    completions: int = 0

    @property
    def duration_ms(self) -> int | None:
        """Run time of the attempt that closed the step, in milliseconds."""
        if self.started_at is None or self.closed_at is None:
            return None
        return round((self.closed_at - self.started_at).total_seconds() * 1000)


@dataclass
class RunReport:
    """A run's history, summarized."""

    steps: list[Step] = field(default_factory=list)
    status: str = "running"
    event_count: int = 0
    missing_event_ids: list[int] = field(default_factory=list)
    failure: str = ""

    @property
    def completed(self) -> list[Step]:
        """Steps that completed."""
        return [s for s in self.steps if s.outcome == "completed"]

    @property
    def lost(self) -> int:
        """Events that should be in the history and are not.

        A gap in the event ids, or (once the run has closed) a step that was scheduled and never
        reached an outcome: both would mean the record of the run is incomplete.
        """
        open_steps = (
            0 if self.status == "running" else sum(1 for s in self.steps if s.outcome is None)
        )
        return len(self.missing_event_ids) + open_steps

    @property
    def reruns(self) -> int:
        """Completed steps that were executed to completion again (extra completion events)."""
        return sum(max(s.completions - 1, 0) for s in self.steps)

    @property
    def resumed(self) -> list[Step]:
        """Completed steps whose successful attempt was not the first."""
        return [s for s in self.completed if s.attempt > 1]


class HistoryReader:
    """Folds history events, one at a time, into a ``RunReport`` (usable live)."""

    def __init__(self) -> None:
        self.report = RunReport()
        self._by_event: dict[int, Step] = {}
        self._last_id = 0

    @property
    def last_event_id(self) -> int:
        """Id of the newest event folded in (0 before any)."""
        return self._last_id

    def add(self, event: HistoryEvent) -> Step | None:
        """Fold one event in; returns the step it changed, if any."""
        report = self.report
        report.event_count += 1
        if event.event_id != self._last_id + 1:
            report.missing_event_ids.extend(range(self._last_id + 1, event.event_id))
        self._last_id = max(self._last_id, event.event_id)
        when = event.event_time.ToDatetime().replace(tzinfo=None)
        etype = event.event_type
        if etype == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name in INTERNAL_ACTIVITIES:
                return None  # our own bookkeeping (recording a refusal), not a step
            label = attrs.activity_type.name
            if event.HasField("user_metadata") and event.user_metadata.HasField("summary"):
                label = decode_text(event.user_metadata.summary) or label
            step = Step(attrs.activity_id, attrs.activity_type.name, label, when)
            report.steps.append(step)
            self._by_event[event.event_id] = step
            return step
        if etype == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            opened = self._by_event.get(started.scheduled_event_id)
            if opened is None:
                return None
            step = opened
            step.attempt = started.attempt
            step.started_at = when
            step.worker = started.identity
            if started.HasField("last_failure"):
                step.previous_failure = failure_text(started.last_failure)
            return step
        if etype in _CLOSED:
            # completed / failed / timed_out / canceled attributes all carry these fields
            attrs_any: Any = getattr(event, event.WhichOneof("attributes") or "")
            closed = self._by_event.get(attrs_any.scheduled_event_id)
            if closed is None:
                return None
            step = closed
            step.outcome = _CLOSED[etype]
            step.closed_at = when
            if etype == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                step.completions += 1
            elif attrs_any.HasField("failure"):
                step.failure = failure_text(attrs_any.failure)
            return step
        if etype in _WORKFLOW_CLOSED:
            report.status = _WORKFLOW_CLOSED[etype]
            if etype == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
                report.failure = failure_text(
                    event.workflow_execution_failed_event_attributes.failure
                )
        return None


def read_history(history: WorkflowHistory) -> RunReport:
    """Summarize a complete, fetched history."""
    reader = HistoryReader()
    for event in history.events:
        reader.add(event)
    return reader.report
