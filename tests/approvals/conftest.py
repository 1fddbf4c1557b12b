"""Approvers with real Ed25519 keys, an approvals config, and a worker that enforces it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from activities.bank import send
from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.approvals._identity import SigningIdentity, generate_identity
from jamjet_temporal.approvals._load import ApprovalConfig, parse_approvals
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.plugin import AuditConfig
from tests.approvals.approval_workflows import guarded
from tests.identities import PORTAL
from workflows.transfer import transfer

PEOPLE = ("alice", "bob", "carol", "dave", "mallory")


@dataclass
class Approvals:
    """The test's approvers, config, audit store and bank ledger."""

    who: dict[str, SigningIdentity]
    key_files: dict[str, Path]
    config: ApprovalConfig
    config_file: Path
    audit_url: str
    ledger: Path


@pytest.fixture(scope="session")
def approvals(tmp_path_factory: pytest.TempPathFactory) -> Approvals:
    root = tmp_path_factory.mktemp("approvals")
    who, files = {}, {}
    for name in PEOPLE:
        who[name], files[name] = generate_identity(f"{name}@example.com", root / "keys")
    text = f"""
approvers:
  - {{id: alice@example.com, public_key: "{who["alice"].public_key}", groups: [treasury]}}
  - {{id: bob@example.com, public_key: "{who["bob"].public_key}", groups: [treasury]}}
  - {{id: carol@example.com, public_key: "{who["carol"].public_key}"}}
  - {{id: dave@example.com, public_key: "{who["dave"].public_key}", groups: [cfo]}}
clients:
  - {{id: portal, public_key: "{PORTAL.public_key}", acts_for: ["*@example.com"]}}
rules:
  - action: wire_transfer
    approvers: [group:treasury, carol@example.com]
    thresholds: [{{field: amount, above: 100000, required: 2}}]
  - action: "bank.*"
    approvers: [alice@example.com]
  - action: "engram.*"
    approvers: [alice@example.com]
  - action: remind_*
    approvers: [alice@example.com]
    timeout_seconds: 1800
    remind_every_seconds: 600
  - action: quick_*
    approvers: [alice@example.com]
    timeout_seconds: 3600
  - action: escalating_*
    approvers: [alice@example.com]
    timeout_seconds: 3600
    on_timeout: escalate
    escalate_to: [group:cfo]
    escalation_timeout_seconds: 7200
"""
    config_file = root / "approvals.yaml"
    config_file.write_text(text)
    ledger = root / "bank.db"
    os.environ["JAMJET_BANK_LEDGER"] = str(ledger)
    return Approvals(
        who,
        files,
        parse_approvals(text, str(config_file)),
        config_file,
        f"sqlite:///{root / 'audit.db'}",
        ledger,
    )


@pytest.fixture(scope="session")
async def approval_client(temporal_server: DevServer, approvals: Approvals) -> Client:
    config = JamJetConfig(approvals=approvals.config, audit=AuditConfig(store=approvals.audit_url))
    return await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])


@pytest.fixture
async def approval_worker(approval_client: Client, task_queue: str) -> AsyncIterator[Worker]:
    async with Worker(
        approval_client, task_queue=task_queue, workflows=[transfer, guarded], activities=[send]
    ) as worker:
        yield worker
