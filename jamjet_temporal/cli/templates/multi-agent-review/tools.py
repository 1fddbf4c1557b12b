"""The tool of this project: ``jamjet run`` loads ``tools.py`` beside the pipeline.

``tally_reviews`` is the join of the two critics: the draft's score is the lower of theirs,
their critiques are put together, and the attempt counter goes up by one.
"""

from __future__ import annotations

from typing import Any

from jamjet_temporal import task


@task
async def tally_reviews(
    style: dict[str, Any], facts: dict[str, Any], attempts: int
) -> dict[str, Any]:
    """Combine the critics' verdicts: the lower score, both critiques, one more attempt."""
    return {
        "score": min(int(style["score"]), int(facts["score"])),
        "critique": f"Style: {style['critique']}\nFacts: {facts['critique']}",
        "attempts": attempts + 1,
    }
