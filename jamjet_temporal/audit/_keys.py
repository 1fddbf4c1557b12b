"""The Ed25519 key that signs audit bundles, and the keys a verifier trusts (client side).

The signing key lives outside the repository: ``$JAMJET_AUDIT_KEY`` when set, else
``~/.jamjet/audit-signing.key``, created with mode 0600 on first use and refused when other
users may read it. Rotation is a new file: every bundle carries the public key that signed it,
so old bundles still verify, but a signer is trusted only when pinned:
``verify_bundle(..., trusted_keys=[fingerprint])``, or for ``jamjet audit verify`` the
fingerprints ``load_trusted_keys`` reads from ``--trusted-key``, ``--trusted-keys`` files or
``$JAMJET_TRUSTED_KEYS``.

Keys are in the package's one Ed25519 format (:mod:`jamjet_temporal._shared._keys`, shared
with approver keys): the signing key file is unencrypted PKCS#8 PEM, mode 0600, written
atomically (with ``#`` lines naming its public key and fingerprint); a fingerprint is
``sha256:`` + 64 hex digits of SHA-256 over the raw public key; a public key's text is
``ed25519:`` + base64url of the raw 32 bytes. So an approver's key file can sign bundles, and
an approver's registered public key can be pinned.

A trusted-keys file holds one key per entry: a fingerprint line (``sha256:`` and 64 hex
digits, as ``jamjet audit key`` prints it), a public key line (``ed25519:...``) or a PEM public
key block; blank lines and text after ``#`` are ignored.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from jamjet_temporal._shared import _keys as shared
from jamjet_temporal._shared._keys import fingerprint, public_key_pem
from jamjet_temporal.errors import SigningKeyError, TrustedKeyError

__all__ = [
    "KEY_ENV",
    "TRUSTED_KEYS_ENV",
    "SigningKeyError",
    "TrustedKeyError",
    "checkpoint_marks_path",
    "default_key_path",
    "fingerprint",
    "load_or_create_signing_key",
    "load_public_key",
    "load_trusted_keys",
    "public_key_pem",
]

KEY_ENV = "JAMJET_AUDIT_KEY"
"""Environment variable naming the signing key file."""

TRUSTED_KEYS_ENV = "JAMJET_TRUSTED_KEYS"
"""Environment variable listing trusted signers: comma-separated fingerprints, public keys
(``ed25519:...``) and paths of trusted-keys files, read when no trusted key is given on the
command line."""


def default_key_path() -> Path:
    """Where the signing key lives: ``$JAMJET_AUDIT_KEY`` or ``~/.jamjet/audit-signing.key``."""
    configured = os.environ.get(KEY_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".jamjet" / "audit-signing.key"


def checkpoint_marks_path(key_path: Path | None = None) -> Path:
    """Where a signer keeps the newest checkpoint its key signed per store: beside the key.

    Args:
        key_path: The signing key file; ``default_key_path()`` when None.

    Returns:
        ``<key path>.checkpoints.json`` (see ``CheckpointSigner``).
    """
    path = key_path if key_path is not None else default_key_path()
    return path.with_name(path.name + ".checkpoints.json")


def load_or_create_signing_key(path: Path | None = None) -> Ed25519PrivateKey:
    """Load the bundle signing key, creating it (mode 0600) if the file does not exist.

    Args:
        path: The key file (PEM, PKCS#8, unencrypted; ``#`` lines before the PEM block are
            allowed, so an approver's key file works too); ``default_key_path()`` when None.

    Returns:
        The Ed25519 private key.

    Raises:
        SigningKeyError: The file exists but other users may read it or it is not an Ed25519
            private key, or it cannot be read or created.
    """
    path = path if path is not None else default_key_path()
    try:
        return shared.read_private_key(path, kind="signing key").key
    except shared.PrivateKeyFileError as err:
        if err.problem != "missing":
            raise _signing_key_error(path, err) from None
    key = Ed25519PrivateKey.generate()
    try:
        # Exclusive and atomic: two processes creating the key at once keep one of them, and
        # neither reads the other's half-written file.
        shared.write_private_key(
            path,
            key,
            comment="JamJet audit signing key: keep it private (mode 600), never commit or "
            "share it",
            headers={"public_key": shared.public_key_text(key), "fingerprint": fingerprint(key)},
        )
    except FileExistsError:
        return load_or_create_signing_key(path)
    except (OSError, ValueError) as exc:
        raise SigningKeyError(path, f"cannot be created ({exc})") from None
    return key


def _signing_key_error(path: Path, err: shared.PrivateKeyFileError) -> SigningKeyError:
    if err.problem == "exposed":
        return SigningKeyError(
            path,
            err.reason,
            fix=f"chmod 600 {path}; if others could have read it, rotate: move it away (a "
            "new key is created on first use) and stop trusting its fingerprint",
        )
    if err.problem == "not_ed25519":
        return SigningKeyError(path, err.reason)
    if err.problem in ("binary", "no_pem", "not_a_key", "encrypted"):
        return SigningKeyError(path, f"cannot be read as a PEM private key ({err.reason})", err.fix)
    return SigningKeyError(path, err.reason, err.fix)


def load_public_key(text: str) -> Ed25519PublicKey:
    """Parse a public key: ``ed25519:<base64url>`` or PEM, insisting on Ed25519.

    Args:
        text: The key's text.

    Returns:
        The public key.

    Raises:
        ValueError: It is not an Ed25519 public key.
    """
    return shared.parse_public_key(text)


def _checked_fingerprint(text: str, entry: str) -> str:
    value = text.strip().lower()
    if not shared.is_fingerprint(value):
        raise TrustedKeyError(entry, f"{text.strip()!r} is not a key fingerprint")
    return value


def _text_fingerprint(text: str, entry: str) -> str:
    try:
        return fingerprint(load_public_key(text))
    except ValueError as exc:
        raise TrustedKeyError(entry, str(exc)) from None


def _pem_fingerprint(pem: str, entry: str) -> str:
    try:
        return fingerprint(load_public_key(pem))
    except ValueError as exc:
        raise TrustedKeyError(entry, f"not a PEM Ed25519 public key ({exc})") from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustedKeyError(str(path), f"cannot be read ({exc})") from None


def _trusted_key(value: str) -> str:
    """The fingerprint one ``--trusted-key`` value names.

    Args:
        value: A fingerprint (``sha256:...``), a public key (``ed25519:...``) or the path of a
            PEM public key file.

    Returns:
        The fingerprint, lower case.

    Raises:
        TrustedKeyError: Not a fingerprint or public key, or the file is unreadable or not a
            PEM Ed25519 public key.
    """
    if value.strip().lower().startswith(shared.FINGERPRINT_PREFIX):
        return _checked_fingerprint(value, value)
    if value.strip().startswith(shared.PUBLIC_KEY_PREFIX):
        return _text_fingerprint(value.strip(), value)
    return _pem_fingerprint(_read(Path(value)), value)


def _read_trusted_keys(path: Path) -> list[str]:
    """The fingerprints a trusted-keys file lists (format in the module docstring).

    Args:
        path: The file.

    Returns:
        The fingerprints, lower case, in file order.

    Raises:
        TrustedKeyError: The file is unreadable, lists no key, or an entry is malformed
            (named by line).
    """
    found: list[str] = []
    pem: list[str] | None = None
    start = 0
    for number, line in enumerate(_read(path).splitlines(), 1):
        text = line.strip()
        if pem is not None:
            pem.append(text)
            if text == shared.PUBLIC_PEM_END:
                found.append(_pem_fingerprint("\n".join(pem) + "\n", f"{path}:{start}"))
                pem = None
        elif text == shared.PUBLIC_PEM_BEGIN:
            pem, start = [text], number
        elif (entry := text.split("#", 1)[0].strip()).startswith(shared.PUBLIC_KEY_PREFIX):
            found.append(_text_fingerprint(entry, f"{path}:{number}"))
        elif entry:
            found.append(_checked_fingerprint(entry, f"{path}:{number}"))
    if pem is not None:
        raise TrustedKeyError(
            f"{path}:{start}", f"the PEM block has no {shared.PUBLIC_PEM_END} line"
        )
    if not found:
        raise TrustedKeyError(str(path), "lists no key")
    return found


def load_trusted_keys(*, keys: Sequence[str] = (), files: Sequence[Path] = ()) -> dict[str, str]:
    """The trusted signers and how each came to be trusted, for ``verify_bundle``.

    Keys or files given here replace ``$JAMJET_TRUSTED_KEYS``; only without them is that
    variable read (comma-separated fingerprints, public keys and trusted-keys file paths).

    Args:
        keys: ``--trusted-key`` values: fingerprints, public keys (``ed25519:...``) or PEM
            public key files.
        files: Trusted-keys files.

    Returns:
        ``{fingerprint: how it is trusted}`` (e.g. ``"pinned by --trusted-key"``); empty when
        no trusted key is configured.

    Raises:
        TrustedKeyError: An entry is not a fingerprint, or a file is unreadable or malformed.
    """
    trusted: dict[str, str] = {}
    for value in keys:
        trusted.setdefault(_trusted_key(value), "pinned by --trusted-key")
    for path in files:
        for found in _read_trusted_keys(path):
            trusted.setdefault(found, f"listed in trusted-keys file {path}")
    if keys or files:
        return trusted
    for listed in os.environ.get(TRUSTED_KEYS_ENV, "").split(","):
        entry = listed.strip()
        try:
            if entry.lower().startswith(shared.FINGERPRINT_PREFIX):
                how = f"pinned by {TRUSTED_KEYS_ENV}"
                trusted.setdefault(_checked_fingerprint(entry, entry), how)
            elif entry.startswith(shared.PUBLIC_KEY_PREFIX):
                how = f"pinned by {TRUSTED_KEYS_ENV}"
                trusted.setdefault(_text_fingerprint(entry, entry), how)
            elif entry:
                how = f"listed in trusted-keys file {entry} (from {TRUSTED_KEYS_ENV})"
                for found in _read_trusted_keys(Path(entry).expanduser()):
                    trusted.setdefault(found, how)
        except TrustedKeyError as err:
            raise TrustedKeyError(f"{err.entry} (in {TRUSTED_KEYS_ENV})", err.reason) from None
    return trusted
