"""Shared helpers of the attack tests: a governed worker's client and its audit trail."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from temporalio.client import Client

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.approvals._load import ApprovalConfig
from jamjet_temporal.audit import AuditEvent, open_store
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.modelserver import ModelServer
from jamjet_temporal.plugin import AuditConfig, LLMConfig, MemoryConfig
from jamjet_temporal.policy import Policy
from tests.identities import TRUSTED_PORTAL


class Governed:
    """A client (and the workers built on it) with one policy and its own audit store."""

    def __init__(self, client: Client, config: JamJetConfig) -> None:
        self.client = client
        self.config = config

    @property
    def audit_url(self) -> str:
        assert self.config.audit.store is not None
        return self.config.audit.store

    async def events(self, run_id: str | None = None) -> list[AuditEvent]:
        store = open_store(self.audit_url)
        try:
            return [s.event for s in await store.events(run_id)]
        finally:
            await store.close()

    async def chain_ok(self) -> bool:
        store = open_store(self.audit_url)
        try:
            return (await store.verify()).ok
        finally:
            await store.close()


MakeGoverned = Callable[..., Awaitable[Governed]]


@pytest.fixture
def governed(temporal_server: DevServer, model_server: ModelServer, tmp_path: Path) -> MakeGoverned:
    """Makes a governed client: ``await governed(policy=..., approvals=..., **config)``."""

    async def make(
        policy: Policy | None = None,
        approvals: ApprovalConfig | None = None,
        **config: object,
    ) -> Governed:
        defaults: dict[str, object] = {
            "llm": LLMConfig(base_url=model_server.base_url),
            "audit": AuditConfig(store=f"sqlite:///{tmp_path / 'audit.db'}"),
            "memory": MemoryConfig(store=f"sqlite:///{tmp_path / 'memory.db'}"),
        }
        settings = JamJetConfig(
            policy=policy,
            approvals=approvals or ApprovalConfig(clients=(TRUSTED_PORTAL,)),
            **{**defaults, **config},  # type: ignore[arg-type]
        )
        client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(settings)])
        return Governed(client, settings)

    return make
