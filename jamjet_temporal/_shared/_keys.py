"""Ed25519 keys: the one format approver keys and audit signing keys are written and read in.

- **Private key file**: the key as unencrypted PKCS#8 PEM (``-----BEGIN PRIVATE KEY-----``),
  mode 0600, written atomically (a reader never sees half a key; an existing file is replaced
  only when asked). Lines ``# name: value`` may precede the PEM block (an approver key names
  its approver there); ``openssl pkey -in FILE`` and every PEM reader skip them.
- **Public key text**: ``"ed25519:"`` + base64url of the raw 32 bytes, no padding (43
  characters), e.g. ``ed25519:UlwSSqBRKnbVNlRNBsbAZPtkXOEnyytYk9BhiX40Eck``. One line, one text
  per key: what approvals configs register and trusted-keys files may list.
- **Fingerprint**: ``"sha256:"`` + 64 hex digits of SHA-256 over the raw 32 public key bytes,
  what ``jamjet audit key`` prints and verifiers pin.

Reading also accepts a PEM SubjectPublicKeyInfo public key (``-----BEGIN PUBLIC KEY-----``),
the form ``jamjet audit key`` prints for trusted-keys files and audit bundles carry; its
fingerprint is the same. :func:`public_key_pem` writes it for those two places only.

Parsing and fingerprints are pure (safe in workflow code); :func:`read_private_key` and
:func:`write_private_key` do file I/O (client and activity side only).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from temporalio import workflow

# cryptography's Rust core cannot be imported a second time: Temporal's sandbox must pass it
# through, also on a worker without JamJetPlugin that loads a workflow module importing us.
with workflow.unsafe.imports_passed_through():
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "FINGERPRINT_PREFIX",
    "PUBLIC_KEY_PREFIX",
    "KeyFileProblem",
    "KeyFormatError",
    "PrivateKeyFile",
    "PrivateKeyFileError",
    "b64url_decode",
    "b64url_encode",
    "fingerprint",
    "is_fingerprint",
    "parse_private_key",
    "parse_public_key",
    "private_key_pem",
    "public_key_pem",
    "public_key_text",
    "raw_public_key",
    "read_private_key",
    "write_private_key",
]

PUBLIC_KEY_PREFIX: Final = "ed25519:"
"""What a public key's text starts with."""

FINGERPRINT_PREFIX: Final = "sha256:"
"""What a key's fingerprint starts with."""

PEM_BEGIN: Final = "-----BEGIN"
PUBLIC_PEM_BEGIN: Final = "-----BEGIN PUBLIC KEY-----"
PUBLIC_PEM_END: Final = "-----END PUBLIC KEY-----"

_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_FINGERPRINT: Final = re.compile(r"sha256:[0-9a-f]{64}")
_HEADER_NAME: Final = re.compile(r"[A-Za-z0-9_.-]+")


class KeyFormatError(ValueError):
    """A public key text is not an Ed25519 public key; the message says what was expected."""


KeyFileProblem = Literal[
    "missing",
    "directory",
    "exposed",
    "permission",
    "unreadable",
    "binary",
    "no_pem",
    "encrypted",
    "not_a_key",
    "not_ed25519",
    "mismatch",
]
"""What is wrong with a private key file (:attr:`PrivateKeyFileError.problem`)."""

_NOT_KEY_FILES: Final[frozenset[KeyFileProblem]] = frozenset({"binary", "no_pem", "not_a_key"})
"""Problems that mean the file holds no private key at all (said before its permissions)."""


class PrivateKeyFileError(Exception):
    """A private key file cannot be read.

    Callers turn it into their own error (``KeyFileError`` for approver keys,
    ``SigningKeyError`` for the audit signing key), with a fix that suits them.

    Attributes:
        path: The file.
        problem: What kind of problem it is.
        reason: What is wrong, as a sentence.
        fix: What to do, when it does not depend on what the key is for (else None).
    """

    def __init__(
        self, path: str, problem: KeyFileProblem, reason: str, fix: str | None = None
    ) -> None:
        self.path = path
        self.problem: KeyFileProblem = problem
        self.reason = reason
        self.fix = fix
        super().__init__(f"{path}: {reason}" + (f" (fix: {fix})" if fix else ""))


# -- encodings -----------------------------------------------------------------------------


def b64url_encode(raw: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes | None:
    """Strict base64url without padding: one text for one byte string, else ``None``."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    # Unused low bits in the last character would let two texts carry the same bytes.
    return raw if b64url_encode(raw) == text else None


# -- public keys (pure) --------------------------------------------------------------------


def raw_public_key(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    """The raw 32 bytes of a public key (a private key is reduced to its public half)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_text(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The public key's text: ``"ed25519:"`` + base64url(raw 32 bytes), no padding."""
    return PUBLIC_KEY_PREFIX + b64url_encode(raw_public_key(key))


def fingerprint(key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> str:
    """The key's fingerprint: ``"sha256:"`` + hex SHA-256 of the raw 32 public key bytes.

    Args:
        key: A public key, a private key (its public half is taken) or the raw 32 bytes.

    Returns:
        The fingerprint, lower case.
    """
    raw = key if isinstance(key, bytes) else raw_public_key(key)
    return FINGERPRINT_PREFIX + hashlib.sha256(raw).hexdigest()


def is_fingerprint(text: str) -> bool:
    """Whether ``text`` is a fingerprint exactly as :func:`fingerprint` writes it."""
    return isinstance(text, str) and _FINGERPRINT.fullmatch(text) is not None


def parse_public_key(text: str, *, pem: bool = True) -> Ed25519PublicKey:
    """The Ed25519 public key a text holds.

    Args:
        text: ``"ed25519:<base64url>"``, exactly (no surrounding whitespace: one text per
            key), or, when ``pem``, text holding a PEM SubjectPublicKeyInfo block.
        pem: Also accept PEM. Where keys are compared as text (an approvals config), pass
            False: the ``ed25519:`` text is the only one for a key.

    Returns:
        The public key.

    Raises:
        KeyFormatError: The text is neither form, or not an Ed25519 key.
    """
    if not isinstance(text, str):
        raise KeyFormatError(f"a public key is text, got {type(text).__name__}")
    if text.startswith(PUBLIC_KEY_PREFIX):
        raw = b64url_decode(text[len(PUBLIC_KEY_PREFIX) :])
        if raw is None or len(raw) != 32:
            raise KeyFormatError(
                f"not an Ed25519 public key: {_shorten(text)!r} should be 'ed25519:' and "
                "43 base64url characters (the raw 32-byte key, no padding)"
            )
        return Ed25519PublicKey.from_public_bytes(raw)
    stripped = text.strip()
    if pem and PEM_BEGIN in stripped:
        try:
            # Text before the PEM block (e.g. the fingerprint line `jamjet audit key` prints)
            # is skipped, as PEM readers do.
            loaded = serialization.load_pem_public_key(stripped.encode("ascii"))
        except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError(f"not a readable PEM public key ({exc})") from None
        if not isinstance(loaded, Ed25519PublicKey):
            raise KeyFormatError(
                f"not an Ed25519 public key but a {type(loaded).__name__.removeprefix('_')}"
            )
        return loaded
    expected = "'ed25519:<base64url>'" + (" or a PEM public key" if pem else "")
    raise KeyFormatError(f"not an Ed25519 public key: {_shorten(stripped)!r} is not {expected}")


def public_key_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The public key as PEM SubjectPublicKeyInfo text (for trusted-keys files and bundles)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _shorten(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


# -- private key files (I/O) ---------------------------------------------------------------


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class PrivateKeyFile:
    """A private key file's contents.

    Attributes:
        key: The Ed25519 private key.
        headers: The ``# name: value`` lines before the PEM block.
    """

    key: Ed25519PrivateKey
    headers: Mapping[str, str] = field(default_factory=dict)


def write_private_key(
    path: Path,
    key: Ed25519PrivateKey,
    *,
    comment: str = "",
    headers: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> None:
    """Write a private key file (format in the module docstring), mode 0600, atomically.

    The content goes to a temporary file in the same directory first; that file then takes
    the name, so a reader sees no file or the whole key. Without ``overwrite`` taking the name
    fails when the file exists, even against a concurrent writer. The directory is created
    (mode 0700) if needed.

    Args:
        path: The key file.
        key: The key.
        comment: A first ``#`` line, e.g. what the key is for (one line).
        headers: ``# name: value`` lines, in order (names: letters, digits, ``_.-``).
        overwrite: Replace an existing file.

    Raises:
        FileExistsError: The file exists and ``overwrite`` is False.
        OSError: The directory or file cannot be written.
        ValueError: A comment or header spans lines, or a header name is malformed.
    """
    lines = [f"# {comment}\n"] if comment else []
    for name, value in (headers or {}).items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"a key file header name must be a word, got {name!r}")
        lines.append(f"# {name}: {value}\n")
    if any(line.count("\n") != 1 or "\r" in line for line in lines):
        raise ValueError("a key file comment or header must be one line")
    content = "".join(lines).encode("utf-8") + private_key_pem(key)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), 0o600)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            _link_exclusive(temporary, path, content)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _link_exclusive(temporary: str, path: Path, content: bytes) -> None:
    """Give ``temporary``'s content the name ``path`` unless it exists (atomic, exclusive)."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise
    except OSError:
        # A file system without hard links: exclusive create, then write (not atomic against
        # a concurrent reader, still never overwrites).
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)


def read_private_key(path: str | os.PathLike[str], *, kind: str = "key") -> PrivateKeyFile:
    """Read a private key file (format in the module docstring).

    Args:
        path: The file.
        kind: What the key is, for messages (e.g. ``"approver key"``).

    Returns:
        The key and the file's header lines.

    Raises:
        PrivateKeyFileError: The file is missing, a directory, unreadable, readable or
            writable by other users (POSIX), not PEM, encrypted, not an Ed25519 private key,
            or a ``# public_key:`` / ``# fingerprint:`` line names another key.
    """
    file = os.fspath(path)
    try:
        info = os.stat(file)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        with open(file, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise PrivateKeyFileError(file, "missing", f"{kind} file not found") from None
    except IsADirectoryError:
        raise PrivateKeyFileError(
            file, "directory", f"this is a directory, not a {kind} file", "pass the key file"
        ) from None
    except PermissionError:
        raise PrivateKeyFileError(
            file,
            "permission",
            f"permission denied reading the {kind} file",
            "run as the user who owns the key (the file must be mode 600)",
        ) from None
    except OSError as exc:
        raise PrivateKeyFileError(
            file,
            "unreadable",
            f"cannot read the {kind} file: {exc.strerror or exc}",
            "check that the file exists and is readable",
        ) from None
    # Whether the file holds a key at all comes first: a config given by mistake is named
    # as not a key, not asked to be chmod-ed. Any key file readable by others is refused.
    try:
        read: PrivateKeyFile | None = parse_private_key(data, file)
        problem: PrivateKeyFileError | None = None
    except PrivateKeyFileError as err:
        if err.problem in _NOT_KEY_FILES:
            raise
        read, problem = None, err
    mode = stat.S_IMODE(info.st_mode)
    if os.name == "posix" and mode & 0o077:
        raise PrivateKeyFileError(
            file,
            "exposed",
            f"other users may read or change the private key (mode {mode:03o})",
            f"chmod 600 {file}; if others could have read it, make a new key and stop "
            "trusting this one",
        )
    if problem is not None:
        raise problem
    assert read is not None
    return read


def parse_private_key(data: bytes, file: str = "<key>") -> PrivateKeyFile:
    """Parse a private key file's bytes (see :func:`read_private_key`).

    Args:
        data: The file's content.
        file: The file's name, for messages.

    Returns:
        The key and the header lines.

    Raises:
        PrivateKeyFileError: Not PEM, encrypted, not an Ed25519 private key, or a
            ``# public_key:`` / ``# fingerprint:`` line names another key.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PrivateKeyFileError(file, "binary", "not a PEM key file (binary data)") from None
    start = text.find(PEM_BEGIN)
    if start < 0:
        raise PrivateKeyFileError(file, "no_pem", "no PEM private key in the file")
    headers: dict[str, str] = {}
    for line in text[:start].splitlines():
        name, colon, value = line.lstrip("#").partition(":")
        if line.startswith("#") and colon:
            headers[name.strip()] = value.strip()
    try:
        key = serialization.load_pem_private_key(text[start:].encode("utf-8"), password=None)
    except TypeError:
        raise PrivateKeyFileError(
            file,
            "encrypted",
            "the private key is encrypted; keys are unencrypted PKCS#8 protected by file "
            "permissions",
            "decrypt it (openssl pkey -in old.key -out new.key) and chmod 600 the result",
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise PrivateKeyFileError(
            file, "not_a_key", "the PEM block is not a readable private key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise PrivateKeyFileError(
            file, "not_ed25519", f"the key is {type(key).__name__.removeprefix('_')}, not Ed25519"
        )
    for name, expected in (("public_key", public_key_text(key)), ("fingerprint", fingerprint(key))):
        written = headers.get(name)
        if written is not None and written != expected:
            raise PrivateKeyFileError(
                file,
                "mismatch",
                f"the header says {name} {written} but the key is {expected}",
                "the header was edited or belongs to another key: correct or remove it",
            )
    return PrivateKeyFile(key, headers)
