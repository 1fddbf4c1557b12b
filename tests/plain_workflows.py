"""Plain temporalio workflows (no jamjet import), for the defence-in-depth test."""

from datetime import timedelta

from temporalio import workflow


@workflow.defn(name="test-gate.plain-search")
class PlainSearch:
    @workflow.run
    async def run(self, query: str) -> list[str]:
        return await workflow.execute_activity(
            "search", query, start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn(name="test-security.plain-record")
class PlainRecord:
    """Schedules the audit recorder directly, from a worker without the plugin (an attack)."""

    @workflow.run
    async def run(self, queue: str, events: list) -> None:  # type: ignore[type-arg]
        await workflow.execute_activity(
            "jamjet.audit.record",
            events,
            task_queue=queue,
            start_to_close_timeout=timedelta(seconds=10),
        )


@workflow.defn(name="test-gate.plain-local-search")
class PlainLocalSearch:
    """A plain workflow calling a tool as a local activity (teams on Temporal use them)."""

    @workflow.run
    async def run(self, query: str) -> list[str]:
        return await workflow.execute_local_activity(
            "search", query, start_to_close_timeout=timedelta(seconds=10)
        )
