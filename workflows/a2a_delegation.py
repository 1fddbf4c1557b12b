"""A2A delegation: a coordinator hands research and a risk review to two specialist agents.

Each specialist is a plain ``@workflow`` served as an A2A agent by its own process::

    jamjet a2a serve workflows.a2a_delegation:research --port 9101 --trust coordinator=KEY
    jamjet a2a serve workflows.a2a_delegation:risk_review --port 9102 --trust coordinator=KEY

The coordinator delegates to them by alias (``JamJetConfig(a2a_agents=...)`` on its worker,
each with a token signed per delegation), with a slice of its own budget for each: a
specialist runs with its slice as its budget and reports what it spent, which is charged to
the coordinator's run. ``starters/a2a_delegation.py`` runs all three.
"""

from jamjet_temporal import a2a, llm, workflow
from jamjet_temporal.budget import remaining_budget

#: The specialists' model: priced by genai-prices ($2.50 / $10 per million tokens).
MODEL = "gpt-4o"


@workflow(name="a2a-demo.research")
async def research(topic: str) -> dict[str, str]:
    """Researches a topic: gathers findings, then summarizes them."""
    findings = await llm.call(f"List the key findings on: {topic}", model=MODEL, max_tokens=600)
    summary = await llm.call(f"Summarize for a decision: {findings}", model=MODEL, max_tokens=300)
    return {"topic": topic, "findings": findings, "summary": summary}


@workflow(name="a2a-demo.risk_review")
async def risk_review(notes: dict[str, str]) -> dict[str, str]:
    """Reviews research notes for risks and rates them."""
    review = await llm.call(
        f"Review these notes on {notes['topic']} for risks: {notes['summary']}",
        model=MODEL,
        max_tokens=400,
    )
    return {"topic": notes["topic"], "review": review}


@workflow(name="a2a-demo.coordinator")
async def coordinator(topic: str) -> dict[str, object]:
    """Delegates research, then a risk review of it, each with a slice of the run's budget."""
    notes = await a2a.delegate("research", skill="a2a-demo.research", input=topic, max_cost=0.02)
    left_after_research = remaining_budget()
    review = await a2a.delegate("risk", skill="a2a-demo.risk_review", input=notes, max_cost=0.01)
    left = remaining_budget()
    return {
        "notes": notes,
        "review": review,
        "left_after_research": None
        if left_after_research is None
        else str(left_after_research.max_cost),
        "left": None if left is None else str(left.max_cost),
    }
