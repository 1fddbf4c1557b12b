"""The tools of this project: ``jamjet run`` loads ``tools.py`` beside the pipeline.

Offline stand-ins for GitHub's MCP tools, with the same names and arguments:
``get_pull_request`` reads a pull request bundled in ``pulls/`` (``OWNER-REPO-NUMBER.json``
and ``.diff``), ``create_pull_request_review`` appends the review to ``reviews/`` and
returns its location. Point them at your code host's API (or use ``server: github`` with
an MCP server in jamjet.toml) to review real pull requests.
"""

from __future__ import annotations

import json
from pathlib import Path

from jamjet_temporal import task

PROJECT = Path(__file__).resolve().parent


def _name(owner: str, repo: str, pull_number: int) -> str:
    return f"{owner}-{repo}-{int(pull_number)}"


@task
async def get_pull_request(owner: str, repo: str, pull_number: int) -> dict[str, str]:
    """A pull request: its title, description, author and diff."""
    stem = PROJECT / "pulls" / _name(owner, repo, pull_number)
    data: dict[str, str] = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    data["diff"] = stem.with_suffix(".diff").read_text(encoding="utf-8")
    return data


@task
async def create_pull_request_review(
    owner: str, repo: str, pull_number: int, body: str, event: str = "COMMENT"
) -> str:
    """Post a review on a pull request (here: append it to reviews/); returns where it is."""
    path = PROJECT / "reviews" / f"{_name(owner, repo, pull_number)}.md"
    path.parent.mkdir(exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(f"## Review ({event})\n\n{body}\n\n")
    return path.as_uri()
