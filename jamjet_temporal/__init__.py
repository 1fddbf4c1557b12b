"""jamjet-temporal: crash-proof, governable AI agents on Temporal.

Add ``JamJetPlugin()`` to a Temporal client; write agents with ``@task`` and ``@workflow`` (or
plain Temporal), or run YAML pipelines with ``jamjet run``.

Every name here is imported on first use, so ``import jamjet_temporal`` in a workflow module is
cheap and safe inside Temporal's sandbox, with or without the plugin. Each feature's further
public names live in its package: ``jamjet_temporal.approvals``, ``.audit``, ``.budget``,
``.llm``, ``.mcp``, ``.memory``, ``.pipeline``, ``.policy`` (see ``docs/index.md`` for the folder
map).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal import agent, guard, llm, mcp
    from jamjet_temporal import memory as engram
    from jamjet_temporal._shared._activity import idempotency_key
    from jamjet_temporal.authoring._task import default_task_config, task
    from jamjet_temporal.authoring._workflow import workflow
    from jamjet_temporal.errors import JamJetError
    from jamjet_temporal.plugin._config import JamJetConfig
    from jamjet_temporal.plugin._interceptor import acting_as, run_budget
    from jamjet_temporal.plugin._plugin import JamJetPlugin

__all__ = [
    "JamJetConfig",
    "JamJetError",
    "JamJetPlugin",
    "acting_as",
    "agent",
    "default_task_config",
    "engram",
    "guard",
    "idempotency_key",
    "llm",
    "mcp",
    "run_budget",
    "task",
    "workflow",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        ".agent:module": ["agent"],
        ".guard:module": ["guard"],
        ".llm:module": ["llm"],
        ".mcp:module": ["mcp"],
        ".memory:module": ["engram"],
        "._shared._activity": ["idempotency_key"],
        ".authoring._task": ["default_task_config", "task"],
        ".authoring._workflow": ["workflow"],
        ".errors": ["JamJetError"],
        ".plugin._config": ["JamJetConfig"],
        ".plugin._interceptor": ["acting_as", "run_budget"],
        ".plugin._plugin": ["JamJetPlugin"],
    },
)
