"""Tool policy: which tools and models an agent may use, decided inside the workflow.

:func:`decide_tool` / :func:`decide_model` are pure (safe in workflow code, identical on
replay); :func:`load_policy` / :func:`parse_policy` read policy files at worker start and fail
with a :class:`PolicyError` naming the file, line and fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal.errors import PolicyError
    from jamjet_temporal.policy._evaluate import decide_memory, decide_model, decide_tool
    from jamjet_temporal.policy._load import load_policy, parse_policy
    from jamjet_temporal.policy._types import Decision, Policy, PolicyScopes, Rule

__all__ = [
    "Decision",
    "Policy",
    "PolicyError",
    "PolicyScopes",
    "Rule",
    "decide_memory",
    "decide_model",
    "decide_tool",
    "load_policy",
    "parse_policy",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "jamjet_temporal.errors": ["PolicyError"],
        "._evaluate": ["decide_memory", "decide_model", "decide_tool"],
        "._load": ["load_policy", "parse_policy"],
        "._types": ["Decision", "Policy", "PolicyScopes", "Rule"],
    },
)
