"""Signed audit export bundles: export, redaction, tamper detection, trust and completeness."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey
from temporalio.client import Client
from temporalio.worker import Worker

from activities.notes import read_files, search
from jamjet_temporal import JamJetConfig, JamJetPlugin, workflow
from jamjet_temporal.audit import AuditEvent, AuditStore, event_id, export, open_store
from jamjet_temporal.audit._export import (
    REDACTED,
    canonical_text,
    export_bundle,
    read_bundle,
    seal_bundle,
    summarize,
    write_bundle,
)
from jamjet_temporal.audit._keys import (
    KEY_ENV,
    TRUSTED_KEYS_ENV,
    fingerprint,
    load_or_create_signing_key,
    load_trusted_keys,
    public_key_pem,
)
from jamjet_temporal.audit._verify import verify_bundle
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.errors import ExportError, SigningKeyError, TrustedKeyError
from jamjet_temporal.plugin import AuditConfig
from tests.audit.audit_support import T0

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
    path.chmod(0o600)
    with pytest.raises(SigningKeyError, match=r"bad\.key"):
        load_or_create_signing_key(path)


def test_a_signing_key_other_users_can_read_is_refused(tmp_path: Path) -> None:
    # Anyone who can read the key can sign bundles its owner's verifiers trust. (Tests run
    # as root, who reads any file: the refusal is about the mode bits.)
    path = tmp_path / "audit-signing.key"
    load_or_create_signing_key(path)
    path.chmod(0o644)
    with pytest.raises(SigningKeyError, match=r"mode 644") as caught:
        load_or_create_signing_key(path)
    assert caught.value.path == path
    assert f"chmod 600 {path}" in str(caught.value) and "rotate" in str(caught.value)
    path.chmod(0o600)
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

    verdict = verify_bundle(bundle, trusted_keys=[fingerprint(key)])
    assert verdict.integrity_ok and verdict.completeness_ok is None
    assert verdict.signer == fingerprint(key) and verdict.trusted
    assert verdict.problems == [] and verdict.exit_code == 0

    path = tmp_path / "bundle.json"
    write_bundle(bundle, path)
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == bundle
    assert text.index('"chain"') < text.index('"events"')  # sorted keys
    assert verify_bundle(read_bundle(path), trusted_keys=[fingerprint(key)]).exit_code == 0


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
    assert verify_bundle(bundle, trusted_keys=[fingerprint(key)]).exit_code == 0

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
    verdict = verify_bundle(bundle, trusted_keys=[fingerprint(key)])
    assert not verdict.integrity_ok and verdict.trusted and verdict.exit_code == 1
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


def _stranger_resigns(bundle: dict[str, Any], stranger: Ed25519PrivateKey) -> dict[str, Any]:
    """What anyone can do: drop the denial from a bundle and sign the rest with their key."""
    return seal_bundle(
        bundle["run_id"],
        [e for e in bundle["events"] if e["data"].get("decision") != "BLOCKED"],
        include=bundle["include"],
        redactions=[],
        history=None,
        key=stranger,
    )


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
    verdict = verify_bundle(swapped, trusted_keys=[fingerprint(key)])
    assert not verdict.integrity_ok and verdict.exit_code == 1
    assert "signature does not match" in " ".join(verdict.problems)

    # The statement edited after signing.
    edited = copy.deepcopy(bundle)
    edited["statement"]["event_count"] = 11
    assert "signature does not match" in " ".join(verify_bundle(edited).problems)


# -- trust: who signed it ---------------------------------------------------------------------


def _jamjet(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``jamjet`` as a user runs it, with no trusted key or signing key in the environment."""
    clean = {k: v for k, v in os.environ.items() if k not in (TRUSTED_KEYS_ENV, KEY_ENV)}
    return subprocess.run(
        [sys.executable, "-m", "jamjet_temporal", *args],
        env={**clean, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_a_stranger_who_re_signs_an_edited_bundle_is_not_trusted(
    store: AuditStore, key: Ed25519PrivateKey
) -> None:
    genuine = await export_bundle(store, RUN, key=key)
    stranger = Ed25519PrivateKey.generate()
    forged = _stranger_resigns(genuine, stranger)

    # Intact as far as its own key goes: only trust tells it apart.
    alone = verify_bundle(forged)
    assert alone.integrity_ok and not alone.trusted and not alone.ok
    assert alone.signer == fingerprint(stranger) and alone.exit_code == 4
    assert f"the signer {fingerprint(stranger)} is not trusted" in alone.problems

    pinned = verify_bundle(forged, trusted_keys=[fingerprint(key)])
    assert not pinned.trusted and pinned.exit_code == 4
    ours = verify_bundle(genuine, trusted_keys=[fingerprint(key).upper().replace("SHA", "sha")])
    assert ours.trusted and ours.ok and ours.exit_code == 0
    with pytest.raises(TypeError, match="collection of fingerprints"):
        verify_bundle(genuine, trusted_keys=fingerprint(key))


async def test_jamjet_audit_verify_trusts_only_pinned_signers(
    store: AuditStore, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    genuine, forged = tmp_path / "genuine.json", tmp_path / "forged.json"
    bundle = await export_bundle(store, RUN, key=key)
    write_bundle(bundle, genuine)
    stranger = Ed25519PrivateKey.generate()
    write_bundle(_stranger_resigns(bundle, stranger), forged)
    victim, thief = fingerprint(key), fingerprint(stranger)

    unpinned = _jamjet("audit", "verify", str(forged), cwd=tmp_path)
    assert unpinned.returncode == 4, unpinned.stderr
    assert "integrity: ok" in unpinned.stdout
    assert f"signer: {thief} NOT TRUSTED: no trusted key configured" in unpinned.stdout

    refused = _jamjet("audit", "verify", str(forged), "--trusted-key", victim, cwd=tmp_path)
    assert refused.returncode == 4 and f"signer: {thief} NOT TRUSTED" in refused.stdout

    accepted = _jamjet("audit", "verify", str(genuine), "--trusted-key", victim, cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert f"signer: {victim} (trusted: pinned by --trusted-key)" in accepted.stdout

    keys_file = tmp_path / "trusted-keys"
    keys_file.write_text(f"# our signers\nsha256:{'0' * 64}  # retired\n{public_key_pem(key)}")
    listed = _jamjet(
        "audit", "verify", str(genuine), "--trusted-keys", str(keys_file), cwd=tmp_path
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert f"(trusted: listed in trusted-keys file {keys_file})" in listed.stdout

    from_env = _jamjet(
        "audit", "verify", str(genuine), cwd=tmp_path, env={TRUSTED_KEYS_ENV: f" {victim} "}
    )
    assert (
        from_env.returncode == 0 and "(trusted: pinned by JAMJET_TRUSTED_KEYS)" in from_env.stdout
    )
    env_file = _jamjet(
        "audit", "verify", str(forged), cwd=tmp_path, env={TRUSTED_KEYS_ENV: str(keys_file)}
    )
    assert env_file.returncode == 4 and f"signer: {thief} NOT TRUSTED" in env_file.stdout

    typo = _jamjet("audit", "verify", str(genuine), "--trusted-key", "sha256:c0ffee", cwd=tmp_path)
    assert typo.returncode == 8 and "'sha256:c0ffee' is not a key fingerprint" in typo.stderr


def test_trusted_keys_come_from_options_files_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    pem = tmp_path / "ours.pub"
    pem.write_text(
        f"fingerprint: {fingerprint(ours)}\n{public_key_pem(ours)}"
    )  # `jamjet audit key`
    keys_file = tmp_path / "trusted-keys"
    keys_file.write_text(f"\n# release keys\n{public_key_pem(ours)}{fingerprint(theirs)} # ci\n")
    monkeypatch.setenv(TRUSTED_KEYS_ENV, f"{fingerprint(theirs)},{keys_file}")

    assert load_trusted_keys(keys=[str(pem)]) == {fingerprint(ours): "pinned by --trusted-key"}
    where = f"listed in trusted-keys file {keys_file}"
    assert load_trusted_keys(files=[keys_file]) == {
        fingerprint(ours): where,
        fingerprint(theirs): where,
    }
    assert load_trusted_keys() == {
        fingerprint(theirs): "pinned by JAMJET_TRUSTED_KEYS",
        fingerprint(ours): f"{where} (from JAMJET_TRUSTED_KEYS)",
    }
    monkeypatch.delenv(TRUSTED_KEYS_ENV)
    assert load_trusted_keys() == {}

    bad = tmp_path / "bad-keys"
    bad.write_text(f"{fingerprint(ours)}\nsha256:nothex\n")
    with pytest.raises(
        TrustedKeyError, match=rf"{bad}:2: 'sha256:nothex' is not a key fingerprint"
    ):
        load_trusted_keys(files=[bad])
    bad.write_text("# nothing here\n")
    with pytest.raises(TrustedKeyError, match="lists no key"):
        load_trusted_keys(files=[bad])
    monkeypatch.setenv(TRUSTED_KEYS_ENV, str(tmp_path / "missing"))
    with pytest.raises(TrustedKeyError, match=r"\(in JAMJET_TRUSTED_KEYS\): cannot be read"):
        load_trusted_keys()


# -- the in-toto attestation ------------------------------------------------------------------


async def test_the_attestation_verifies_with_standard_dsse_tooling(
    store: AuditStore, key: Ed25519PrivateKey
) -> None:
    bundle = await export_bundle(store, RUN, key=key)
    envelope = Envelope.from_dict(copy.deepcopy(bundle["dsse"]))
    public = SSlibKey.from_crypto(key.public_key(), keyid=fingerprint(key))
    assert envelope.payload_type == "application/vnd.in-toto+json"
    assert list(envelope.verify([public], 1)) == [fingerprint(key)]
    statement = json.loads(envelope.payload)
    chain = hashlib.sha256(canonical_text(bundle["chain"]).encode("utf-8")).hexdigest()
    assert statement == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"audit-events:{RUN}", "digest": {"sha256": chain}}],
        "predicateType": "https://jamjet.dev/audit-bundle/v1",
        "predicate": bundle["statement"],
    }

    # Someone edits the attested statement: DSSE verification refuses it.
    statement["predicate"]["event_count"] = 9
    envelope.payload = canonical_text(statement).encode("utf-8")
    with pytest.raises(VerificationError):
        envelope.verify([public], 1)


async def test_our_verifier_checks_the_attestation(
    store: AuditStore, key: Ed25519PrivateKey
) -> None:
    bundle = await export_bundle(store, RUN, key=key)
    trusted = [fingerprint(key)]

    def problems(dsse: object) -> str:
        verdict = verify_bundle(dict(bundle, dsse=dsse), trusted_keys=trusted)
        assert not verdict.integrity_ok
        return "\n".join(verdict.integrity_problems)

    assert "not a DSSE envelope" in problems("not an envelope")
    # A bundle exported before attestations existed still verifies, and says it is unattested.
    old = {k: v for k, v in bundle.items() if k != "dsse"}
    verdict = verify_bundle(old, trusted_keys=trusted)
    assert verdict.ok and not verdict.attested
    assert verify_bundle(bundle, trusted_keys=trusted).attested
    # Another run's attestation, validly signed by the same key, does not fit this bundle.
    other = seal_bundle(
        "exec_other",
        bundle["events"],
        include=bundle["include"],
        redactions=[],
        history=None,
        key=key,
    )
    assert "does not carry the bundle's statement" in problems(other["dsse"])
    # An edited payload under the original signature.
    edited = copy.deepcopy(bundle["dsse"])
    edited["payload"] = base64.b64encode(
        base64.b64decode(edited["payload"]).replace(b"10", b"11")
    ).decode()
    assert "signature does not verify" in problems(edited)
    assert "not a DSSE envelope" in problems({"payload": "!"})


# -- export files -----------------------------------------------------------------------------


async def test_export_writes_the_bundle_attestation_and_pdf_side_by_side(
    store: AuditStore, tmp_path: Path
) -> None:
    result = await export(
        RUN,
        format="pdf",
        store=f"sqlite:///{tmp_path / 'audit.db'}",
        output=tmp_path / "evidence.pdf",
        key=tmp_path / "signing.key",
        address="127.0.0.1:1",  # no Temporal: the bundle is exported without its history
    )
    assert (result.path, result.bundle_path, result.attestation_path) == (
        tmp_path / "evidence.pdf",
        tmp_path / "evidence.json",
        tmp_path / "evidence.intoto.jsonl",
    )
    assert result.path.read_bytes().startswith(b"%PDF")
    assert read_bundle(result.bundle_path) == result.bundle
    lines = result.attestation_path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [result.bundle["dsse"]]
    signer = load_or_create_signing_key(tmp_path / "signing.key")
    public = SSlibKey.from_crypto(signer.public_key(), keyid=fingerprint(signer))
    Envelope.from_dict(json.loads(lines[0])).verify([public], 1)


@pytest.mark.parametrize(
    ("format", "name", "instead"),
    [
        ("pdf", "evidence.json", "write evidence.pdf (the JSON bundle is written beside it as"),
        ("pdf", "evidence", "write evidence.pdf"),
        ("json", "evidence.pdf", "write evidence.json, or ask for format pdf"),
    ],
)
async def test_export_refuses_an_output_name_that_contradicts_the_format(
    store: AuditStore, tmp_path: Path, format: Any, name: str, instead: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExportError, match=f"does not fit format {format}") as caught:
        await export(
            RUN,
            format=format,
            store=f"sqlite:///{tmp_path / 'audit.db'}",
            output=out / name,
            key=out / "signing.key",
            address="127.0.0.1:1",
        )
    assert instead.replace("evidence", str(out / "evidence")) in str(caught.value)
    assert list(out.iterdir()) == []


def test_jamjet_audit_export_refuses_a_pdf_named_like_its_bundle(
    store: AuditStore, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = _jamjet(
        "audit",
        "export",
        RUN,
        "--format",
        "pdf",
        "-o",
        str(out / "evidence.json"),
        "--audit-store",
        f"sqlite:///{tmp_path / 'audit.db'}",
        "--address",
        "127.0.0.1:1",
        cwd=tmp_path,
        env={KEY_ENV: str(out / "signing.key")},
    )
    assert proc.returncode == 1
    assert "the PDF report and the signed JSON bundle would both be" in proc.stderr
    assert f"write {out / 'evidence.pdf'}" in proc.stderr
    assert list(out.iterdir()) == []


# -- completeness against a real Temporal history ---------------------------------------------


@workflow(name="test-export.direct")
async def look_up(query: str) -> dict[str, str]:
    """Two governed tool calls."""
    paths = await search(query)
    return await read_files(paths)


async def _real_run(server: DevServer, tmp_path: Path) -> tuple[AuditStore, str, str]:
    url = f"sqlite:///{tmp_path / 'real.db'}"
    client = await Client.connect(
        server.address, plugins=[JamJetPlugin(JamJetConfig(audit=AuditConfig(store=url)))]
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
    verdict = verify_bundle(bundle, trusted_keys=[fingerprint(key)])
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
    verdict = verify_bundle(forged, trusted_keys=[fingerprint(key)])
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
    verdict = verify_bundle(forged, trusted_keys=[fingerprint(key)])
    assert verdict.exit_code == 3
    assert f"activity {call['data']['activity_id']} (search)" in verdict.completeness_problems[0]
    assert "no tool.call or model.call event" in verdict.completeness_problems[0]


def test_verify_never_raises_on_garbage() -> None:
    for junk in ({}, {"statement": {}, "events": [1, "x"]}, {"events": None}):
        verdict = verify_bundle(junk, trusted_keys=["sha256:" + "0" * 64])
        assert not verdict.integrity_ok and not verdict.trusted and verdict.exit_code == 1 | 4
