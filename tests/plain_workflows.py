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
