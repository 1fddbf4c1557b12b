"""The worker records each run's ``run.closed`` as it completes the run (see ``_shared._closing``).

The plugin's workflow runner wraps each workflow instance: around every activation it arms the
hand-over; when the activation completes the run (complete, fail or cancel) with a
``run.closed`` handed over, it appends the event to the audit store and only then lets the
completion go to Temporal. An append that fails or takes longer than ``RECORD_TIMEOUT_S``
turns the completion into a workflow task failure: Temporal retries the task, the run's last
activation runs again (from a replay) and hands the event over again; stored once (event id).
Activations Temporal replays from history are skipped: a completion in history was only ever
sent after its ``run.closed`` was durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from jamjet_temporal._shared import _closing
from jamjet_temporal._shared._wire import RUN_CLOSED
from jamjet_temporal.audit._types import event_id

if TYPE_CHECKING:
    from jamjet_temporal.audit._types import AuditEvent
    from jamjet_temporal.gate._activities import AuditSink

__all__ = ["RECORD_TIMEOUT_S", "ClosingRunner", "ClosingSandboxedRunner", "RunCloser"]

#: How long an activation's completion waits for its ``run.closed`` to be durable. Below
#: Temporal's 2 s deadlock detection, which would otherwise fail the task less clearly.
RECORD_TIMEOUT_S = 1.5

_TERMINAL = ("complete_workflow_execution", "fail_workflow_execution", "cancel_workflow_execution")


class RunCloser:
    """Appends handed-over events for the workers of one plugin.

    On a worker's own event loop (its audit store is used there, and the event joins the
    store's group commit) when the activation runs on another thread, as Temporal runs them;
    on a thread and store of its own when the activation runs on the loop itself (a worker in
    ``debug_mode``).

    Args:
        sink: The plugin's audit sink (a plugin without an audit trail has no closer: its
            runs hand nothing over).
    """

    def __init__(self, sink: AuditSink) -> None:
        self._sink = sink
        self._loops: list[tuple[asyncio.AbstractEventLoop, int]] = []

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """Around a running worker: its event loop is where appends go."""
        entry = (asyncio.get_running_loop(), threading.get_ident())
        self._loops.append(entry)
        try:
            yield
        finally:
            self._loops.remove(entry)

    def record(self, events: Sequence[AuditEvent]) -> None:
        """Append ``events`` durably, blocking this (activation) thread.

        Raises:
            Exception: The append failed or did not finish within ``RECORD_TIMEOUT_S``.
        """
        sink = self._sink
        here = threading.get_ident()
        for loop, thread in reversed(self._loops):
            if thread != here and loop.is_running():
                future = asyncio.run_coroutine_threadsafe(sink.append(events), loop)
                try:
                    future.result(RECORD_TIMEOUT_S)
                except TimeoutError:
                    future.cancel()
                    raise TimeoutError(
                        f"the audit store took over {RECORD_TIMEOUT_S} s to append run.closed"
                    ) from None
                return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="jamjet-close") as pool:
            pool.submit(asyncio.run, sink.append_detached(events)).result(RECORD_TIMEOUT_S * 10)


class _ClosingInstance(WorkflowInstance):
    """A workflow instance whose run-completing activations record the run's ``run.closed``."""

    def __init__(self, inner: WorkflowInstance, closer: RunCloser) -> None:
        self._inner = inner
        self._closer = closer

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        with _closing.activation() as handed:
            completion = self._inner.activate(act)
        if not handed or act.is_replaying or not _completes_run(completion):
            return completion
        info = self._inner.get_info()
        own = event_id(info.workflow_id, info.run_id, RUN_CLOSED)
        if [(e.id, e.kind, e.run_id) for e in handed] != [(own, RUN_CLOSED, info.workflow_id)]:
            # Only the run's own run.closed takes this path: anything else handed over (workflow
            # code importing the hand-over to slip events past the gate) is refused, unrecorded.
            return _task_failure(
                completion, ValueError("what was handed over is not this run's run.closed")
            )
        try:
            self._closer.record(handed)
        except Exception as err:
            return _task_failure(completion, err)
        return completion

    def get_serialization_context(self, command_info: Any) -> Any:
        return self._inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self._inner.get_external_store_context(command_info)

    def get_info(self) -> Any:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


def _completes_run(completion: WorkflowActivationCompletion) -> bool:
    return completion.HasField("successful") and any(
        command.WhichOneof("variant") in _TERMINAL for command in completion.successful.commands
    )


def _task_failure(
    completion: WorkflowActivationCompletion, err: Exception
) -> WorkflowActivationCompletion:
    """The activation failed instead: Temporal retries the workflow task (nothing is lost)."""
    failed = WorkflowActivationCompletion(run_id=completion.run_id)
    failure = failed.failed.failure
    failure.message = (
        f"the run's run.closed audit event could not be recorded ({type(err).__name__}: "
        f"{err}); the workflow task is retried and records it before the run closes"
    )
    failure.application_failure_info.type = "AuditRecordError"
    return failed


@dataclasses.dataclass(frozen=True)
class ClosingSandboxedRunner(SandboxedWorkflowRunner):
    """Temporal's sandboxed runner, recording ``run.closed`` as runs complete.

    A subclass, not a wrapper: others adjusting the sandbox (``dataclasses.replace`` on the
    restrictions, as Temporal's debugger support and other plugins do) keep the recording.
    """

    closer: RunCloser = dataclasses.field(compare=False, kw_only=True)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _ClosingInstance(super().create_instance(det), self.closer)


@dataclasses.dataclass(frozen=True)
class ClosingRunner(WorkflowRunner):
    """Any other runner (one a team chose), recording ``run.closed`` as runs complete."""

    inner: WorkflowRunner
    closer: RunCloser = dataclasses.field(compare=False)

    def prepare_workflow(self, defn: Any) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _ClosingInstance(self.inner.create_instance(det), self.closer)

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self.inner.set_worker_level_failure_exception_types(types)
