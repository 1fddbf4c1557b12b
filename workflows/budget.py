"""Gate 4: a reflection loop that would burn money, halted before it crosses the cap."""

from jamjet_temporal import task, workflow
from jamjet_temporal.strategies import ReflectionResult, loop_until_confident

MODEL = "reasoner-xl"  # a self-hosted model: priced by JamJetConfig.budget.prices


@task(
    strategy="reflection",
    max_iters=8,
    max_cost=0.50,
)
async def reasoner(q: str) -> ReflectionResult:
    return await loop_until_confident(q, threshold=0.9, model=MODEL, max_output_tokens=2990)


@workflow
async def research(q: str) -> ReflectionResult:
    return await reasoner(q)
