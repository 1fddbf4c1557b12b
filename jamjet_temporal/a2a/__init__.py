"""Agent-to-agent delegation over A2A inside the durable runtime: policy-gated, audited, resumed.

Remote agents are configuration, declared once by alias (``JamJetConfig(a2a_agents=...)``, a
pipeline's ``a2a: {remote_agents: ...}`` block); workflow code calls ``await
a2a.delegate("research", skill="summarize", input={...})``, which the policy gate decides as the
tool ``a2a:research.summarize`` and the worker runs as the ``jamjet.a2a.send`` activity: fetch
the agent's card, check the skill, send one message, follow the remote task to its end. URLs and
credentials (read from the worker's environment) stay on the worker. The activity itself
(``A2AActivities``, the ``a2a-sdk`` client) is loaded only by the plugin, and needs the
``[a2a]`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal.a2a._config import (
        ApiKeyAuth,
        BearerAuth,
        RemoteAgent,
        agents_from_mapping,
    )
    from jamjet_temporal.a2a._types import A2ADelegation
    from jamjet_temporal.a2a._workflow import delegate
    from jamjet_temporal.errors import DelegationError, InputRequiredError, RemoteAgentError

__all__ = [
    "A2ADelegation",
    "ApiKeyAuth",
    "BearerAuth",
    "DelegationError",
    "InputRequiredError",
    "RemoteAgent",
    "RemoteAgentError",
    "agents_from_mapping",
    "delegate",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "jamjet_temporal.errors": ["DelegationError", "InputRequiredError", "RemoteAgentError"],
        "._config": ["ApiKeyAuth", "BearerAuth", "RemoteAgent", "agents_from_mapping"],
        "._types": ["A2ADelegation"],
        "._workflow": ["delegate"],
    },
)
