"""Gate 2: an agent whose tool allow-list blocks ``delete_database`` before it runs.

Its tools (``search``, ``read_files``, and the forbidden ``delete_database``) are in
``activities/notes.py``.
"""

from __future__ import annotations

from activities.notes import read_files, search
from jamjet_temporal import agent, task, workflow
from jamjet_temporal.agent import AgentResult


@task(tools=[search, read_files])
async def assistant(q: str) -> AgentResult:
    # `delete_database` is NOT in the allow-list
    return await agent.run(q)


@workflow
async def support(q: str) -> AgentResult:
    return await assistant(q)
