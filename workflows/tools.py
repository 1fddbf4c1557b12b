"""The research pipeline's tools, where ``jamjet run`` looks for them: ``tools.py`` beside
``research-pipeline.yaml``. They live in ``activities/research.py``; this file re-exports them.

``jamjet run`` imports this file by its path, from any folder, so the repository root (which
holds ``activities``) is put on ``sys.path`` first.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from activities.research import search  # noqa: E402

__all__ = ["search"]
