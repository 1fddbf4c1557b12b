"""Approver identity: key files, signing, and verification that fails closed."""

from __future__ import annotations

import os
import pickle
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from pydantic import JsonValue

from jamjet_temporal.approvals._identity import (
    SignedDecision,
    SigningIdentity,
    action_digest,
    generate_identity,
    key_file_name,
    load_identity,
    parse_public_key,
    public_key_id,
    verify_signature,
)
from jamjet_temporal.errors import ConfigError, KeyFileError

ALICE = SigningIdentity.generate("alice@example.com")
BOB = SigningIdentity.generate("bob@example.com")
WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DIGEST = action_digest("wire_transfer", {"amount": 50000, "to": "ACME"})


def signed(identity: SigningIdentity = ALICE, **changes: object) -> SignedDecision:
    fields: dict[str, object] = {
        "approval_id": "apr_1",
        "run_id": "transfer-42",
        "workflow_run_id": "run-1",
        "nonce": "nonce-1",
        "digest": DIGEST,
        "decision": "approved",
        "comment": "ok for Q1",
        "signed_at": WHEN,
    }
    fields.update(changes)
    return identity.sign(**fields)  # type: ignore[arg-type]


def key_error(path: Path) -> KeyFileError:
    with pytest.raises(KeyFileError) as caught:
        load_identity(path)
    assert isinstance(caught.value, ConfigError)
    assert caught.value.path == str(path)
    return caught.value


def write_private(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    path.chmod(0o600)
    return path


# --------------------------------------------------------------------------------------------
# Key files


def test_generate_and_load_round_trip(tmp_path: Path) -> None:
    identity, path = generate_identity("alice@example.com", tmp_path / "keys")
    assert path == tmp_path / "keys" / "alice@example.com.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    text = path.read_text()
    assert "# approver: alice@example.com\n" in text
    assert f"# public_key: {identity.public_key}\n" in text
    assert "-----BEGIN PRIVATE KEY-----" in text
    loaded = load_identity(path)
    assert (loaded.approver, loaded.public_key, loaded.key_id) == (
        identity.approver,
        identity.public_key,
        identity.key_id,
    )
    decision = loaded.sign(
        approval_id="apr_1",
        run_id="r",
        workflow_run_id="run-1",
        nonce="n",
        digest=DIGEST,
        decision="approved",
        signed_at=WHEN,
    )
    assert verify_signature(decision, identity.public_key)
    assert "PRIVATE" not in repr(loaded) and loaded.key_id in repr(loaded)


def test_key_format() -> None:
    assert ALICE.public_key.startswith("ed25519:")
    assert len(ALICE.public_key) == len("ed25519:") + 43
    raw = parse_public_key(ALICE.public_key)
    assert raw is not None and len(raw) == 32
    assert ALICE.key_id == public_key_id(ALICE.public_key)
    assert ALICE.key_id.startswith("ed25519:") and len(ALICE.key_id) == len("ed25519:") + 16
    with pytest.raises(ValueError, match="not an Ed25519 public key"):
        public_key_id("ed25519:short")


def test_default_directory_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAMJET_KEYS_DIR", str(tmp_path / "env-keys"))
    _, path = generate_identity("bob@example.com")
    assert path == tmp_path / "env-keys" / "bob@example.com.key"


def test_default_directory_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAMJET_KEYS_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    _, path = generate_identity("bob@example.com")
    assert path == tmp_path / "home" / ".jamjet" / "keys" / "bob@example.com.key"


def test_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    first, path = generate_identity("alice@example.com", tmp_path)
    with pytest.raises(KeyFileError) as caught:
        generate_identity("alice@example.com", tmp_path)
    assert "already exists" in caught.value.reason and "overwrite=True" in caught.value.fix
    assert load_identity(path).public_key == first.public_key
    second, same = generate_identity("alice@example.com", tmp_path, overwrite=True)
    assert same == path and second.public_key != first.public_key
    assert load_identity(path).public_key == second.public_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice@example.com.key"]


def test_refuses_a_directory_inside_a_git_repository(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    with pytest.raises(KeyFileError) as caught:
        generate_identity("alice@example.com", tmp_path / "repo" / "secrets")
    assert "git repository" in caught.value.reason
    assert "JAMJET_KEYS_DIR" in caught.value.fix
    assert not (tmp_path / "repo" / "secrets").exists()


def test_file_name_is_safe() -> None:
    assert key_file_name("alice@example.com") == "alice@example.com.key"
    assert key_file_name("../../etc/passwd") == "_.._etc_passwd.key"
    assert key_file_name("Jane Doe/ops") == "Jane_Doe_ops.key"


@pytest.mark.parametrize("approver", ["", " alice", "alice\n", "a\x00b"])
def test_approver_id_must_be_clean(approver: str) -> None:
    with pytest.raises(ValueError, match="approver id"):
        SigningIdentity.generate(approver)


def test_load_missing_file(tmp_path: Path) -> None:
    error = key_error(tmp_path / "nope.key")
    assert error.reason == "key file not found" and "keygen" in error.fix


def test_load_directory(tmp_path: Path) -> None:
    assert "directory" in key_error(tmp_path).reason


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_load_refuses_a_key_readable_by_others(tmp_path: Path, mode: int) -> None:
    _, path = generate_identity("alice@example.com", tmp_path)
    path.chmod(mode)
    error = key_error(path)
    assert f"mode {mode:03o}" in error.reason
    assert error.fix.startswith(f"chmod 600 {path}")
    path.chmod(0o600)
    assert load_identity(path).approver == "alice@example.com"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_load_unreadable_file(tmp_path: Path) -> None:
    _, path = generate_identity("alice@example.com", tmp_path)
    path.chmod(0o000)
    try:
        assert "permission denied" in key_error(path).reason
    finally:
        path.chmod(0o600)


def test_load_not_a_pem_file(tmp_path: Path) -> None:
    assert "no PEM private key" in key_error(write_private(tmp_path / "k", b"hello\n")).reason
    assert "binary" in key_error(write_private(tmp_path / "b", b"\xff\xfe\x00")).reason
    garbage = b"# approver: a\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    assert "not a readable private key" in key_error(write_private(tmp_path / "g", garbage)).reason


def test_load_not_ed25519(tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    error = key_error(write_private(tmp_path / "ec.key", b"# approver: a\n" + pem))
    assert "not Ed25519" in error.reason


def test_load_encrypted_key(tmp_path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    error = key_error(write_private(tmp_path / "enc.key", b"# approver: a\n" + pem))
    assert "encrypted" in error.reason and "openssl" in error.fix


def test_load_key_without_approver(tmp_path: Path) -> None:
    path = write_private(tmp_path / "anon.key", ALICE.private_key_pem())
    error = key_error(path)
    assert "does not name its approver" in error.reason
    assert "# approver:" in error.fix
    write_private(path, b"# approver: alice@example.com\n" + ALICE.private_key_pem())
    assert load_identity(path).public_key == ALICE.public_key


def test_load_key_whose_header_names_another_key(tmp_path: Path) -> None:
    _, path = generate_identity("alice@example.com", tmp_path)
    text = path.read_text().replace("# public_key: ", f"# public_key: {BOB.public_key}#", 1)
    error = key_error(write_private(path, text.encode()))
    assert "header says public_key" in error.reason


def test_key_file_error_pickles() -> None:
    error = KeyFileError("bad", path="/k", fix="do this")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, copy.path, copy.fix, str(copy)) == ("bad", "/k", "do this", str(error))


# --------------------------------------------------------------------------------------------
# Digests


def test_action_digest() -> None:
    assert DIGEST.startswith("sha256:") and len(DIGEST) == len("sha256:") + 64
    assert action_digest("wire_transfer", {"to": "ACME", "amount": 50000}) == DIGEST
    assert action_digest("wire_transfer", {"to": "ACME", "amount": 50000.0}) == DIGEST
    assert action_digest("wire_transfer", {"to": "ACME", "amount": 50001}) != DIGEST
    assert action_digest("wire_transfer", {"to": "ACME", "amount": "50000"}) != DIGEST
    assert action_digest("wire_transfers", {"to": "ACME", "amount": 50000}) != DIGEST
    assert action_digest("a", {"x": True}) != action_digest("a", {"x": 1})
    nested: dict[str, JsonValue] = {"lines": [{"sku": "é", "qty": 1.5}], "note": None}
    assert action_digest("a", nested) == action_digest("a", nested)


def test_action_digest_rejects_non_json() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        action_digest("a", {"x": float("nan")})
    with pytest.raises(TypeError, match="keys must be text"):
        action_digest("a", {"x": {1: "y"}})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="JSON values"):
        action_digest("a", {"x": object()})  # type: ignore[dict-item]


# --------------------------------------------------------------------------------------------
# Signing and verification


def test_sign_and_verify() -> None:
    decision = signed()
    assert decision.approver == ALICE.approver and decision.key_id == ALICE.key_id
    assert verify_signature(decision, ALICE.public_key)
    assert not verify_signature(decision, BOB.public_key)


def test_signing_bytes_format() -> None:
    decision = signed(signed_at=datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))))
    assert decision.signed_at == WHEN and decision.signed_at.tzinfo == UTC
    assert (
        decision.signing_bytes()
        == (
            '{"approval_id":"apr_1","approver":"alice@example.com","comment":"ok for Q1",'
            f'"decision":"approved","digest":"{DIGEST}","key_id":"{ALICE.key_id}",'
            '"nonce":"nonce-1","run_id":"transfer-42","signed_at":"2025-03-01T12:00:00.000000Z",'
            '"workflow_run_id":"run-1"}'
        ).encode()
    )
    assert verify_signature(decision, ALICE.public_key)


def test_json_round_trip_keeps_the_signature_valid() -> None:
    decision = signed(comment="ça va 💸", signed_at=WHEN + timedelta(microseconds=123))
    copy = SignedDecision.model_validate_json(decision.model_dump_json())
    assert copy == decision
    assert verify_signature(copy, ALICE.public_key)


def test_sign_defaults_to_now() -> None:
    before = datetime.now(UTC)
    decision = ALICE.sign(
        approval_id="a",
        run_id="r",
        workflow_run_id="run-1",
        nonce="n",
        digest=DIGEST,
        decision="rejected",
    )
    assert before <= decision.signed_at <= datetime.now(UTC)
    assert decision.comment == ""
    assert verify_signature(decision, ALICE.public_key)


def test_naive_signed_at_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        signed(signed_at=datetime(2025, 3, 1, 12, 0))  # noqa: DTZ001


TAMPERED = {
    "approval_id": "apr_2",
    "run_id": "transfer-43",
    "digest": action_digest("wire_transfer", {"amount": 60000, "to": "ACME"}),
    "decision": "rejected",
    "approver": "bob@example.com",
    "comment": "ok for Q2",
    "signed_at": WHEN + timedelta(microseconds=1),
    "key_id": BOB.key_id,
    "workflow_run_id": "run-2",
    "nonce": "nonce-2",
}


@pytest.mark.parametrize("field", sorted(TAMPERED))
def test_tampering_any_field_breaks_the_signature(field: str) -> None:
    decision = signed()
    tampered = decision.model_copy(update={field: TAMPERED[field]})
    assert getattr(tampered, field) != getattr(decision, field)
    assert not verify_signature(tampered, ALICE.public_key)


@pytest.mark.parametrize(
    "public_key",
    [
        "",
        "ed25519:",
        "ed25519:AAAA",
        "rsa:" + "A" * 43,
        ALICE.public_key + "=",
        ALICE.public_key[:-1] + "!",
        ALICE.public_key.removeprefix("ed25519:"),
        "ed25519:" + "A" * 44,
    ],
)
def test_malformed_public_key_is_false(public_key: str) -> None:
    assert not verify_signature(signed(), public_key)


def test_malformed_signature_is_false() -> None:
    decision = signed()
    text = decision.signature
    assert len(text) == 86
    last = text[-1]
    # 64 bytes use 512 of the 516 bits of 86 characters: flipping an unused low bit of the
    # last character gives a different text for the same bytes, which must not verify.
    sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    flipped = sibling[sibling.index(last) ^ 1]
    for signature in ("", "not base64!", text + "==", text[:-2], text + "AA", text[:-1] + flipped):
        assert not verify_signature(
            decision.model_copy(update={"signature": signature}), ALICE.public_key
        )


def test_signature_by_another_key_under_the_right_name_is_false() -> None:
    forged = signed(BOB).model_copy(update={"approver": ALICE.approver, "key_id": ALICE.key_id})
    assert not verify_signature(forged, ALICE.public_key)
    rekeyed = signed(BOB)
    assert not verify_signature(rekeyed, ALICE.public_key)


# --------------------------------------------------------------------------------------------
# Property: any single-field change breaks the signature

_FIELDS = ("approval_id", "run_id", "digest", "approver", "comment", "key_id", "signature")


@given(
    field=st.sampled_from((*_FIELDS, "decision", "signed_at")),
    text=st.text(max_size=40),
    offset=st.integers(min_value=-(10**9), max_value=10**9).filter(bool),
)
def test_any_single_field_change_fails_verification(field: str, text: str, offset: int) -> None:
    decision = signed()
    value: object
    if field == "decision":
        value = "rejected"
    elif field == "signed_at":
        value = WHEN + timedelta(microseconds=offset)
    else:
        value = text
        if value == getattr(decision, field):
            value += "x"
    changed = SignedDecision.model_validate({**decision.model_dump(), field: value})
    assert not verify_signature(changed, ALICE.public_key)
    assert verify_signature(decision, ALICE.public_key)
