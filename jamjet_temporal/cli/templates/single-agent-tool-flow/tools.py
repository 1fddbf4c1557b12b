"""The tools of this project: ``jamjet run`` loads ``tools.py`` beside ``workflow.yaml``.

``read_file`` is the pipeline's tool node; ``file_assistant`` is the agent its ``agent`` node
runs, allowed to use exactly ``word_count`` and ``find_lines`` (and nothing else).
"""

from __future__ import annotations

from pathlib import Path

from jamjet_temporal import agent, task
from jamjet_temporal.agent import AgentResult

PROJECT = Path(__file__).resolve().parent


def _project_file(path: str) -> Path:
    target = (PROJECT / path).resolve()
    if not target.is_relative_to(PROJECT):
        raise ValueError(f"{path} is outside the project folder")
    return target


@task
async def read_file(path: str) -> str:
    """Read a text file of this project (a path relative to the project folder)."""
    return _project_file(path).read_text(encoding="utf-8")


@task
async def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


@task
async def find_lines(path: str, word: str) -> list[str]:
    """The lines of a project file that contain a word (case does not matter)."""
    lines = _project_file(path).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if word.lower() in line.lower()]


@task(tools=[word_count, find_lines])
async def file_assistant(question: str) -> AgentResult:
    """You answer questions about files; check facts with word_count and find_lines."""
    return await agent.run(question)
