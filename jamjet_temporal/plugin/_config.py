"""Plugin configuration (pure: safe on both sides of the determinism boundary).

``JamJetConfig`` holds the governance inputs (``policy``, ``approvals``) itself and one section
per capability (``llm``, ``audit``, ``memory``, ``budget``, ``mcp_servers``, ``a2a_agents``,
``tracing``): a new capability adds a section.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from jamjet_temporal.a2a._config import RemoteAgent, agents_from_config
from jamjet_temporal.approvals._load import ApprovalConfig
from jamjet_temporal.errors import ConfigError
from jamjet_temporal.mcp._config import McpServer, servers_from_config
from jamjet_temporal.memory._names import DEFAULT_MEMORY_STORE
from jamjet_temporal.policy import Policy
from jamjet_temporal.tracing._config import TracingConfig

#: Where the audit trail goes unless configured: SQLite beside the worker's working directory.
DEFAULT_AUDIT_STORE = "sqlite:///.jamjet/audit.db"


@dataclass(frozen=True, kw_only=True)
class LLMConfig:
    """How workers reach the model (``JamJetConfig.llm``).

    Attributes:
        base_url: OpenAI-compatible endpoint for model calls. None: ``OPENAI_BASE_URL`` from
            the worker's environment, else OpenAI itself.
        timeout: Timeout of one HTTP request to the model (the activity's own timeout is
            separate and covers retries by Temporal).
    """

    base_url: str | None = None
    timeout: timedelta = timedelta(seconds=120)

    def __post_init__(self) -> None:
        if self.timeout <= timedelta(0):
            raise ConfigError(f"JamJetConfig.llm.timeout must be positive, got {self.timeout!r}")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"JamJetConfig.llm.base_url must be an http(s) URL such as "
                f"'http://127.0.0.1:8000/v1', got {self.base_url!r}"
            )


@dataclass(frozen=True, kw_only=True)
class AuditConfig:
    """Where and how gate decisions and tool calls are recorded (``JamJetConfig.audit``).

    Attributes:
        store: Where gate decisions and tool calls are recorded: ``sqlite:///path``
            (default ``.jamjet/audit.db``) or ``postgresql://...`` for workers on several
            hosts. None turns the audit trail off.
        key: The Ed25519 key file with which workers sign checkpoints of the audit
            store's hash chain (docs/audit-store.md); keep it where the store's database
            users cannot read it. None: ``$JAMJET_AUDIT_KEY``, else
            ``~/.jamjet/audit-signing.key`` (created on first use, like the bundle signing key).
        redact: Redaction rules applied to every audit event before it is hashed and
            stored (the rules of ``jamjet audit export --redact``): dotted paths such as
            ``data.args`` or key names masked anywhere in ``actor`` and ``data`` such as
            ``password``. The event lists what was masked under ``data.redacted``. To keep
            audited payloads encrypted at rest, configure a payload codec on the client: the
            audit trail seals arguments and results with it.
    """

    store: str | None = DEFAULT_AUDIT_STORE
    key: str | os.PathLike[str] | None = None
    redact: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True)
class MemoryConfig:
    """Where Engram long-term memory lives (``JamJetConfig.memory``).

    Attributes:
        store: Where Engram long-term memory lives (``engram.context_for`` and friends
            in workflow code): ``sqlite:///path`` (default ``.jamjet/memory.db``) or
            ``postgresql://...?schema=name`` when workers on several hosts share memory.
            None turns memory off (memory calls then fail, saying so).
        embeddings_url: An OpenAI-compatible API (``https://.../v1``) whose
            ``/embeddings`` gives facts and turns their vectors; None: WordLlama, offline,
            in the worker (the default). Changing the model re-embeds each user's memory on
            its next read.
        embeddings_model: The embedding model at ``embeddings_url`` (its key from
            ``$OPENAI_API_KEY``).
    """

    store: str | None = DEFAULT_MEMORY_STORE
    embeddings_url: str | None = None
    embeddings_model: str = "text-embedding-3-small"


@dataclass(frozen=True, kw_only=True)
class BudgetConfig:
    """How budgeted model calls are priced (``JamJetConfig.budget``).

    Attributes:
        prices: Prices in USD per million tokens for models the bundled ``genai-prices`` table
            does not know (self-hosted) or that you pay differently for, e.g.
            ``{"llama3.1:8b": {"input_per_mtok": "0.10", "output_per_mtok": "0.20"}}``. A
            budgeted call to a model with no known price is refused (fail closed).
    """

    prices: Mapping[str, Mapping[str, float | str]] | None = None


@dataclass(frozen=True, kw_only=True)
class JamJetConfig:
    """Configuration of one ``JamJetPlugin``.

    Credentials are never fields here: they are read from the worker's environment when an
    activity needs them, so they cannot end up in workflow history.

    Attributes:
        policy: The tool policy for every run on these workers (scope ``run``): a ``Policy``
            or the path of a policy file, loaded and validated when the plugin is built.
            None: no policy (every tool allowed, every decision still audited).
        approvals: Who may approve which actions (``guard.requires_approval`` and the policy
            action ``require_approval``): an ``ApprovalConfig`` or the path of its YAML file.
            None: approval requests are refused.
        llm: How workers reach the model: endpoint and request timeout (``LLMConfig``).
        audit: The audit trail: its store, signing key and redaction rules (``AuditConfig``).
        memory: Engram long-term memory: its store (``MemoryConfig``).
        budget: Run budgets: price overrides for models (``BudgetConfig``).
        mcp_servers: The MCP servers workers can call, by alias: ``McpServer`` models or
            plain dicts of their settings, e.g. ``{"files": {"command": "npx", "args": [...]}}``
            (docs/mcp.md). Values may hold ``${VAR}``, filled from the worker's environment
            when it connects. Validated here (a bad entry raises ``ConfigError``); None: no MCP
            servers (and no need for the ``[mcp]`` extra).
        a2a_agents: The remote A2A agents workers delegate to, by alias: ``RemoteAgent``
            models or plain dicts, e.g. ``{"research": {"url": "https://...", "auth": {"type":
            "bearer", "token_env": "RESEARCH_TOKEN"}}}`` (docs/a2a.md). Only these get
            credentials, read from the worker's environment. Any mapping, even empty, turns
            delegation on (to these agents, to agents given by URL, and to agents a pipeline
            declares without credentials); None: off (and no need for the ``[a2a]`` extra).
        tracing: OpenTelemetry traces and metrics (``TracingConfig``, docs/observability.md;
            the ``[otel]`` extra). None: off, and OpenTelemetry is not even imported.
    """

    policy: Policy | str | os.PathLike[str] | None = None
    approvals: ApprovalConfig | str | os.PathLike[str] | None = None
    llm: LLMConfig = field(default_factory=LLMConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    mcp_servers: Mapping[str, McpServer | Mapping[str, Any]] | None = None
    a2a_agents: Mapping[str, RemoteAgent | Mapping[str, Any]] | None = None
    tracing: TracingConfig | None = None

    def __post_init__(self) -> None:
        if self.mcp_servers is not None:
            servers = servers_from_config(self.mcp_servers, where="JamJetConfig.mcp_servers")
            object.__setattr__(self, "mcp_servers", servers)
        if self.a2a_agents is not None:
            agents = agents_from_config(self.a2a_agents, where="JamJetConfig.a2a_agents")
            object.__setattr__(self, "a2a_agents", agents)
