"""The Ed25519 key that signs audit export bundles (client side: reads and writes a file).

The key lives outside the repository: ``$JAMJET_AUDIT_KEY`` when set, else
``~/.jamjet/audit-signing.key``, created with mode 0600 on first use. Rotation is a new file:
every bundle carries the public key that signed it, so old bundles still verify; pin a key
with ``verify_bundle(..., trusted_fingerprint=...)``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import JamJetError

__all__ = [
    "KEY_ENV",
    "SigningKeyError",
    "default_key_path",
    "fingerprint",
    "load_or_create_signing_key",
    "load_public_key",
    "public_key_pem",
]

KEY_ENV = "JAMJET_AUDIT_KEY"
"""Environment variable naming the signing key file."""


class SigningKeyError(JamJetError):
    """The audit signing key file is unreadable or not an Ed25519 private key.

    Attributes:
        path: The key file.
        reason: What is wrong.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"audit signing key {path}: {reason}; fix or remove the file (a new key is "
            f"created on first use), or point ${KEY_ENV} at another key"
        )


def default_key_path() -> Path:
    """Where the signing key lives: ``$JAMJET_AUDIT_KEY`` or ``~/.jamjet/audit-signing.key``."""
    configured = os.environ.get(KEY_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".jamjet" / "audit-signing.key"


def load_or_create_signing_key(path: Path | None = None) -> Ed25519PrivateKey:
    """Load the bundle signing key, creating it (mode 0600) if the file does not exist.

    Args:
        path: The key file (PEM, PKCS#8, unencrypted); ``default_key_path()`` when None.

    Returns:
        The Ed25519 private key.

    Raises:
        SigningKeyError: The file exists but is not an Ed25519 private key, or cannot be
            read or created.
    """
    path = path if path is not None else default_key_path()
    if path.exists():
        try:
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise SigningKeyError(path, f"cannot be read as a PEM private key ({exc})") from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise SigningKeyError(path, f"holds a {type(loaded).__name__}, not an Ed25519 key")
        return loaded
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # O_EXCL: two processes creating the key at once must not overwrite each other's.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_signing_key(path)
    except OSError as exc:
        raise SigningKeyError(path, f"cannot be created ({exc})") from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return key


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key as PEM text (SubjectPublicKeyInfo).

    Args:
        key: A private key (its public half is taken) or a public key.

    Returns:
        The PEM text.
    """
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key(pem: str) -> Ed25519PublicKey:
    """Parse a PEM public key, insisting on Ed25519.

    Args:
        pem: The PEM text.

    Returns:
        The public key.

    Raises:
        ValueError: It is not an Ed25519 public key.
    """
    loaded = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError(f"not an Ed25519 public key but a {type(loaded).__name__}")
    return loaded


def fingerprint(public_key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The key's fingerprint: ``"sha256:"`` + hex sha256 of the raw 32 public key bytes.

    Args:
        public_key: The public key (a private key is reduced to its public half).

    Returns:
        The fingerprint.
    """
    public = public_key.public_key() if isinstance(public_key, Ed25519PrivateKey) else public_key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()
