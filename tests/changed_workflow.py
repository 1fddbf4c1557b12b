"""The showcase workflow after an incompatible edit (it skips fetch_data), for the replay test."""

from jamjet_temporal import workflow
from workflows.crash_safe import analyze


@workflow(name="pipeline")
async def changed_pipeline() -> dict[str, str]:
    return await analyze({"ticket": "T-1042"})
