"""Audit export of a real run with a tool call, a denial, an approval and a budget halt."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from activities.notes import delete_database, search
from jamjet_temporal import JamJetConfig, JamJetPlugin, acting_as
from jamjet_temporal.approvals._client import find_pending, sign, submit
from jamjet_temporal.audit import export, verify_bundle
from jamjet_temporal.audit._keys import fingerprint, load_or_create_signing_key
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule, ScriptUsage
from jamjet_temporal.plugin import AuditConfig, LLMConfig
from jamjet_temporal.policy import Policy
from tests.approvals.approval_workflows import everything
from tests.approvals.conftest import Approvals
from tests.identities import PORTAL


async def test_export_of_a_governed_run_verifies_and_renders(
    temporal_server: DevServer,
    model_server: ModelServer,
    approvals: Approvals,
    task_queue: str,
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    config = JamJetConfig(
        llm=LLMConfig(base_url=model_server.base_url),
        audit=AuditConfig(store=url),
        policy=Policy(blocked_tools=("delete_*",)),
        approvals=approvals.config,
    )
    client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    model_server.add_rules(
        [
            ScriptRule(
                marker=run_id,
                responses=[
                    ScriptResponse(usage=ScriptUsage(prompt_tokens=50, completion_tokens=1500))
                ],
            )
        ]
    )
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[everything],
        activities=[search, delete_database],
    ):
        with acting_as("carol@example.com", signer=PORTAL):
            handle = await client.start_workflow(
                everything.run, run_id, id=run_id, task_queue=task_queue
            )
        for _ in range(100):
            try:
                request = await find_pending(client, run_id, None)
                break
            except Exception:
                await asyncio.sleep(0.1)
        assert (await submit(client, sign(approvals.who["alice"], request, "approved"))).complete
        assert await handle.result() == 2  # two $0.015 calls fit under $0.05, the third halts

    pdf = tmp_path / "evidence.pdf"
    result = await export(
        run_id,
        format="pdf",
        store=url,
        output=pdf,
        key=tmp_path / "signing.key",
        address=temporal_server.address,
        include=["events", "tools", "policy", "approvals", "budget"],
    )
    bundle = result.bundle
    assert result.history_included
    summary = bundle["summary"]
    assert summary["tool_calls"] == 1
    assert summary["policy"]["blocked"] == 1
    assert [a["approver"] for a in summary["approvals"] if a["kind"] == "approval.decision"] == [
        "alice@example.com"
    ]
    assert [b["decision"] for b in summary["budget"]].count("HALT") == 1
    assert result.bundle_path == tmp_path / "evidence.json"
    assert result.attestation_path == tmp_path / "evidence.intoto.jsonl"
    assert result.attestation_path.exists()
    signer = fingerprint(load_or_create_signing_key(tmp_path / "signing.key"))
    verdict = verify_bundle(bundle, trusted_keys=[signer])
    assert verdict.ok and verdict.completeness_ok, verdict.problems
    if shutil.which("pdftotext"):
        read = await asyncio.to_thread(
            subprocess.run,
            ["pdftotext", str(pdf), "-"],
            capture_output=True,
            text=True,
            check=True,
        )
        text = read.stdout
        assert run_id in text
    else:
        pytest.skip("pdftotext (poppler-utils) is not installed; the PDF was not read back")
