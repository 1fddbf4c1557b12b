"""The Ed25519 key that signs audit bundles, and the keys a verifier trusts (client side).

The signing key lives outside the repository: ``$JAMJET_AUDIT_KEY`` when set, else
``~/.jamjet/audit-signing.key``, created with mode 0600 on first use and refused when other
users may read it. Rotation is a new file: every bundle carries the public key that signed it,
so old bundles still verify, but a signer is trusted only when pinned:
``verify_bundle(..., trusted_keys=[fingerprint])``, or for ``jamjet audit verify`` the
fingerprints ``load_trusted_keys`` reads from ``--trusted-key``, ``--trusted-keys`` files or
``$JAMJET_TRUSTED_KEYS``.

A trusted-keys file holds one key per entry: a fingerprint line (``sha256:`` and 64 hex
digits, as ``jamjet audit key`` prints it) or a PEM public key block; blank lines and text
after ``#`` are ignored.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import JamJetError

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
"""Environment variable listing trusted signers: comma-separated fingerprints and paths of
trusted-keys files, read when no trusted key is given on the command line."""

_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{64}")
_PEM_BEGIN = "-----BEGIN PUBLIC KEY-----"
_PEM_END = "-----END PUBLIC KEY-----"


class SigningKeyError(JamJetError):
    """The audit signing key file is unreadable, not private, or not an Ed25519 private key.

    Attributes:
        path: The key file.
        reason: What is wrong.
        fix: What to do about it.
    """

    def __init__(self, path: Path, reason: str, fix: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.fix = fix or (
            f"fix or remove the file (a new key is created on first use), or point ${KEY_ENV} "
            "at another key"
        )
        super().__init__(f"audit signing key {path}: {reason}; {self.fix}")


class TrustedKeyError(JamJetError):
    """A trusted key (a fingerprint, a PEM public key file, a trusted-keys file) is unusable.

    Attributes:
        entry: The fingerprint or file as given (``file:line`` for a line of a file).
        reason: What is wrong.
    """

    def __init__(self, entry: str, reason: str) -> None:
        self.entry = entry
        self.reason = reason
        super().__init__(
            f"trusted key {entry}: {reason}; give a fingerprint as `jamjet audit key` prints "
            "it (sha256: and 64 hex digits), a PEM public key file or a trusted-keys file"
        )


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
        path: The key file (PEM, PKCS#8, unencrypted); ``default_key_path()`` when None.

    Returns:
        The Ed25519 private key.

    Raises:
        SigningKeyError: The file exists but other users may read it or it is not an Ed25519
            private key, or it cannot be read or created.
    """
    path = path if path is not None else default_key_path()
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if os.name == "posix" and mode & 0o077:
            raise SigningKeyError(
                path,
                f"other users may read or change it (mode {mode:03o})",
                fix=f"chmod 600 {path}; if others could have read it, rotate: move it away (a "
                "new key is created on first use) and stop trusting its fingerprint",
            )
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


def _checked_fingerprint(text: str, entry: str) -> str:
    value = text.strip().lower()
    if not _FINGERPRINT.fullmatch(value):
        raise TrustedKeyError(entry, f"{text.strip()!r} is not a key fingerprint")
    return value


def _pem_fingerprint(pem: str, entry: str) -> str:
    try:
        return fingerprint(load_public_key(pem))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise TrustedKeyError(entry, f"not a PEM Ed25519 public key ({exc})") from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustedKeyError(str(path), f"cannot be read ({exc})") from None


def _trusted_key(value: str) -> str:
    """The fingerprint one ``--trusted-key`` value names.

    Args:
        value: A fingerprint (``sha256:...``) or the path of a PEM public key file.

    Returns:
        The fingerprint, lower case.

    Raises:
        TrustedKeyError: Not a fingerprint, or the file is unreadable or not a PEM Ed25519
            public key.
    """
    if value.strip().lower().startswith("sha256:"):
        return _checked_fingerprint(value, value)
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
            if text == _PEM_END:
                found.append(_pem_fingerprint("\n".join(pem) + "\n", f"{path}:{start}"))
                pem = None
        elif text == _PEM_BEGIN:
            pem, start = [text], number
        elif entry := text.split("#", 1)[0].strip():
            found.append(_checked_fingerprint(entry, f"{path}:{number}"))
    if pem is not None:
        raise TrustedKeyError(f"{path}:{start}", f"the PEM block has no {_PEM_END} line")
    if not found:
        raise TrustedKeyError(str(path), "lists no key")
    return found


def load_trusted_keys(*, keys: Sequence[str] = (), files: Sequence[Path] = ()) -> dict[str, str]:
    """The trusted signers and how each came to be trusted, for ``verify_bundle``.

    Keys or files given here replace ``$JAMJET_TRUSTED_KEYS``; only without them is that
    variable read (comma-separated fingerprints and trusted-keys file paths).

    Args:
        keys: ``--trusted-key`` values: fingerprints or PEM public key files.
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
            if entry.lower().startswith("sha256:"):
                how = f"pinned by {TRUSTED_KEYS_ENV}"
                trusted.setdefault(_checked_fingerprint(entry, entry), how)
            elif entry:
                how = f"listed in trusted-keys file {entry} (from {TRUSTED_KEYS_ENV})"
                for found in _read_trusted_keys(Path(entry).expanduser()):
                    trusted.setdefault(found, how)
        except TrustedKeyError as err:
            raise TrustedKeyError(f"{err.entry} (in {TRUSTED_KEYS_ENV})", err.reason) from None
    return trusted
