"""Signed audit export bundles: export, redaction, tamper detection and completeness."""

from __future__ import annotations

import copy
import json
import stat
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin, workflow
from jamjet_temporal._devserver import DevServer
from jamjet_temporal.audit import AuditEvent, AuditStore, event_id, open_store
from jamjet_temporal.audit._export import (
    REDACTED,
    ExportError,
    export_bundle,
    read_bundle,
    seal_bundle,
    summarize,
    write_bundle,
)
from jamjet_temporal.audit._keys import (
    KEY_ENV,
    SigningKeyError,
    fingerprint,
    load_or_create_signing_key,
)
from jamjet_temporal.audit._verify import verify_bundle
from tests.audit.audit_support import T0
from workflows.policy_gate.assistant import read_files, search

RUN = "exec_export1"

# (kind, data) of a realistic run: decision, budget, call, approval...
_SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("policy.decision", {"decision": "ALLOWED", "subject": "search", "activity_id": "1"}),
    ("tool.call", {"tool": "search", "activity_id": "1", "args": ["v2.3"], "result": ["a"]}),
    ("policy.decision", {"decision": "BLOCKED", "subject": "delete_database"}),
    ("policy.model_decision", {"decision": "ALLOWED", "subject": "gpt-4o", "activity_id": "2"}),
    ("budget.decision", {"decision": "ALLOWED", "scope": "run", "activity_id": "2"}),
    (
        "model.call",
        {"tool": "jamjet.llm.chat", "activity_id": "2", "args": [{"api_key": "sk-1"}]},
    ),
    ("approval.requested", {"approval_id": "ap1", "action": "refund", "digest": "d1"}),
    (
        "approval.decision",
        {"approval_id": "ap1", "approver": "ana@example.com", "decision": "approve"},
    ),
    ("policy.decision", {"decision": "ALLOWED", "subject": "refund", "activity_id": "3"}),
    ("tool.call", {"tool": "refund", "activity_id": "3", "args": [{"password": "hunter2"}]}),
]


def _events(run: str = RUN) -> list[AuditEvent]:
    return [
        AuditEvent(
            id=event_id(run, str(n)),
            run_id=run,
            workflow_run_id=f"wfr-{run}",
            kind=kind,
            at=T0 + timedelta(seconds=n),
            actor={"workflow_type": "Agent", "user": "sunil@example.com"},
            data=data,
        )
        for n, (kind, data) in enumerate(_SCRIPT)
    ]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AuditStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    # Another run's events interleave: the bundle must hold this run's only.
    other = _events("exec_other")
    for mine, theirs in zip(_events(), other, strict=True):
        await opened.append([mine, theirs])
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def key(tmp_path: Path) -> Ed25519PrivateKey:
    return load_or_create_signing_key(tmp_path / "keys" / "audit-signing.key")


# -- keys -------------------------------------------------------------------------------------


def test_key_is_created_private_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "k" / "signing.key"
    first = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_signing_key(path)
    assert fingerprint(first.public_key()) == fingerprint(again.public_key())
    assert fingerprint(first).startswith("sha256:") and len(fingerprint(first)) == 71


def test_key_path_defaults_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "env.key"))
    load_or_create_signing_key()
    assert (tmp_path / "env.key").exists()


def test_a_key_file_that_is_not_ed25519_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_text("not a key")
    with pytest.raises(SigningKeyError, match=r"bad\.key"):
        load_or_create_signing_key(path)


# -- export and verify ------------------------------------------------------------------------


async def test_export_holds_the_run_and_verifies(
    store: AuditStore, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    bundle = await export_bundle(store, RUN, key=key)
    assert bundle["format"] == "jamjet-audit-bundle/1"
    assert [e["id"] for e in bundle["events"]] == [e.id for e in _events()]
    assert len(bundle["chain"]["hashes"]) == 10
    assert bundle["chain"]["head"] == bundle["chain"]["hashes"][-1]
    summary = bundle["summary"]
    assert (summary["events"], summary["tool_calls"], summary["model_calls"]) == (10, 2, 1)
    assert summary["policy"] == {
        "allowed": 3,
        "blocked": 1,
        "waiting_for_approval": 0,
        "evaluated": 4,
    }
    assert summary["approvals"][1]["approver"] == "ana@example.com"
    assert summary["budget"][0]["activity_id"] == "2"
    statement = bundle["statement"]
    assert statement["event_count"] == 10 and statement["chain_head"] == bundle["chain"]["head"]
    assert statement["public_key_fingerprint"] == fingerprint(key)

    verdict = verify_bundle(bundle, trusted_fingerprint=fingerprint(key))
    assert verdict.integrity_ok and verdict.completeness_ok is None
    assert verdict.problems == [] and verdict.exit_code == 0

    path = tmp_path / "bundle.json"
    write_bundle(bundle, path)
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == bundle
    assert text.index('"chain"') < text.index('"events"')  # sorted keys
    assert verify_bundle(read_bundle(path)).exit_code == 0


async def test_include_selects_categories(store: AuditStore, key: Ed25519PrivateKey) -> None:
    bundle = await export_bundle(store, RUN, include=["policy"], key=key)
    assert {e["kind"] for e in bundle["events"]} == {"policy.decision", "policy.model_decision"}
    assert verify_bundle(bundle).integrity_ok
    with pytest.raises(ExportError, match="unknown include"):
        await export_bundle(store, RUN, include=["secrets"], key=key)
    with pytest.raises(ExportError, match="no events"):
        await export_bundle(store, "exec_missing", key=key)


async def test_redaction_masks_lists_and_still_verifies(
    store: AuditStore, key: Ed25519PrivateKey
) -> None:
    bundle = await export_bundle(
        store, RUN, redact=["data.result", "actor.user", "password", "api_key"], key=key
    )
    text = json.dumps(bundle["events"])
    assert "hunter2" not in text and "sk-1" not in text and "sunil@" not in text
    call = bundle["events"][1]
    assert call["data"]["result"] == REDACTED and call["data"]["args"] == ["v2.3"]
    listed = {(r["event_id"], r["path"], r["rule"]) for r in bundle["redactions"]}
    ids = [e.id for e in _events()]
    assert (ids[1], "data.result", "data.result") in listed
    assert (ids[9], "data.args.0.password", "password") in listed
    assert (ids[5], "data.args.0.api_key", "api_key") in listed
    assert sum(1 for r in bundle["redactions"] if r["rule"] == "actor.user") == 10
    assert verify_bundle(bundle).exit_code == 0

    hidden = copy.deepcopy(bundle)
    hidden["redactions"] = hidden["redactions"][1:]  # hide that something was redacted
    assert "redaction list was changed" in " ".join(verify_bundle(hidden).problems)

    with pytest.raises(ExportError, match="must start with"):
        await export_bundle(store, RUN, redact=["id.x"], key=key)


# -- tampering --------------------------------------------------------------------------------


def _tamper(bundle: dict[str, Any], how: str) -> None:
    events = bundle["events"]
    if how == "edit":
        events[2]["data"]["decision"] = "ALLOWED"
    elif how == "delete":
        del events[4]
    elif how == "reorder":
        events[3], events[4] = events[4], events[3]
    elif how == "insert":
        forged = dict(events[0], id=event_id("forged"))
        events.insert(6, forged)
    elif how == "truncate":
        events.pop()


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("edit", ["event 3 ({2}) was edited: hash mismatch"]),
        ("delete", ["event 5 ({4}) was deleted", "event count 9 but statement says 10"]),
        ("reorder", ["event 4 ({4}) was reordered", "event 5 ({3}) was reordered"]),
        ("insert", ["event 7 ({forged}) was inserted", "event count 11 but statement says 10"]),
        (
            "truncate",
            [
                "event 10 ({9}) was removed from the end (truncated)",
                "event count 9 but statement says 10 (events missing or truncated)",
                "last event is {8} but statement says {9}",
            ],
        ),
    ],
)
async def test_each_tampering_is_detected_and_named(
    store: AuditStore, key: Ed25519PrivateKey, how: str, expected: list[str]
) -> None:
    bundle = await export_bundle(store, RUN, key=key)
    _tamper(bundle, how)
    # The summary is recomputable, so a careful forger fixes it too.
    bundle["summary"] = summarize(bundle["events"])
    verdict = verify_bundle(bundle)
    assert not verdict.integrity_ok and verdict.exit_code == 1
    ids = {str(n): e.id for n, e in enumerate(_events())} | {"forged": event_id("forged")}
    text = "\n".join(verdict.problems)
    for line in expected:
        assert line.format(*[ids[str(n)] for n in range(10)], forged=ids["forged"]) in text


async def test_rewriting_the_chain_record_too_is_still_detected(
    store: AuditStore, key: Ed25519PrivateKey
) -> None:
    bundle = await export_bundle(store, RUN, key=key)
    forged = seal_bundle(
        RUN,
        [e for e in bundle["events"] if e["kind"] != "tool.call"],
        include=bundle["include"],
        redactions=[],
        history=None,
        key=Ed25519PrivateKey.generate(),
    )
    bundle["events"], bundle["chain"] = forged["events"], forged["chain"]
    bundle["summary"] = forged["summary"]
    verdict = verify_bundle(bundle)
    assert not verdict.integrity_ok
    text = "\n".join(verdict.problems)
    assert "chain record (ids and hashes) was changed after signing" in text
    assert "event count 8 but statement says 10" in text


async def test_another_keys_signature_fails(store: AuditStore, key: Ed25519PrivateKey) -> None:
    bundle = await export_bundle(store, RUN, key=key)
    other = Ed25519PrivateKey.generate()

    # Signed by another key but still presenting ours.
    swapped = copy.deepcopy(bundle)
    resigned = seal_bundle(
        RUN,
        swapped["events"],
        include=swapped["include"],
        redactions=[],
        history=None,
        key=other,
    )
    swapped["signature"] = resigned["signature"]
    verdict = verify_bundle(swapped)
    assert not verdict.integrity_ok
    assert "signature does not match" in " ".join(verdict.problems)

    # Wholly re-signed with another key: valid on its own, refused when our key is pinned.
    assert verify_bundle(resigned).integrity_ok
    pinned = verify_bundle(resigned, trusted_fingerprint=fingerprint(key))
    assert not pinned.integrity_ok and pinned.exit_code == 1
    assert f"not by the trusted key {fingerprint(key)}" in " ".join(pinned.problems)

    # The statement edited after signing.
    edited = copy.deepcopy(bundle)
    edited["statement"]["event_count"] = 11
    assert "signature does not match" in " ".join(verify_bundle(edited).problems)


# -- completeness against a real Temporal history ---------------------------------------------


@workflow(name="test-export.direct")
async def look_up(query: str) -> dict[str, str]:
    """Two governed tool calls."""
    paths = await search(query)
    return await read_files(paths)


async def _real_run(server: DevServer, tmp_path: Path) -> tuple[AuditStore, str, str]:
    url = f"sqlite:///{tmp_path / 'real.db'}"
    client = await Client.connect(
        server.address, plugins=[JamJetPlugin(JamJetConfig(audit_store=url))]
    )
    queue = f"export-{uuid.uuid4().hex[:8]}"
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=queue, workflows=[look_up], activities=[search, read_files]
    ):
        handle = await client.start_workflow(look_up.run, "v2.3", id=run_id, task_queue=queue)
        await handle.result()
    history = (await handle.fetch_history()).to_json()
    return open_store(url), run_id, history


async def test_completeness_against_the_real_history(
    temporal_server: DevServer, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    store, run_id, history = await _real_run(temporal_server, tmp_path)
    try:
        bundle = await export_bundle(store, run_id, history_json=history, key=key)
    finally:
        await store.close()
    assert bundle["history"] == json.loads(history)
    verdict = verify_bundle(bundle)
    assert verdict.problems == []
    assert verdict.integrity_ok and verdict.completeness_ok is True and verdict.exit_code == 0

    # A dishonest exporter drops the decision of the second call and signs what is left.
    decision = next(
        e
        for e in bundle["events"]
        if e["kind"] == "policy.decision" and e["data"]["tool"] == "read_files"
    )
    activity_id = decision["data"]["activity_id"]
    forged = seal_bundle(
        run_id,
        [e for e in bundle["events"] if e is not decision],
        include=bundle["include"],
        redactions=[],
        history=bundle["history"],
        key=key,
    )
    verdict = verify_bundle(forged)
    assert verdict.integrity_ok and verdict.completeness_ok is False
    assert verdict.exit_code == 2
    assert len(verdict.completeness_problems) == 1
    assert f"activity {activity_id} (read_files" in verdict.completeness_problems[0]
    assert "no policy decision event" in verdict.completeness_problems[0]

    # And its call event: named as well; plus an edit: both verdicts fail.
    call = next(e for e in bundle["events"] if e["kind"] == "tool.call")
    forged = seal_bundle(
        run_id,
        [e for e in bundle["events"] if e is not call],
        include=bundle["include"],
        redactions=[],
        history=bundle["history"],
        key=key,
    )
    forged["events"][0]["data"]["decision"] = "BLOCKED"
    verdict = verify_bundle(forged)
    assert verdict.exit_code == 3
    assert f"activity {call['data']['activity_id']} (search)" in verdict.completeness_problems[0]
    assert "no tool.call or model.call event" in verdict.completeness_problems[0]


def test_verify_never_raises_on_garbage() -> None:
    for junk in ({}, {"statement": {}, "events": [1, "x"]}, {"events": None}):
        verdict = verify_bundle(junk)
        assert not verdict.integrity_ok and verdict.exit_code == 1
