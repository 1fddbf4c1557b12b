"""jamjet-temporal: crash-proof, governable AI agents on Temporal.

Add ``JamJetPlugin()`` to a Temporal client; write agents with ``@task`` and ``@workflow`` (or
plain Temporal), or run YAML pipelines with ``jamjet run``.
"""

from . import agent, engram, guard, llm
from ._activity_support import idempotency_key
from ._config import JamJetConfig
from ._interceptor import acting_as, run_budget
from ._llm_types import ChatRequest, ChatResult, ToolCall, Usage
from ._plugin import JamJetPlugin
from ._task import default_task_config, task
from ._workflow import workflow
from .errors import JamJetError

__all__ = [
    "ChatRequest",
    "ChatResult",
    "JamJetConfig",
    "JamJetError",
    "JamJetPlugin",
    "ToolCall",
    "Usage",
    "acting_as",
    "agent",
    "default_task_config",
    "engram",
    "guard",
    "idempotency_key",
    "llm",
    "run_budget",
    "task",
    "workflow",
]
