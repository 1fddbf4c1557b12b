"""Tool policy: which tools and models an agent may use, decided inside the workflow.

:func:`decide_tool` / :func:`decide_model` are pure (safe in workflow code, identical on
replay); :func:`load_policy` / :func:`parse_policy` read policy files at worker start and fail
with a :class:`PolicyError` naming the file, line and fix.
"""

from jamjet_temporal.errors import PolicyError

from ._evaluate import decide_model, decide_tool
from ._load import load_policy, parse_policy
from ._model import Decision, Policy, PolicyScopes, Rule

__all__ = [
    "Decision",
    "Policy",
    "PolicyError",
    "PolicyScopes",
    "Rule",
    "decide_model",
    "decide_tool",
    "load_policy",
    "parse_policy",
]
