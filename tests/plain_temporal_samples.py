"""Plain Temporal code, modeled on Temporal's hello samples (samples-python ``hello/``).

Nothing here knows about jamjet: a team's workflows, activities and starters as they are
before anyone adds ``JamJetPlugin()``. Each ``run_*`` starter is a sample's ``main()``: given a
client and a task queue, it runs a worker and the sample, and returns what the sample lets one
observe (results, query and update answers, failures, search attributes) as plain data.
tests/test_plain_parity.py runs every starter without and with the plugin and compares.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.worker import Worker

# Custom search attributes (registered on the server beforehand, as a team's are).
KEYWORD = SearchAttributeKey.for_keyword("ParityKeyword")
NUMBER = SearchAttributeKey.for_int("ParityCount")


@dataclass
class ComposeGreetingInput:
    greeting: str
    name: str


# --- activities ------------------------------------------------------------------------------


@activity.defn
async def compose_greeting(input: ComposeGreetingInput) -> str:
    return f"{input.greeting}, {input.name}!"


@activity.defn
def compose_greeting_sync(input: ComposeGreetingInput) -> str:
    """A plain (non-async) activity, run on the worker's thread pool (hello_local_activity)."""
    return f"{input.greeting}, {input.name}!"


@activity.defn
async def flaky_greeting(input: ComposeGreetingInput) -> str:
    """Fails its first three attempts (hello_activity_retry)."""
    attempt = activity.info().attempt
    if attempt < 4:
        raise RuntimeError(f"intentional failure on attempt {attempt}")
    return f"{input.greeting}, {input.name}! (attempt {attempt})"


@activity.defn
async def resumable_count(upto: int) -> list[int]:
    """Heartbeats its progress; the retry resumes where the first attempt failed."""
    info = activity.info()
    start = int(info.heartbeat_details[0]) + 1 if info.heartbeat_details else 0
    done: list[int] = []
    for n in range(start, upto):
        done.append(n)
        activity.heartbeat(n)
        if info.attempt == 1 and n == 2:
            raise RuntimeError("worker lost mid-way")
    return [info.attempt, *done]


@activity.defn
async def failing_greeting(input: ComposeGreetingInput) -> str:
    """Fails for good (hello_exception)."""
    raise ApplicationError(
        f"cannot greet {input.name}", {"name": input.name}, type="GreetingError", non_retryable=True
    )


@activity.defn
async def never_complete() -> str:
    """Heartbeats until cancelled (hello_cancellation)."""
    while True:
        await asyncio.sleep(0.2)
        activity.heartbeat()


@activity.defn
async def cleanup(what: str) -> str:
    return f"cleaned up after {what}"


class GreetingComposer:
    """An activity completed from outside (hello_async_activity_completion): it hands its task
    token over and returns without a result; whoever holds the token completes it."""

    def __init__(self) -> None:
        self.tokens: asyncio.Queue[bytes] = asyncio.Queue()

    @activity.defn(name="compose_greeting_async_completion")
    async def compose_greeting(self, input: ComposeGreetingInput) -> str:
        await self.tokens.put(activity.info().task_token)
        activity.raise_complete_async()


# --- workflows -------------------------------------------------------------------------------


@workflow.defn(name="parity.activity")
class GreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            compose_greeting,
            ComposeGreetingInput("Hello", name),
            start_to_close_timeout=timedelta(seconds=10),
        )


@workflow.defn(name="parity.local-activity")
class LocalGreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> list[str]:
        plain = await workflow.execute_local_activity(
            compose_greeting_sync,
            ComposeGreetingInput("Hello", name),
            start_to_close_timeout=timedelta(seconds=10),
        )
        coroutine = await workflow.execute_local_activity(
            compose_greeting,
            ComposeGreetingInput("Hi", name),
            start_to_close_timeout=timedelta(seconds=10),
        )
        by_name = await workflow.execute_local_activity(
            "compose_greeting",
            ComposeGreetingInput("Hey", name),
            start_to_close_timeout=timedelta(seconds=10),
            result_type=str,
        )
        return [plain, coroutine, by_name]


@workflow.defn(name="parity.parallel")
class ParallelWorkflow:
    @workflow.run
    async def run(self, names: list[str]) -> list[str]:
        results = await asyncio.gather(
            *(
                workflow.execute_activity(
                    compose_greeting,
                    ComposeGreetingInput("Hello", name),
                    start_to_close_timeout=timedelta(seconds=10),
                )
                for name in names
            )
        )
        return sorted(results)


@workflow.defn(name="parity.retry")
class RetryWorkflow:
    @workflow.run
    async def run(self, name: str) -> list[Any]:
        retry = RetryPolicy(initial_interval=timedelta(milliseconds=50), backoff_coefficient=1.0)
        remote = await workflow.execute_activity(
            flaky_greeting,
            ComposeGreetingInput("Hello", name),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=retry,
        )
        local = await workflow.execute_local_activity(
            flaky_greeting,
            ComposeGreetingInput("Hi", name),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=retry,
        )
        resumed = await workflow.execute_activity(
            resumable_count,
            6,
            start_to_close_timeout=timedelta(seconds=10),
            heartbeat_timeout=timedelta(seconds=5),
            retry_policy=retry,
        )
        return [remote, local, resumed]


@workflow.defn(name="parity.exception")
class ExceptionWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            failing_greeting,
            ComposeGreetingInput("Hello", name),
            start_to_close_timeout=timedelta(seconds=10),
        )


@workflow.defn(name="parity.child")
class ChildGreetingWorkflow:
    @workflow.run
    async def run(self, input: ComposeGreetingInput) -> str:
        greeting = await workflow.execute_activity(
            compose_greeting, input, start_to_close_timeout=timedelta(seconds=10)
        )
        return f"{greeting} (child of a parent: {workflow.info().parent is not None})"


@workflow.defn(name="parity.parent")
class ParentWorkflow:
    @workflow.run
    async def run(self, name: str) -> list[str]:
        first = await workflow.execute_child_workflow(
            ChildGreetingWorkflow.run,
            ComposeGreetingInput("Hello", name),
            id=f"{workflow.info().workflow_id}-child-1",
        )
        handle = await workflow.start_child_workflow(
            ChildGreetingWorkflow.run,
            ComposeGreetingInput("Bye", name),
            id=f"{workflow.info().workflow_id}-child-2",
        )
        return [first, await handle]


@workflow.defn(name="parity.signal")
class SignalWorkflow:
    def __init__(self) -> None:
        self._pending: list[str] = []
        self._exit = False

    @workflow.run
    async def run(self) -> list[str]:
        greetings: list[str] = []
        while True:
            await workflow.wait_condition(lambda: bool(self._pending) or self._exit)
            while self._pending:
                greetings.append(self._pending.pop(0))
            if self._exit:
                return greetings

    @workflow.signal
    async def submit_greeting(self, name: str) -> None:
        self._pending.append(name)

    @workflow.signal
    def exit(self) -> None:
        self._exit = True


@workflow.defn(name="parity.query")
class QueryWorkflow:
    def __init__(self) -> None:
        self._greeting = ""
        self._done = False

    @workflow.run
    async def run(self, name: str) -> str:
        self._greeting = f"Hello, {name}!"
        await workflow.wait_condition(lambda: self._done)
        self._greeting = f"Goodbye, {name}!"
        return self._greeting

    @workflow.query
    def greeting(self) -> str:
        return self._greeting

    @workflow.signal
    def finish(self) -> None:
        self._done = True


@workflow.defn(name="parity.update")
class UpdateWorkflow:
    def __init__(self) -> None:
        self._language = "English"
        self._done = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._done)
        return f"finished in {self._language}"

    @workflow.update
    async def set_language(self, language: str) -> str:
        previous, self._language = self._language, language
        greeting = await workflow.execute_activity(
            compose_greeting,
            ComposeGreetingInput({"English": "Hello", "French": "Bonjour"}[language], "World"),
            start_to_close_timeout=timedelta(seconds=10),
        )
        return f"{previous} -> {language}: {greeting}"

    @set_language.validator
    def validate_language(self, language: str) -> None:
        if language not in ("English", "French"):
            raise ValueError(f"{language} is not supported")

    @workflow.update
    def finish(self) -> str:
        self._done = True
        return "bye"


@workflow.defn(name="parity.continue-as-new")
class LoopingWorkflow:
    @workflow.run
    async def run(self, iteration: int, seen: list[str]) -> list[str]:
        greeting = await workflow.execute_activity(
            compose_greeting,
            ComposeGreetingInput("Hello", f"run {iteration}"),
            start_to_close_timeout=timedelta(seconds=10),
        )
        seen = [*seen, f"{greeting} continued={workflow.info().continued_run_id is not None}"]
        if iteration == 3:
            return seen
        workflow.continue_as_new(args=[iteration + 1, seen])


@workflow.defn(name="parity.cancel-activity")
class CancelActivityWorkflow:
    @workflow.run
    async def run(self) -> list[str]:
        handle = workflow.start_activity(
            never_complete,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=2),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.sleep(timedelta(seconds=1))
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            seen = [type(err).__name__, type(err.cause).__name__]
        else:
            seen = ["completed"]
        seen.append(
            await workflow.execute_activity(
                cleanup, "the activity", start_to_close_timeout=timedelta(seconds=10)
            )
        )
        return seen


@workflow.defn(name="parity.cancel-workflow")
class CancelWorkflow:
    @workflow.run
    async def run(self) -> str:
        try:
            return await workflow.execute_activity(
                never_complete,
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=timedelta(seconds=2),
            )
        finally:
            await workflow.execute_activity(
                cleanup, "the workflow", start_to_close_timeout=timedelta(seconds=10)
            )


@workflow.defn(name="parity.patch")
class PatchV1Workflow:
    """Before the change."""

    def __init__(self) -> None:
        self._go = False

    @workflow.run
    async def run(self, name: str) -> str:
        greeting = "Hello"
        await workflow.wait_condition(lambda: self._go)
        return await workflow.execute_activity(
            compose_greeting,
            ComposeGreetingInput(greeting, name),
            start_to_close_timeout=timedelta(seconds=10),
        )

    @workflow.signal
    def go(self) -> None:
        self._go = True


@workflow.defn(name="parity.patch")
class PatchV2Workflow:
    """After the change, deployed while a run of the old code waits (hello_patch)."""

    def __init__(self) -> None:
        self._go = False

    @workflow.run
    async def run(self, name: str) -> str:
        greeting = "Bonjour" if workflow.patched("parity-greeting") else "Hello"
        await workflow.wait_condition(lambda: self._go)
        return await workflow.execute_activity(
            compose_greeting,
            ComposeGreetingInput(greeting, name),
            start_to_close_timeout=timedelta(seconds=10),
        )

    @workflow.signal
    def go(self) -> None:
        self._go = True


@workflow.defn(name="parity.first-task-handlers")
class FirstTaskHandlersWorkflow:
    """Handlers that arrive with the run's start (signal-with-start, update-with-start) run
    before the run's own code, and call activities and local activities from there."""

    def __init__(self) -> None:
        self._greetings: list[str] = []
        self._done = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self._done and workflow.all_handlers_finished())
        return self._greetings

    @workflow.signal
    async def greet(self, name: str) -> None:
        self._greetings.append(await self.greet_now(name))

    @workflow.update
    async def greet_now(self, name: str) -> str:
        remote = await workflow.execute_activity(
            compose_greeting,
            ComposeGreetingInput("Hello", name),
            start_to_close_timeout=timedelta(seconds=10),
        )
        local = await workflow.execute_local_activity(
            compose_greeting_sync,
            ComposeGreetingInput("Hi", name),
            start_to_close_timeout=timedelta(seconds=10),
        )
        return f"{remote} {local}"

    @workflow.signal
    def finish(self) -> None:
        self._done = True


@workflow.defn(name="parity.search-attributes")
class SearchAttributesWorkflow:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        before = _attributes(workflow.info().typed_search_attributes)
        workflow.upsert_search_attributes(
            [KEYWORD.value_set("parity-upserted"), NUMBER.value_set(7)]
        )
        after = _attributes(workflow.info().typed_search_attributes)
        workflow.upsert_search_attributes([NUMBER.value_unset()])
        return {
            "before": before,
            "after": after,
            "end": _attributes(workflow.info().typed_search_attributes),
        }


@workflow.defn(name="parity.async-completion")
class AsyncCompletionWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            "compose_greeting_async_completion",
            ComposeGreetingInput("Hello", name),
            start_to_close_timeout=timedelta(seconds=20),
            result_type=str,
        )


def _attributes(attributes: TypedSearchAttributes) -> dict[str, Any]:
    names = (KEYWORD.name, NUMBER.name)
    return {pair.key.name: pair.value for pair in attributes if pair.key.name in names}


# --- starters: each sample's main(), returning what it observed ------------------------------


@dataclass
class Observed:
    """What one sample showed: plain values, and the workflow ids it ran (for their history)."""

    values: dict[str, Any] = field(default_factory=dict)
    workflow_ids: list[str] = field(default_factory=list)


def failure_chain(err: BaseException | None) -> list[Any]:
    """A failure and its causes as plain data: what a caller can see of it."""
    chain: list[Any] = []
    while err is not None:
        entry: dict[str, Any] = {"class": type(err).__name__, "message": str(err)}
        if isinstance(err, ApplicationError):
            entry.update(type=err.type, details=list(err.details), non_retryable=err.non_retryable)
        chain.append(entry)
        if isinstance(err, FailureError | WorkflowFailureError | WorkflowUpdateFailedError):
            err = err.cause
        else:
            err = None
    return chain


def _worker(client: Client, queue: str, workflows: list[type], activities: list[Any]) -> Worker:
    return Worker(
        client,
        task_queue=queue,
        workflows=workflows,
        activities=activities,
        activity_executor=ThreadPoolExecutor(4),
    )


async def run_activity(client: Client, queue: str, wid: str) -> Observed:
    async with _worker(client, queue, [GreetingWorkflow], [compose_greeting]):
        result = await client.execute_workflow(
            GreetingWorkflow.run, "World", id=wid, task_queue=queue
        )
    return Observed({"result": result}, [wid])


async def run_local_activity(client: Client, queue: str, wid: str) -> Observed:
    async with _worker(
        client, queue, [LocalGreetingWorkflow], [compose_greeting, compose_greeting_sync]
    ):
        try:
            result: Any = await client.execute_workflow(
                LocalGreetingWorkflow.run, "World", id=wid, task_queue=queue
            )
        except WorkflowFailureError as err:
            result = failure_chain(err)
    return Observed({"result": result}, [wid])


async def run_parallel(client: Client, queue: str, wid: str) -> Observed:
    async with _worker(client, queue, [ParallelWorkflow], [compose_greeting]):
        result = await client.execute_workflow(
            ParallelWorkflow.run, ["Ann", "Bo", "Cy", "Di"], id=wid, task_queue=queue
        )
    return Observed({"result": result}, [wid])


async def run_retry(client: Client, queue: str, wid: str) -> Observed:
    async with _worker(client, queue, [RetryWorkflow], [flaky_greeting, resumable_count]):
        result = await client.execute_workflow(RetryWorkflow.run, "World", id=wid, task_queue=queue)
    return Observed({"result": result}, [wid])


async def run_exception(client: Client, queue: str, wid: str) -> Observed:
    async with _worker(client, queue, [ExceptionWorkflow], [failing_greeting]):
        try:
            await client.execute_workflow(ExceptionWorkflow.run, "World", id=wid, task_queue=queue)
        except WorkflowFailureError as err:
            return Observed({"failure": failure_chain(err)}, [wid])
    return Observed({"failure": None}, [wid])


async def run_child_workflow(client: Client, queue: str, wid: str) -> Observed:
    async with _worker(client, queue, [ParentWorkflow, ChildGreetingWorkflow], [compose_greeting]):
        result = await client.execute_workflow(
            ParentWorkflow.run, "World", id=wid, task_queue=queue
        )
    return Observed({"result": result}, [wid, f"{wid}-child-1", f"{wid}-child-2"])


async def run_signal(client: Client, queue: str, wid: str) -> Observed:
    async with _worker(client, queue, [SignalWorkflow], []):
        handle = await client.start_workflow(SignalWorkflow.run, id=wid, task_queue=queue)
        for name in ("user1", "user2", "user3"):
            await handle.signal(SignalWorkflow.submit_greeting, name)
        await handle.signal(SignalWorkflow.exit)
        result = await handle.result()
    return Observed({"result": result}, [wid])


async def run_query(client: Client, queue: str, wid: str) -> Observed:
    async with _worker(client, queue, [QueryWorkflow], []):
        handle = await client.start_workflow(QueryWorkflow.run, "World", id=wid, task_queue=queue)
        during = await handle.query(QueryWorkflow.greeting)
        await handle.signal(QueryWorkflow.finish)
        result = await handle.result()
        after = await handle.query(QueryWorkflow.greeting)
    return Observed({"during": during, "result": result, "after": after}, [wid])


async def run_update(client: Client, queue: str, wid: str) -> Observed:
    async with _worker(client, queue, [UpdateWorkflow], [compose_greeting]):
        handle = await client.start_workflow(UpdateWorkflow.run, id=wid, task_queue=queue)
        first = await handle.execute_update(UpdateWorkflow.set_language, "French")
        try:
            rejected: Any = await handle.execute_update(UpdateWorkflow.set_language, "Klingon")
        except WorkflowUpdateFailedError as err:
            rejected = failure_chain(err)
        bye = await handle.execute_update(UpdateWorkflow.finish)
        result = await handle.result()
    return Observed({"first": first, "rejected": rejected, "bye": bye, "result": result}, [wid])


async def run_continue_as_new(client: Client, queue: str, wid: str) -> Observed:
    async with _worker(client, queue, [LoopingWorkflow], [compose_greeting]):
        handle = await client.start_workflow(
            LoopingWorkflow.run, args=[0, []], id=wid, task_queue=queue
        )
        result = await handle.result()
    return Observed({"result": result}, [wid])


async def run_cancel_activity(client: Client, queue: str, wid: str) -> Observed:
    async with _worker(client, queue, [CancelActivityWorkflow], [never_complete, cleanup]):
        result = await client.execute_workflow(CancelActivityWorkflow.run, id=wid, task_queue=queue)
    return Observed({"result": result}, [wid])


async def run_cancel_workflow(client: Client, queue: str, wid: str) -> Observed:
    async with _worker(client, queue, [CancelWorkflow], [never_complete, cleanup]):
        handle = await client.start_workflow(CancelWorkflow.run, id=wid, task_queue=queue)
        await _until(lambda: _activity_running(handle))
        await handle.cancel()
        try:
            await handle.result()
        except WorkflowFailureError as err:
            failure: Any = failure_chain(err)
        else:
            failure = None
        status = (await handle.describe()).status
    return Observed(
        {"failure": failure, "status": status.name if status is not None else None}, [wid]
    )


async def run_patch(client: Client, queue: str, wid: str) -> Observed:
    old_run, new_run = f"{wid}-old", f"{wid}-new"
    # The old code starts a run, which waits; the new code is deployed and finishes it.
    async with Worker(
        client, task_queue=queue, workflows=[PatchV1Workflow], activities=[compose_greeting]
    ):
        old = await client.start_workflow(
            PatchV1Workflow.run, "World", id=old_run, task_queue=queue
        )
        await _until(lambda: _workflow_task_done(old.fetch_history_events()))
    async with Worker(
        client, task_queue=queue, workflows=[PatchV2Workflow], activities=[compose_greeting]
    ):
        new = await client.start_workflow(
            PatchV2Workflow.run, "World", id=new_run, task_queue=queue
        )
        # Each run has taken its first step (and decided on the patch) before it is signalled.
        await _until(lambda: _workflow_task_done(new.fetch_history_events()))
        await old.signal(PatchV2Workflow.go)
        await new.signal(PatchV2Workflow.go)
        results = {"old run": await old.result(), "new run": await new.result()}
    return Observed(results, [old_run, new_run])


async def run_search_attributes(client: Client, queue: str, wid: str) -> Observed:
    async with _worker(client, queue, [SearchAttributesWorkflow], []):
        handle = await client.start_workflow(
            SearchAttributesWorkflow.run,
            id=wid,
            task_queue=queue,
            search_attributes=TypedSearchAttributes([SearchAttributePair(KEYWORD, "parity-start")]),
        )
        inside = await handle.result()
        described = _attributes((await handle.describe()).typed_search_attributes)
    return Observed({"inside": inside, "described": described}, [wid])


async def run_first_task_handlers(client: Client, queue: str, wid: str) -> Observed:
    signalled, updated = f"{wid}-signal", f"{wid}-update"
    async with _worker(
        client,
        queue,
        [FirstTaskHandlersWorkflow],
        [compose_greeting, compose_greeting_sync],
    ):
        by_signal = await client.start_workflow(
            FirstTaskHandlersWorkflow.run,
            id=signalled,
            task_queue=queue,
            start_signal="greet",
            start_signal_args=["Ann"],
        )
        start = WithStartWorkflowOperation(
            FirstTaskHandlersWorkflow.run,
            id=updated,
            task_queue=queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        try:
            answer: Any = await client.execute_update_with_start_workflow(
                FirstTaskHandlersWorkflow.greet_now, "Bo", start_workflow_operation=start
            )
        except WorkflowUpdateFailedError as err:
            answer = failure_chain(err)
        by_update = await start.workflow_handle()
        for handle in (by_signal, by_update):
            await handle.signal(FirstTaskHandlersWorkflow.finish)
        values = {
            "signal-with-start": await by_signal.result(),
            "update-with-start": answer,
            "update-with-start result": await by_update.result(),
        }
    return Observed(values, [signalled, updated])


async def run_async_completion(client: Client, queue: str, wid: str) -> Observed:
    composer = GreetingComposer()
    async with _worker(client, queue, [AsyncCompletionWorkflow], [composer.compose_greeting]):
        handle = await client.start_workflow(
            AsyncCompletionWorkflow.run, "World", id=wid, task_queue=queue
        )
        token = await asyncio.wait_for(composer.tokens.get(), 20)
        await client.get_async_activity_handle(task_token=token).complete("Hello, World!")
        result = await handle.result()
    return Observed({"result": result}, [wid])


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    """Polls the server until ``check`` holds (at most 20 s)."""
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the workflow never got there")


async def _activity_running(handle: WorkflowHandle[Any, Any]) -> bool:
    description = await handle.describe()
    return any(
        pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for pending in description.raw_description.pending_activities
    )


async def _workflow_task_done(events: Any) -> bool:
    async for event in events:
        if event.HasField("workflow_task_completed_event_attributes"):
            return True
    return False


#: Every sample, by name: its starter.
SAMPLES: dict[str, Callable[[Client, str, str], Awaitable[Observed]]] = {
    "activity": run_activity,
    "local_activity": run_local_activity,
    "parallel_activities": run_parallel,
    "activity_retry_and_heartbeat": run_retry,
    "exception": run_exception,
    "child_workflow": run_child_workflow,
    "signal": run_signal,
    "query": run_query,
    "update": run_update,
    "continue_as_new": run_continue_as_new,
    "cancel_activity": run_cancel_activity,
    "cancel_workflow": run_cancel_workflow,
    "patch": run_patch,
    "search_attributes": run_search_attributes,
    "async_activity_completion": run_async_completion,
    "first_task_handlers": run_first_task_handlers,
}
