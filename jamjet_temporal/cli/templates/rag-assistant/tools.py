"""The retrieval tool of this project: ``jamjet run`` loads ``tools.py`` beside the pipeline.

``retrieve`` ranks the passages of ``docs/*.md`` by the words they share with the question
(a stand-in for a vector store: swap in your own search, or an MCP server, with the same
output) and returns the best ones with their source, so the answer can cite them.
"""

from __future__ import annotations

import re
from pathlib import Path

from jamjet_temporal import task

DOCS = Path(__file__).resolve().parent / "docs"
_STOP = {"the", "and", "for", "are", "can", "how", "what", "when", "who", "does", "with", "you"}


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9$]+", text.lower()) if len(w) > 2 and w not in _STOP}


@task
async def retrieve(question: str, k: int = 2) -> list[dict[str, str]]:
    """The ``k`` passages of docs/ that best match the question, each with its source file."""
    wanted = _words(question)
    passages = [
        {"source": path.name, "text": " ".join(part.split())}
        for path in sorted(DOCS.glob("*.md"))
        for part in path.read_text(encoding="utf-8").split("\n\n")
        if part.strip() and not part.startswith("#")
    ]
    ranked = sorted(passages, key=lambda p: -len(wanted & _words(p["text"])))
    return ranked[:k]
