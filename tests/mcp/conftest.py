"""The MCP tests' governed worker: a plugin with MCP servers, an audit store, its own queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.approvals._load import ApprovalConfig
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.plugin import AuditConfig, LLMConfig
from jamjet_temporal.policy import Policy
from tests.mcp.helpers import Governed, Make, stdio
from tests.mcp.mcp_workflows import WORKFLOWS


@pytest.fixture
async def governed(
    temporal_server: DevServer, tmp_path: Path, task_queue: str
) -> AsyncIterator[Make]:
    """Starts a governed worker for the test (stopped at the end of the test)."""
    workers: list[Worker] = []

    async def make(
        servers: dict[str, Any] | None = None,
        policy: Policy | None = None,
        approvals: ApprovalConfig | None = None,
        *,
        model_url: str | None = None,
        workflows: list[Any] | None = None,
        activities: list[Any] | None = None,
    ) -> Governed:
        url = f"sqlite:///{tmp_path / f'audit-{len(workers)}.db'}"
        config = JamJetConfig(
            audit=AuditConfig(store=url),
            policy=policy,
            approvals=approvals,
            mcp_servers=servers if servers is not None else {"files": stdio()},
            llm=LLMConfig(base_url=model_url),
        )
        client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
        queue = f"{task_queue}-{len(workers)}"
        worker = Worker(
            client,
            task_queue=queue,
            workflows=workflows or WORKFLOWS,
            activities=activities or [],
        )
        workers.append(worker)
        await worker.__aenter__()
        return Governed(client, queue, url)

    try:
        yield make
    finally:
        for worker in reversed(workers):
            await worker.__aexit__(None, None, None)
