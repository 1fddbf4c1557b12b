"""Activity plumbing shared by every capability: the default retry policy, automatic
heartbeats and the idempotency key.

The retry defaults are read by workflow code when it schedules an activity (pure data); the
helpers run on the worker, in activity context.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar, Token
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.common import RetryPolicy

from jamjet_temporal.errors import JamJetError

#: Non-retryable by default: retrying a programming error only burns time and tokens. These are
#: failure type names, so they are wire names too.
NON_RETRYABLE_ERROR_TYPES = ("TypeError", "NotImplementedError", "ConfigError")

#: The retry policy of every activity we schedule unless told otherwise.
DEFAULT_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=10,
    non_retryable_error_types=list(NON_RETRYABLE_ERROR_TYPES),
)


class _HeartbeatDetails:
    """A context variable (``get``, ``set``, ``reset``) whose latest value the periodic beat of
    :func:`auto_heartbeat` also sees.

    The beat runs in a task of its own, made with a copy of the body's context: a plain
    ``ContextVar`` set later in the body (a remote task's new state, a model call's spend)
    would stay invisible to it, and its next beat would send the details of when it started,
    replacing the newer ones Temporal had recorded. Every ``set`` here also goes to the one
    cell the beat reads.
    """

    def __init__(self) -> None:
        self._var: ContextVar[dict[str, Any]] = ContextVar(
            "jamjet_heartbeat_details",
            default={},  # noqa: B039 - never mutated, only replaced
        )
        self._cell: ContextVar[list[dict[str, Any]] | None] = ContextVar(
            "jamjet_heartbeat_cell", default=None
        )

    def get(self) -> dict[str, Any]:
        return self._var.get()

    def set(self, value: dict[str, Any]) -> Token[dict[str, Any]]:
        token = self._var.set(value)
        self._share()
        return token

    def reset(self, token: Token[dict[str, Any]]) -> None:
        self._var.reset(token)
        self._share()

    def _share(self) -> None:
        cell = self._cell.get()
        if cell is not None:
            cell[0] = self._var.get()

    @contextlib.contextmanager
    def shared(self) -> Iterator[list[dict[str, Any]]]:
        """A cell holding the latest value set in this context (and the tasks it starts)."""
        cell = [self._var.get()]
        token = self._cell.set(cell)
        try:
            yield cell
        finally:
            self._cell.reset(token)


#: What the governed activity running now keeps in its heartbeat details (the gate's state:
#: model spend, a result whose record is still to be written, a remote task followed); every
#: heartbeat we send carries it, so a retry of the attempt finds it.
heartbeat_details = _HeartbeatDetails()


def current_heartbeat_details() -> list[object]:
    """The details every heartbeat of the activity running now carries."""
    state = heartbeat_details.get()
    return [{"jamjet": state}] if state else []


def idempotency_key() -> str:
    """The idempotency key of the task (activity) running now.

    The key is the same for every attempt of one step (retries, worker crashes, a second worker
    taking over after the heartbeat timeout) and different for every other step, in this run or
    any other. Pass it to a downstream system that deduplicates (an ``Idempotency-Key`` header,
    a unique column) so a retried step cannot repeat its side effect.

    Returns:
        ``"jj-"`` followed by 32 hex digits.

    Raises:
        JamJetError: When called outside a running task.
    """
    if not activity.in_activity():
        raise JamJetError(
            "idempotency_key() was called outside a running task; call it from a @task "
            "(or activity) body, where the step it names is known"
        )
    info = activity.info()
    return step_key(
        info.workflow_namespace, info.workflow_id, info.workflow_run_id, info.activity_id
    )


def step_key(
    namespace: str | None, workflow_id: str | None, run_id: str | None, activity_id: str
) -> str:
    """The idempotency key of one step, from its names (pure: workflow code may compute it
    before scheduling the step, as ``a2a.delegate`` does for its message id).

    Returns:
        ``"jj-"`` followed by 32 hex digits: what :func:`idempotency_key` returns in that step.
    """
    # Attempt is deliberately left out: every retry of this step must get the same key. The run
    # id is in: a reset or continue-as-new is a new execution whose steps are new steps.
    parts = (namespace, workflow_id, run_id, activity_id)
    raw = "\x1f".join(part or "" for part in parts)
    return "jj-" + hashlib.sha256(raw.encode()).hexdigest()[:32]


@contextlib.asynccontextmanager
async def auto_heartbeat(*, hold_first: bool = False) -> AsyncIterator[None]:
    """Heartbeat for the current activity while the body runs, if it has a heartbeat timeout.

    A task whose author never heard of heartbeats still tells Temporal it is alive, so a killed
    worker is noticed after the heartbeat timeout instead of the (much longer) start-to-close
    timeout, and cancellation reaches the task (it is delivered through heartbeats).

    Args:
        hold_first: Send the first beat only after half the heartbeat timeout, so that a beat
            the body sends itself (naming a remote task the moment it exists) is the attempt's
            first: Temporal records the first heartbeat at once, later ones at most every 0.8
            heartbeat timeouts.
    """
    timeout = activity.info().heartbeat_timeout if activity.in_activity() else None
    if not timeout:
        yield
        return
    interval = max(timeout.total_seconds() / 3, 0.05)

    async def beat(cell: list[dict[str, Any]]) -> None:
        # The first beat waits too: Temporal's heartbeat timeout runs from the attempt's start
        # whether or not it ever beat, so a short task needs none (one RPC less per task), and
        # a killed worker is noticed as soon as with an immediate beat.
        await asyncio.sleep(timeout.total_seconds() / 2 if hold_first else interval)
        while True:
            # The body's latest details (not those of when this task was made).
            activity.heartbeat(*([{"jamjet": cell[0]}] if cell[0] else []))
            await asyncio.sleep(interval)

    with heartbeat_details.shared() as cell:
        beater = asyncio.create_task(beat(cell))
        try:
            yield
        finally:
            beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beater
