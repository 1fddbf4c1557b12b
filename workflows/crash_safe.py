"""The showcase's 12 lines: a crash-safe pipeline with ``@task`` and ``@workflow``."""

from jamjet_temporal import llm, task, workflow


@task
async def fetch_data() -> dict:
    return {"ticket": "T-1042", "text": "Checkout fails with a 502 right after the deploy."}


@task
async def analyze(data: dict) -> dict:
    # your logic here — crash-safe by default
    return {"summary": await llm.call(data)}


@workflow
async def pipeline():
    raw = await fetch_data()
    out = await analyze(raw)
    return out
