"""Approver identity: Ed25519 keys, signed decisions and their verification.

Two sides of the determinism boundary live here, in separate functions:

- Client side (an approver's machine, the CLI, the approvals page): :func:`generate_identity`
  and :func:`load_identity` read and write private key files; :meth:`SigningIdentity.sign`
  signs a decision. These do I/O and read the clock; never call them from workflow code.
- Workflow side (pure, deterministic): :class:`SignedDecision`, :func:`action_digest`,
  :func:`verify_signature`, :func:`public_key_id`. No I/O, no clock, no module state.

What is signed is :meth:`SignedDecision.signing_bytes`: the UTF-8 bytes of a JSON object with
every field but ``signature``, keys sorted, no whitespace, non-ASCII characters written as
themselves, and ``signed_at`` written as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC). Any client that
produces these bytes can sign decisions. A decision names the Temporal run (``workflow_run_id``)
and the request's ``nonce``, so one signature approves one request of one run, never another run
started later with the same workflow id and arguments.

A run's user is proven the same way: :class:`RunUser` is signed by a client the approvals
config trusts (``clients:``, or an approver acting for themselves) for one workflow id and type,
at one time; :func:`sign_run_user` makes it (client side).

Keys are in the package's one Ed25519 format (:mod:`jamjet_temporal._shared._keys`, shared
with the audit signing key): a private key file is unencrypted PKCS#8 PEM, mode 0600, with
``#`` header lines naming the approver; a public key is written
``"ed25519:" + base64url(raw 32 bytes, no padding)``; its fingerprint is ``"sha256:" + hex
sha256(raw 32 bytes)``. A decision's ``key_id`` is ``"ed25519:"`` + the first 16 hex digits of
that fingerprint (part of what is signed, so it keeps the form recorded decisions carry).
Digests and signed bytes are :func:`jamjet_temporal._shared._canonical.canonical_json`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, JsonValue, field_validator
from temporalio import workflow

# Decisions are verified in workflow code. cryptography's Rust core cannot be imported a second
# time, so Temporal's sandbox must pass it through, also on a worker without JamJetPlugin that
# loads a workflow module importing us.
with workflow.unsafe.imports_passed_through():
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

from jamjet_temporal._shared import _keys as keys
from jamjet_temporal._shared._canonical import canonical_json, digest
from jamjet_temporal.errors import KeyFileError

__all__ = [
    "DecisionValue",
    "KeyFileError",
    "RunUser",
    "SignedDecision",
    "SigningIdentity",
    "action_digest",
    "default_keys_dir",
    "generate_identity",
    "key_file_name",
    "load_identity",
    "parse_public_key",
    "public_key_id",
    "sign_run_user",
    "verify_run_user_signature",
    "verify_signature",
]

DecisionValue = Literal["approved", "rejected"]
"""What an approver decided."""

KEY_PREFIX: Final = keys.PUBLIC_KEY_PREFIX
KEYS_DIR_ENV: Final = "JAMJET_KEYS_DIR"
_UNSAFE_FILE_CHARS: Final = re.compile(r"[^A-Za-z0-9._@+-]")
# Floats with an integral value in this range are written as integers, so that 50000 and
# 50000.0 (or a JavaScript client's 50000) give the same digest.
_EXACT_INTEGERS: Final = 2.0**53


def _canonical_json(value: object) -> bytes:
    return canonical_json(value).encode("utf-8")


def _format_utc(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _normalise(value: object) -> object:
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"a digest cannot cover the non-finite number {value!r}")
        if value.is_integer() and abs(value) < _EXACT_INTEGERS:
            return int(value)
        return value
    if isinstance(value, Mapping):
        normalised: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"argument keys must be text, got {key!r}")
            normalised[key] = _normalise(item)
        return normalised
    if isinstance(value, list | tuple):
        return [_normalise(item) for item in value]
    raise TypeError(f"arguments must be JSON values, got {type(value).__name__}")


def action_digest(action: str, args: Mapping[str, JsonValue]) -> str:
    """The digest an approver signs: what action, with exactly which arguments.

    Pure and deterministic. The digest covers the canonical JSON of
    ``{"action": action, "args": args}`` (keys sorted, no whitespace, UTF-8); a float with an
    integral value below 2**53 is written as an integer, so ``50000`` and ``50000.0`` are the
    same amount.

    Args:
        action: The action's name, e.g. ``"wire_transfer"``.
        args: Its arguments (JSON values).

    Returns:
        ``"sha256:"`` and 64 hex digits.

    Raises:
        TypeError: An argument is not a JSON value, or a key is not text.
        ValueError: An argument is NaN or infinite.
    """
    return digest({"action": action, "args": _normalise(args)})


def parse_public_key(public_key: str) -> bytes | None:
    """The raw 32 bytes of an ``"ed25519:<base64url>"`` public key, or ``None`` if malformed.

    Pure; never raises. Only this one text of a key is accepted (no PEM, no surrounding
    whitespace), so that an approvals config can tell two registrations of one key apart.

    Args:
        public_key: The key as written in the approvals config.

    Returns:
        The raw key, or ``None`` when the text is not exactly one well-formed Ed25519 key.
    """
    try:
        return keys.raw_public_key(keys.parse_public_key(public_key, pem=False))
    except ValueError:
        return None


def public_key_id(public_key: str) -> str:
    """The id of a public key: ``"ed25519:"`` and 16 hex digits of its SHA-256.

    Args:
        public_key: An ``"ed25519:<base64url>"`` key.

    Returns:
        The key id that decisions signed with the matching private key carry.

    Raises:
        ValueError: The key is malformed.
    """
    raw = parse_public_key(public_key)
    if raw is None:
        raise ValueError(f"not an Ed25519 public key: {public_key!r}")
    return _key_id(raw)


def _key_id(raw: bytes) -> str:
    return KEY_PREFIX + keys.fingerprint(raw).removeprefix(keys.FINGERPRINT_PREFIX)[:16]


class SignedDecision(BaseModel):
    """An approver's decision on one approval request, signed with their private key.

    This is the payload of the approval signal / update. The workflow accepts it only if the
    signature verifies with the key registered for ``approver`` (see
    :func:`~jamjet_temporal.approvals._check.check_decision`).

    Attributes:
        approval_id: The request within the run, e.g. ``"apr_1"``.
        run_id: The Temporal workflow id.
        workflow_run_id: The Temporal run id of that workflow execution (None only for requests
            of runs started before decisions named their run; signed as absent).
        nonce: The request's nonce (random per request, recorded in the run's history; None
            as for ``workflow_run_id``).
        digest: :func:`action_digest` of the action and arguments the approver was shown.
        decision: ``"approved"`` or ``"rejected"``.
        approver: The approver's id, as registered in the approvals config.
        comment: Free text from the approver.
        signed_at: When it was signed; normalised to UTC.
        key_id: :func:`public_key_id` of the signing key.
        signature: Ed25519 signature over :meth:`signing_bytes`, base64url without padding.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    approval_id: str
    run_id: str
    workflow_run_id: str | None = None
    nonce: str | None = None
    digest: str
    decision: DecisionValue
    approver: str
    comment: str = ""
    signed_at: AwareDatetime
    key_id: str
    signature: str

    @field_validator("signed_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def signing_bytes(self) -> bytes:
        """The exact bytes the signature covers (see the module docstring for the format).

        Returns:
            Canonical JSON, UTF-8, of every field except ``signature``.
        """
        signed: dict[str, object] = {
            "approval_id": self.approval_id,
            "approver": self.approver,
            "comment": self.comment,
            "decision": self.decision,
            "digest": self.digest,
            "key_id": self.key_id,
            "run_id": self.run_id,
            "signed_at": _format_utc(self.signed_at),
        }
        # Present whenever the request had them (every request since they exist): a decision
        # signed with them cannot lose them, the signature would no longer verify.
        if self.workflow_run_id is not None:
            signed["workflow_run_id"] = self.workflow_run_id
        if self.nonce is not None:
            signed["nonce"] = self.nonce
        return _canonical_json(signed)


def verify_signature(decision: SignedDecision, public_key: str) -> bool:
    """Whether ``decision`` was signed, exactly as it is, by the private key of ``public_key``.

    Pure and deterministic (safe in workflow code). Also requires ``decision.key_id`` to be the
    id of ``public_key``.

    Args:
        decision: The decision received.
        public_key: The approver's registered ``"ed25519:<base64url>"`` key.

    Returns:
        True only for a valid signature; False for any malformed key, signature or content,
        never an exception.
    """
    try:
        return _verify(public_key, decision.key_id, decision.signature, decision.signing_bytes())
    except (ValueError, TypeError, AttributeError):
        return False


def _verify(public_key: str, key_id: str, signature_text: str, data: bytes) -> bool:
    raw = parse_public_key(public_key)
    if raw is None or key_id != _key_id(raw):
        return False
    signature = keys.b64url_decode(signature_text)
    if signature is None or len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, data)
    except InvalidSignature:
        return False
    return True


class RunUser(BaseModel):
    """Who a run acts for: the ``JamJetUser`` header of a workflow start.

    Signed (``signer``, ``key_id``, ``signature`` set) when a client starts the run: the signer
    is a client the approvals config trusts to act for ``user`` (or the user, an approver,
    acting for themselves), and the claim holds for this workflow id and type only, shortly
    after ``issued_at``. Unsigned when a parent run hands its user to a child workflow or a run
    continues as new: then ``from_run_id`` names the handing run, and the worker accepts it only
    when Temporal itself says that run is this one's parent or predecessor (a client cannot know
    either run id before the run exists).

    Attributes:
        user: The user's id.
        workflow_id: The run it was issued for (for an inherited user: the parent's or the
            previous run's workflow id).
        workflow_type: That run's workflow type.
        issued_at: When the client signed it (UTC).
        signer: The client's id; None for an inherited user.
        key_id: :func:`public_key_id` of the client's key.
        signature: Ed25519 over :meth:`signing_bytes`, base64url without padding.
        from_run_id: For an inherited user, the Temporal run id of the run that handed it on.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str
    workflow_id: str
    workflow_type: str
    issued_at: AwareDatetime
    signer: str | None = None
    key_id: str | None = None
    signature: str | None = None
    from_run_id: str | None = None

    @field_validator("issued_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def signing_bytes(self) -> bytes:
        """The exact bytes the signature covers: canonical JSON of every other field."""
        return _canonical_json(
            {
                "issued_at": _format_utc(self.issued_at),
                "key_id": self.key_id,
                "signer": self.signer,
                "user": self.user,
                "workflow_id": self.workflow_id,
                "workflow_type": self.workflow_type,
            }
        )


def verify_run_user_signature(claim: RunUser, public_key: str) -> bool:
    """Whether ``claim`` was signed, exactly as it is, by the key ``public_key``. Pure."""
    if claim.key_id is None or claim.signature is None:
        return False
    try:
        return _verify(public_key, claim.key_id, claim.signature, claim.signing_bytes())
    except (ValueError, TypeError, AttributeError):
        return False


def sign_run_user(
    user: str, signer: SigningIdentity, *, workflow_id: str, workflow_type: str
) -> RunUser:
    """A signed :class:`RunUser` for one workflow start. Client side (reads the clock).

    Args:
        user: Who the run acts for.
        signer: The client's (or the user's own) key.
        workflow_id: The workflow id being started.
        workflow_type: Its workflow type.

    Returns:
        The claim to send in the ``JamJetUser`` header.
    """
    return signer.sign_run_user(user, workflow_id=workflow_id, workflow_type=workflow_type)


class SigningIdentity:
    """An approver's private key, held on the approver's machine. Client side only.

    Exposes ``approver``, ``key_id`` and ``public_key`` (read-only); the private key itself is
    never shown in ``repr`` and leaves the object only through :meth:`private_key_pem`.
    """

    __slots__ = ("_approver", "_key_id", "_private_key", "_public_key")

    def __init__(self, approver: str, private_key: Ed25519PrivateKey) -> None:
        """Wraps a private key.

        Args:
            approver: The approver's id.
            private_key: Their Ed25519 private key.

        Raises:
            ValueError: ``approver`` is empty or has surrounding whitespace or control
                characters.
        """
        _check_approver(approver)
        self._private_key = private_key
        self._approver = approver
        self._public_key = keys.public_key_text(private_key)
        self._key_id = _key_id(keys.raw_public_key(private_key))

    @property
    def approver(self) -> str:
        """The approver's id."""
        return self._approver

    @property
    def key_id(self) -> str:
        """:func:`public_key_id` of the key."""
        return self._key_id

    @property
    def fingerprint(self) -> str:
        """The key's fingerprint, ``"sha256:"`` + 64 hex digits (as audit keys are pinned)."""
        return keys.fingerprint(self._private_key)

    @property
    def public_key(self) -> str:
        """The public key to register, ``"ed25519:<base64url>"``."""
        return self._public_key

    @classmethod
    def generate(cls, approver: str) -> SigningIdentity:
        """A new identity held in memory only (tests, ephemeral tools); nothing is written.

        Args:
            approver: The approver's id.

        Returns:
            The identity.
        """
        return cls(approver, Ed25519PrivateKey.generate())

    def __repr__(self) -> str:
        return f"SigningIdentity(approver={self.approver!r}, key_id={self.key_id!r})"

    def private_key_pem(self) -> bytes:
        """The private key as unencrypted PKCS8 PEM (what :func:`generate_identity` writes)."""
        return keys.private_key_pem(self._private_key)

    def sign_run_user(self, user: str, *, workflow_id: str, workflow_type: str) -> RunUser:
        """Signs that the run ``workflow_id`` acts for ``user`` (see :class:`RunUser`)."""
        unsigned = RunUser(
            user=user,
            workflow_id=workflow_id,
            workflow_type=workflow_type,
            issued_at=datetime.now(UTC),
            signer=self.approver,
            key_id=self.key_id,
        )
        signature = self._private_key.sign(unsigned.signing_bytes())
        return unsigned.model_copy(update={"signature": keys.b64url_encode(signature)})

    def sign(
        self,
        *,
        approval_id: str,
        run_id: str,
        workflow_run_id: str | None,
        nonce: str | None,
        digest: str,
        decision: DecisionValue,
        comment: str = "",
        signed_at: datetime | None = None,
    ) -> SignedDecision:
        """Signs a decision on one approval request.

        Args:
            approval_id: The request, e.g. ``"apr_1"``.
            run_id: The workflow id.
            workflow_run_id: The Temporal run id the request was made in.
            nonce: The request's nonce, as shown with it.
            digest: The request's digest, as shown with the action and arguments; check it
                with :func:`action_digest` before signing.
            decision: ``"approved"`` or ``"rejected"``.
            comment: Free text, signed too.
            signed_at: When; timezone-aware. Defaults to the current time (client side).

        Returns:
            The signed decision, ready to send as the signal / update payload.

        Raises:
            pydantic.ValidationError: ``signed_at`` is naive or ``decision`` unknown.
        """
        unsigned = SignedDecision(
            approval_id=approval_id,
            run_id=run_id,
            workflow_run_id=workflow_run_id,
            nonce=nonce,
            digest=digest,
            decision=decision,
            approver=self.approver,
            comment=comment,
            signed_at=datetime.now(UTC) if signed_at is None else signed_at,
            key_id=self.key_id,
            signature="",
        )
        signature = self._private_key.sign(unsigned.signing_bytes())
        return unsigned.model_copy(update={"signature": keys.b64url_encode(signature)})


def _check_approver(approver: str) -> None:
    if not isinstance(approver, str) or not approver or approver != approver.strip():
        raise ValueError(
            f"an approver id must be non-empty text without surrounding spaces, got {approver!r}"
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in approver):
        raise ValueError(f"the approver id {approver!r} contains a control character")


def default_keys_dir() -> Path:
    """Where keys go by default: ``$JAMJET_KEYS_DIR``, else ``~/.jamjet/keys``. Client side."""
    configured = os.environ.get(KEYS_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".jamjet" / "keys"


def key_file_name(approver: str) -> str:
    """The file name :func:`generate_identity` uses for ``approver``: ``<safe id>.key``."""
    safe = _UNSAFE_FILE_CHARS.sub("_", approver).lstrip(".")
    return (safe or "approver") + ".key"


def _repository_of(directory: Path) -> Path | None:
    for candidate in (directory, *directory.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def generate_identity(
    approver: str, directory: str | Path | None = None, *, overwrite: bool = False
) -> tuple[SigningIdentity, Path]:
    """Creates an approver's key pair and writes the private key file. Client side.

    The file is PKCS8 PEM, unencrypted, mode 0600, preceded by ``#`` header lines naming the
    approver and the public key. Register the returned identity's ``public_key`` under the
    approver in the approvals config.

    Args:
        approver: The approver's id, e.g. an e-mail address.
        directory: Where to write; defaults to ``$JAMJET_KEYS_DIR`` or ``~/.jamjet/keys``.
            It is created (mode 0700) if needed and must not be inside a git repository.
        overwrite: Replace an existing key file. Without it an existing file is an error: to
            rotate a key, write the new one elsewhere (or pass ``overwrite=True``) and register
            the new public key.

    Returns:
        The identity and the path of the key file.

    Raises:
        KeyFileError: The directory is inside a git repository, the file exists, or it cannot
            be written.
        ValueError: ``approver`` is empty or has surrounding whitespace.
    """
    _check_approver(approver)
    target_dir = Path(directory).expanduser() if directory is not None else default_keys_dir()
    target_dir = target_dir.resolve()
    repository = _repository_of(target_dir)
    if repository is not None:
        raise KeyFileError(
            f"the key directory is inside the git repository {repository}, where a private "
            "key can end up committed",
            path=str(target_dir),
            fix=f"use a directory outside any repository (set {KEYS_DIR_ENV} or pass "
            "directory=...), e.g. ~/.jamjet/keys",
        )
    path = target_dir / key_file_name(approver)
    private_key = Ed25519PrivateKey.generate()
    identity = SigningIdentity(approver, private_key)
    try:
        keys.write_private_key(
            path,
            private_key,
            comment="JamJet approver private key: keep it private (mode 600), never commit or "
            "share it",
            headers={
                "approver": approver,
                "key_id": identity.key_id,
                "public_key": identity.public_key,
                "fingerprint": identity.fingerprint,
            },
            overwrite=overwrite,
        )
    except FileExistsError:
        raise KeyFileError(
            "a key file for this approver already exists; overwriting it would lose the key "
            "registered in the approvals config",
            path=str(path),
            fix="keep the existing key, or rotate: pass overwrite=True (or another directory) "
            "and register the new public key",
        ) from None
    except OSError as exc:
        raise KeyFileError(
            f"cannot write the key file: {exc.strerror or exc}",
            path=str(path),
            fix="check that the directory is writable",
        ) from None
    return identity, path


_NOT_A_KEY: Final = "generate a key with generate_identity / `jamjet approvals keygen`"
_FIXES: Final[Mapping[keys.KeyFileProblem, str]] = {
    "missing": "check the path, or create a key with generate_identity / `jamjet approvals keygen`",
    "exposed": "chmod 600 {path}; if others could read it, generate a new key and register it "
    "instead",
    "not_ed25519": f"approver keys are Ed25519: {_NOT_A_KEY}",
    "mismatch": "the header was edited or belongs to another key: correct or remove it",
}


def _looks_like(file: str) -> str | None:
    """What a file given as a private key holds instead, when it is recognisable."""
    try:
        text = Path(file).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if re.search(r"^approvers\s*:", text, re.MULTILINE):
        return "it looks like an approvals config"
    if keys.PUBLIC_PEM_BEGIN in text or re.search(r"^\s*ed25519:\S+\s*$", text, re.MULTILINE):
        return "it holds a public key; the private key is the file keygen wrote"
    return None


def load_identity(path: str | Path, *, approver: str | None = None) -> SigningIdentity:
    """Reads an approver's private key file. Client side.

    Reads the one Ed25519 private key file format (:mod:`jamjet_temporal._shared._keys`):
    files :func:`generate_identity` wrote, and other keys in that format such as an audit
    signing key, given the approver it stands for.

    Args:
        path: The key file.
        approver: The approver the key belongs to, for a file without an ``# approver:`` line;
            for a file with one, it must be the same.

    Returns:
        The identity.

    Raises:
        KeyFileError: The file is missing, unreadable, readable by group or others, not an
            unencrypted Ed25519 PKCS8 PEM key, names no approver (and none was given) or
            another one, or its header lines do not match its key.
    """
    file = os.fspath(path)
    try:
        read = keys.read_private_key(file)
    except keys.PrivateKeyFileError as err:
        fix = _FIXES.get(err.problem, err.fix or _NOT_A_KEY).replace("{path}", file)
        looks = _looks_like(file) if err.problem in ("no_pem", "not_a_key") else None
        if looks is not None:
            raise KeyFileError(
                f"not a key file ({looks})",
                path=file,
                fix="give the approver's private key file, made by `jamjet approvals keygen`",
            ) from None
        raise KeyFileError(err.reason, path=file, fix=fix) from None
    named = read.headers.get("approver", "")
    if approver is not None and named and named != approver:
        raise KeyFileError(
            f"the key file belongs to approver {named!r}, not {approver!r}",
            path=file,
            fix="load the key file of that approver",
        )
    name = approver if approver is not None else named
    if not name:
        raise KeyFileError(
            "the key file does not name its approver",
            path=file,
            fix="add a line `# approver: <approver id>` before the PEM block",
        )
    try:
        identity = SigningIdentity(name, read.key)
    except ValueError as exc:
        raise KeyFileError(str(exc), path=file, fix="correct the `# approver:` line") from None
    written = read.headers.get("key_id")
    if written is not None and written != identity.key_id:
        raise KeyFileError(
            f"the header says key_id {written} but the key is {identity.key_id}",
            path=file,
            fix=_FIXES["mismatch"],
        )
    return identity
