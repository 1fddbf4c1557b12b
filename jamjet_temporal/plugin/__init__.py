"""``JamJetPlugin`` and its configuration: the one object a team adds to a Temporal client or
worker (client and worker side; the sandbox sees only the interceptors it installs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal.plugin._config import (
        AuditConfig,
        BudgetConfig,
        JamJetConfig,
        LLMConfig,
        MemoryConfig,
    )
    from jamjet_temporal.plugin._interceptor import acting_as, run_budget
    from jamjet_temporal.plugin._plugin import JamJetPlugin
    from jamjet_temporal.tracing._config import TracingConfig

__all__ = [
    "AuditConfig",
    "BudgetConfig",
    "JamJetConfig",
    "JamJetPlugin",
    "LLMConfig",
    "MemoryConfig",
    "TracingConfig",
    "acting_as",
    "run_budget",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "._config": ["AuditConfig", "BudgetConfig", "JamJetConfig", "LLMConfig", "MemoryConfig"],
        "._interceptor": ["acting_as", "run_budget"],
        "._plugin": ["JamJetPlugin"],
        "jamjet_temporal.tracing._config": ["TracingConfig"],
    },
)
