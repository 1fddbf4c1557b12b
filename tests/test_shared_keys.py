"""One Ed25519 key format: approver keys and audit signing keys read each other's files.

Private keys: PKCS#8 PEM files, mode 0600, written atomically, ``#`` header lines allowed.
Public keys: ``ed25519:<base64url>`` (PEM also read). Fingerprints: ``sha256:<hex>``.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jamjet_temporal._shared import _keys as keys
from jamjet_temporal.approvals._identity import (
    SigningIdentity,
    generate_identity,
    load_identity,
    parse_public_key,
    public_key_id,
    verify_signature,
)
from jamjet_temporal.approvals._load import load_approvals
from jamjet_temporal.audit._checkpoint import Checkpoint, CheckpointSigner, _invalid
from jamjet_temporal.audit._export import seal_bundle
from jamjet_temporal.audit._keys import (
    fingerprint,
    load_or_create_signing_key,
    load_public_key,
    load_trusted_keys,
    public_key_pem,
)
from jamjet_temporal.audit._verify import verify_bundle
from jamjet_temporal.errors import KeyFileError, SigningKeyError, TrustedKeyError

WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HISTORIES = Path(__file__).parent / "histories"


def legacy_approver_file(path: Path, approver: str, key: Ed25519PrivateKey) -> Path:
    """A key file exactly as approvals wrote them before the shared format (no fingerprint)."""
    identity = SigningIdentity(approver, key)
    path.write_bytes(
        (
            "# JamJet approver private key: keep it private (mode 600), never commit or share "
            "it\n"
            f"# approver: {approver}\n"
            f"# key_id: {identity.key_id}\n"
            f"# public_key: {identity.public_key}\n"
        ).encode()
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def legacy_audit_file(path: Path, key: Ed25519PrivateKey) -> Path:
    """A signing key file as audit wrote them before: bare PKCS#8 PEM."""
    path.write_bytes(keys.private_key_pem(key))
    path.chmod(0o600)
    return path


def sign(identity: SigningIdentity) -> bool:
    decision = identity.sign(
        approval_id="apr_1",
        run_id="run",
        workflow_run_id="r1",
        nonce="n",
        digest="sha256:" + "0" * 64,
        decision="approved",
        signed_at=WHEN,
    )
    return verify_signature(decision, identity.public_key)


# -- one file format ------------------------------------------------------------------------


def test_an_approver_key_signs_audit_bundles(tmp_path: Path) -> None:
    identity, path = generate_identity("alice@example.com", tmp_path / "keys")
    key = load_or_create_signing_key(path)
    assert fingerprint(key) == identity.fingerprint
    assert keys.public_key_text(key) == identity.public_key
    bundle = seal_bundle("run", [], include=["events"], redactions=[], history=None, key=key)
    verdict = verify_bundle(bundle, trusted_keys=[identity.fingerprint])
    assert verdict.ok, verdict.problems
    # Pinning the approver's registered public key trusts the same signer.
    assert load_trusted_keys(keys=[identity.public_key]) == {
        identity.fingerprint: "pinned by --trusted-key"
    }


def test_an_audit_signing_key_loads_as_an_approver_key(tmp_path: Path) -> None:
    path = tmp_path / "audit-signing.key"
    key = load_or_create_signing_key(path)
    text = path.read_text()
    assert f"# fingerprint: {fingerprint(key)}\n" in text
    assert f"# public_key: {keys.public_key_text(key)}\n" in text
    assert "-----BEGIN PRIVATE KEY-----" in text
    with pytest.raises(KeyFileError, match="does not name its approver"):
        load_identity(path)
    identity = load_identity(path, approver="auditor@example.com")
    assert identity.fingerprint == fingerprint(key)
    assert identity.public_key == keys.public_key_text(key)
    assert sign(identity)


def test_a_named_approver_must_match_the_file(tmp_path: Path) -> None:
    _, path = generate_identity("alice@example.com", tmp_path)
    assert load_identity(path, approver="alice@example.com").approver == "alice@example.com"
    with pytest.raises(KeyFileError, match=r"belongs to approver 'alice@example\.com'"):
        load_identity(path, approver="bob@example.com")


def test_a_legacy_approver_key_file_still_loads(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = legacy_approver_file(tmp_path / "alice.key", "alice@example.com", key)
    identity = load_identity(path)
    assert identity.approver == "alice@example.com"
    assert identity.public_key == keys.public_key_text(key)
    assert identity.key_id == public_key_id(identity.public_key)
    assert sign(identity)
    assert fingerprint(load_or_create_signing_key(path)) == identity.fingerprint


def test_a_legacy_audit_key_file_still_loads(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = legacy_audit_file(tmp_path / "audit-signing.key", key)
    assert fingerprint(load_or_create_signing_key(path)) == fingerprint(key)
    assert load_identity(path, approver="auditor").fingerprint == fingerprint(key)


def test_the_legacy_approvals_config_still_loads() -> None:
    config = load_approvals(HISTORIES / "legacy_approvals.yaml")
    registered = config.approvers[0].public_key
    assert parse_public_key(registered) is not None
    assert fingerprint(load_public_key(registered)).startswith("sha256:")


def test_files_are_private_and_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "k.key"
    first = Ed25519PrivateKey.generate()
    keys.write_private_key(path, first, comment="test key", headers={"owner": "me"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    read = keys.read_private_key(path)
    assert fingerprint(read.key) == fingerprint(first) and read.headers["owner"] == "me"
    with pytest.raises(FileExistsError):
        keys.write_private_key(path, Ed25519PrivateKey.generate())
    assert fingerprint(keys.read_private_key(path).key) == fingerprint(first)
    second = Ed25519PrivateKey.generate()
    keys.write_private_key(path, second, overwrite=True)
    assert fingerprint(keys.read_private_key(path).key) == fingerprint(second)
    assert os.listdir(path.parent) == ["k.key"]  # no temporary file left behind


def test_a_header_naming_another_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    load_or_create_signing_key(path)
    other = fingerprint(Ed25519PrivateKey.generate())
    text = path.read_text()
    line = next(x for x in text.splitlines() if x.startswith("# fingerprint: "))
    path.write_text(text.replace(line, f"# fingerprint: {other}"))
    with pytest.raises(SigningKeyError, match="the header says fingerprint"):
        load_or_create_signing_key(path)
    with pytest.raises(KeyFileError, match="the header says fingerprint"):
        load_identity(path, approver="x")


@pytest.mark.skipif(os.name != "posix", reason="mode bits")
def test_both_refuse_a_key_others_may_read(tmp_path: Path) -> None:
    _, path = generate_identity("alice@example.com", tmp_path)
    path.chmod(0o640)
    with pytest.raises(SigningKeyError, match="mode 640"):
        load_or_create_signing_key(path)
    with pytest.raises(KeyFileError, match="mode 640"):
        load_identity(path)


# -- one public key text, one fingerprint ---------------------------------------------------


def test_public_key_text_fingerprint_and_pem_name_one_key() -> None:
    key = Ed25519PrivateKey.generate()
    text = keys.public_key_text(key)
    assert text.startswith("ed25519:") and len(text) == len("ed25519:") + 43
    assert fingerprint(key).startswith("sha256:") and len(fingerprint(key)) == 71
    assert keys.is_fingerprint(fingerprint(key))
    for form in (text, public_key_pem(key)):
        assert fingerprint(keys.parse_public_key(form)) == fingerprint(key)
        assert fingerprint(load_public_key(form)) == fingerprint(key)
    identity = SigningIdentity("a", key)
    assert identity.public_key == text and identity.fingerprint == fingerprint(key)
    # The decision key id is the fingerprint's first 16 hex digits (unchanged wire form).
    assert identity.key_id == "ed25519:" + fingerprint(key).removeprefix("sha256:")[:16]


def test_approvals_configs_take_only_the_one_text_of_a_key() -> None:
    """Configs compare keys as text (one holder, two approvers): one text per key only."""
    key = Ed25519PrivateKey.generate()
    text = keys.public_key_text(key)
    assert parse_public_key(text) is not None
    for other in (public_key_pem(key), f" {text}", f"{text}\n", text[:-1] + "F"):
        assert parse_public_key(other) is None
    with pytest.raises(keys.KeyFormatError, match="43 base64url characters"):
        keys.parse_public_key("ed25519:short")
    with pytest.raises(keys.KeyFormatError, match="not 'ed25519:<base64url>'"):
        keys.parse_public_key(public_key_pem(key), pem=False)


def test_trusted_keys_files_take_every_form(tmp_path: Path) -> None:
    a, b, c = (Ed25519PrivateKey.generate() for _ in range(3))
    listing = tmp_path / "trusted"
    listing.write_text(
        f"# signers\n{fingerprint(a)}  # by fingerprint\n"
        f"{keys.public_key_text(b)}  # by public key\n{public_key_pem(c)}"
    )
    found = load_trusted_keys(files=[listing])
    assert list(found) == [fingerprint(a), fingerprint(b), fingerprint(c)]
    with pytest.raises(TrustedKeyError, match="43 base64url"):
        load_trusted_keys(keys=["ed25519:nope"])


def test_checkpoints_read_the_public_key_text_too() -> None:
    key = Ed25519PrivateKey.generate()
    signed = CheckpointSigner(key).sign("store", 3, "ab" * 32, WHEN)
    assert _invalid(signed, "store") is None
    as_text = Checkpoint(*signed[:5], keys.public_key_text(key), signed.signature)
    assert _invalid(as_text, "store") is None
    wrong = Checkpoint(
        *signed[:5], keys.public_key_text(Ed25519PrivateKey.generate()), signed.signature
    )
    assert _invalid(wrong, "store") is not None
