"""Agent-to-agent delegation over A2A inside the durable runtime: policy-gated, audited, resumed.

Remote agents are configuration, declared once by alias (``JamJetConfig(a2a_agents=...)``, a
pipeline's ``a2a: {remote_agents: ...}`` block); workflow code calls ``await
a2a.delegate("research", skill="summarize", input={...})``, which the policy gate decides as the
tool ``a2a:research.summarize`` and the worker runs as the ``jamjet.a2a.send`` activity: fetch
the agent's card, check the skill, send one message, follow the remote task to its end. URLs and
credentials (read from the worker's environment) stay on the worker. The activity itself
(``A2AActivities``, the ``a2a-sdk`` client) is loaded only by the plugin, and needs the
``[a2a]`` extra.

Serving: ``A2AServer`` (``jamjet a2a serve``) answers A2A for workflows and YAML pipelines,
each task a Temporal workflow; callers prove who they are with a token signed per delegation
(``CallerIdentity``, ``SignedAuth``), checked against the server's ``TrustedCallers``. These
need the ``[a2a]`` extra too (the ``a2a-sdk`` server side, PyJWT).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal.a2a._config import (
        ApiKeyAuth,
        BearerAuth,
        RemoteAgent,
        SignedAuth,
        agents_from_mapping,
    )
    from jamjet_temporal.a2a._server import A2AServer, task_id_for
    from jamjet_temporal.a2a._skills import ServedSkill, pipeline_skill, workflow_skill
    from jamjet_temporal.a2a._token import (
        CallerIdentity,
        TrustedCallers,
        VerifiedCaller,
        generate_caller_key,
    )
    from jamjet_temporal.a2a._types import A2ADelegation
    from jamjet_temporal.a2a._workflow import delegate
    from jamjet_temporal.errors import DelegationError, InputRequiredError, RemoteAgentError

__all__ = [
    "A2ADelegation",
    "A2AServer",
    "ApiKeyAuth",
    "BearerAuth",
    "CallerIdentity",
    "DelegationError",
    "InputRequiredError",
    "RemoteAgent",
    "RemoteAgentError",
    "ServedSkill",
    "SignedAuth",
    "TrustedCallers",
    "VerifiedCaller",
    "agents_from_mapping",
    "delegate",
    "generate_caller_key",
    "pipeline_skill",
    "task_id_for",
    "workflow_skill",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "jamjet_temporal.errors": ["DelegationError", "InputRequiredError", "RemoteAgentError"],
        "._config": [
            "ApiKeyAuth",
            "BearerAuth",
            "RemoteAgent",
            "SignedAuth",
            "agents_from_mapping",
        ],
        "._server": ["A2AServer", "task_id_for"],
        "._skills": ["ServedSkill", "pipeline_skill", "workflow_skill"],
        "._token": ["CallerIdentity", "TrustedCallers", "VerifiedCaller", "generate_caller_key"],
        "._types": ["A2ADelegation"],
        "._workflow": ["delegate"],
    },
)
