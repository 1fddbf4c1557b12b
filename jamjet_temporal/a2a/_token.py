"""Signed caller identity for A2A: a short-lived EdDSA JWT per delegation (client side, I/O).

The caller (a worker delegating to a remote agent) signs, for each delegation, a JSON Web Token
with its Ed25519 key, in the project's one key format (:mod:`jamjet_temporal._shared._keys`):

* ``iss`` and ``sub``: the calling agent's name (the key file's ``# agent:`` line);
* ``aud``: the callee's URL, as the caller declares it (so a token shown to one agent cannot
  be replayed to another);
* ``iat``, ``nbf``, ``exp``: issued now, valid for ``ttl`` seconds (5 minutes by default);
* ``jti``: a random token id; ``user``: the user the caller's run acts for (its proven user),
  when it has one; ``message_id``: the A2A message the delegation sends.

JWT encoding and verification are PyJWT's (``EdDSA``), not hand-rolled. The callee
(:class:`TrustedCallers`) knows each trusted caller's public key by name and refuses, with the
reason, a request without a token, a token that is not a JWT or not EdDSA, one from a caller it
does not trust, one whose signature does not verify with that caller's key, one for another
audience, one that has expired, is not valid yet, or lives longer than :data:`MAX_TTL`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import AwareDatetime, BaseModel, ConfigDict

from jamjet_temporal._shared import _keys as keys
from jamjet_temporal._shared._extras import missing_extra
from jamjet_temporal.errors import ConfigError, KeyFileError

try:
    import jwt
except ImportError as err:
    raise missing_extra("a2a", err) from err

__all__ = [
    "ALGORITHM",
    "DEFAULT_TTL",
    "MAX_TTL",
    "CallerIdentity",
    "CallerRefused",
    "TrustedCallers",
    "VerifiedCaller",
    "generate_caller_key",
    "same_audience",
]

#: The only signature algorithm issued and accepted: Ed25519 (RFC 8037).
ALGORITHM: Final = "EdDSA"
#: How long a token is valid unless the caller says otherwise.
DEFAULT_TTL: Final = timedelta(minutes=5)
#: Longest life a callee accepts (``exp - iat``): a leaked token is useful for this long at most.
MAX_TTL: Final = timedelta(minutes=15)
#: Clock difference tolerated between caller and callee.
LEEWAY: Final = timedelta(seconds=30)
#: The header line of a caller key file that names the calling agent.
AGENT_HEADER: Final = "agent"


def same_audience(url: str) -> str:
    """A URL as audiences are compared: scheme and host lower-cased, no trailing slash."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.rstrip("/")
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}".rstrip("/")


class CallerIdentity:
    """A calling agent's name and private key, held by its workers. Signs delegation tokens.

    Args:
        agent: The calling agent's name, as callees list it among their trusted callers.
        private_key: Its Ed25519 private key.
    """

    __slots__ = ("_agent", "_key")

    def __init__(self, agent: str, private_key: Ed25519PrivateKey) -> None:
        if not agent or agent != agent.strip() or any(ord(c) < 32 for c in agent):
            raise ConfigError(f"a caller's agent name must be non-empty text, got {agent!r}")
        self._agent = agent
        self._key = private_key

    @property
    def agent(self) -> str:
        """The calling agent's name."""
        return self._agent

    @property
    def public_key(self) -> str:
        """The public key's text (``ed25519:...``): what callees list for this caller."""
        return keys.public_key_text(self._key)

    @property
    def key_id(self) -> str:
        """The key's fingerprint (``sha256:...``), sent as the token's ``kid``."""
        return keys.fingerprint(self._key)

    def __repr__(self) -> str:
        return f"CallerIdentity(agent={self._agent!r}, key_id={self.key_id!r})"

    @classmethod
    def generate(cls, agent: str) -> CallerIdentity:
        """A new identity with a fresh key (tests; use :func:`generate_caller_key` for a file)."""
        return cls(agent, Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, agent: str | None = None) -> CallerIdentity:
        """Read a caller key file (:func:`generate_caller_key` writes them).

        Args:
            path: The key file (``~`` is expanded).
            agent: The agent's name, for a file without an ``# agent:`` line; for a file with
                one, it must be the same.

        Raises:
            KeyFileError: The file cannot be used, or names no agent (or another one).
        """
        file = os.fspath(Path(path).expanduser())
        try:
            read = keys.read_private_key(file, kind="A2A caller key")
        except keys.PrivateKeyFileError as err:
            fix = err.fix or "make one with `jamjet a2a keygen AGENT`"
            raise KeyFileError(err.reason, path=file, fix=fix) from None
        named = read.headers.get(AGENT_HEADER, "")
        if agent is not None and named and named != agent:
            raise KeyFileError(
                f"the key file belongs to agent {named!r}, not {agent!r}",
                path=file,
                fix="give the key file of that agent",
            )
        name = agent or named
        if not name:
            raise KeyFileError(
                "the key file does not name its agent",
                path=file,
                fix=f"add a line `# {AGENT_HEADER}: <agent name>` before the PEM block",
            )
        return cls(name, read.key)

    def sign(
        self,
        audience: str,
        *,
        user: str | None = None,
        message_id: str | None = None,
        ttl: timedelta = DEFAULT_TTL,
        now: datetime | None = None,
    ) -> tuple[str, dict[str, object]]:
        """A token for one delegation to the agent at ``audience``.

        Returns:
            (the compact JWT, its claims).
        """
        issued = int((now or datetime.now(UTC)).timestamp())
        claims: dict[str, object] = {
            "iss": self._agent,
            "sub": self._agent,
            "aud": audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + max(1, int(ttl.total_seconds())),
            "jti": uuid.uuid4().hex,
        }
        if user is not None:
            claims["user"] = user
        if message_id is not None:
            claims["message_id"] = message_id
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.key_id})
        return token, claims


def generate_caller_key(
    agent: str, path: str | os.PathLike[str], *, overwrite: bool = False
) -> CallerIdentity:
    """Create a caller's key pair and write its private key file (mode 0600).

    The file names the agent (``# agent:``) and its public key (``# public_key:``), which is
    what callees list among their trusted callers.

    Raises:
        KeyFileError: The file exists (without ``overwrite``) or cannot be written.
    """
    identity = CallerIdentity.generate(agent)
    target = Path(path).expanduser()
    try:
        keys.write_private_key(
            target,
            identity._key,
            comment="JamJet A2A caller key: keep it private (mode 600), never commit or share it",
            headers={
                AGENT_HEADER: agent,
                "public_key": identity.public_key,
                "fingerprint": identity.key_id,
            },
            overwrite=overwrite,
        )
    except FileExistsError:
        raise KeyFileError(
            "a key file exists there already",
            path=str(target),
            fix="keep it, or pass overwrite (and give callees the new public key)",
        ) from None
    except OSError as exc:
        raise KeyFileError(
            f"cannot write the key file: {exc.strerror or exc}",
            path=str(target),
            fix="check that the directory is writable",
        ) from None
    return identity


class VerifiedCaller(BaseModel):
    """A caller whose token verified: who it is, for whom it acts, which token.

    Attributes:
        agent: The calling agent (the token's subject).
        user: The user the caller's run acts for, as the caller states it (None: none).
        token_id: The token's ``jti``.
        key_id: The fingerprint of the key it verified with.
        issued_at: When the token was issued.
        expires_at: When it expires.
        message_id: The message the token was issued for, when it names one.
    """

    model_config = ConfigDict(frozen=True)

    agent: str
    user: str | None = None
    token_id: str
    key_id: str
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    message_id: str | None = None


class CallerRefused(Exception):
    """A request's caller identity was refused.

    Attributes:
        reason: Why, as one sentence (what the callee answers and records).
        error: The RFC 6750 error code: ``invalid_request`` (no token) or ``invalid_token``.
        caller: The caller the token names, when it could be read.
    """

    def __init__(self, reason: str, *, error: str = "invalid_token", caller: str | None = None):
        self.reason = reason
        self.error = error
        self.caller = caller
        super().__init__(reason)


class TrustedCallers:
    """The callers an agent accepts, by name, with their public keys.

    Args:
        callers: Agent name to public key: ``ed25519:...`` text, PEM text, or an
            ``Ed25519PublicKey``.

    Raises:
        ConfigError: A key is not an Ed25519 public key.
    """

    def __init__(self, callers: Mapping[str, str | Ed25519PublicKey]) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        for name, key in callers.items():
            if isinstance(key, Ed25519PublicKey):
                self._keys[name] = key
                continue
            try:
                self._keys[name] = keys.parse_public_key(str(key).strip())
            except keys.KeyFormatError as err:
                raise ConfigError(f"trusted caller '{name}': {err}") from None

    @property
    def names(self) -> list[str]:
        """The trusted callers' names, sorted."""
        return sorted(self._keys)

    def public_keys(self) -> dict[str, str]:
        """Each trusted caller's public key text."""
        return {name: keys.public_key_text(key) for name, key in sorted(self._keys.items())}

    def verify(
        self, token: str | None, audience: str, *, now: datetime | None = None
    ) -> VerifiedCaller:
        """The caller ``token`` proves, for a request to the agent at ``audience``.

        Raises:
            CallerRefused: No token, or one that does not prove a trusted caller for this
                agent now (the reason says which check failed).
        """
        if not token:
            raise CallerRefused(
                "no caller token: this agent serves only callers it trusts; send "
                "'Authorization: Bearer <JWT>' signed with your caller key (EdDSA)",
                error="invalid_request",
            )
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as err:
            raise CallerRefused(f"the bearer token is not a JWT ({err})") from None
        if header.get("alg") != ALGORITHM:
            raise CallerRefused(
                f"the token is signed with {header.get('alg')!r}; only {ALGORITHM} is accepted"
            )
        caller = unverified.get("sub")
        if not isinstance(caller, str) or not caller:
            raise CallerRefused("the token names no caller (no 'sub' claim)")
        key = self._keys.get(caller)
        if key is None:
            raise CallerRefused(
                f"unknown caller '{caller}': not among this agent's trusted callers "
                f"({', '.join(self.names) or 'none'})",
                caller=caller,
            )
        moment = now or datetime.now(UTC)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                leeway=LEEWAY,
                options={
                    "require": ["iss", "sub", "aud", "iat", "exp", "jti"],
                    # Compared below as URLs (case of host, trailing slash), not as strings.
                    "verify_aud": False,
                    # Checked below against ``moment``, so callers can pin the time.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise CallerRefused(
                f"the token's signature does not verify with the key trusted for '{caller}'",
                caller=caller,
            ) from None
        except jwt.MissingRequiredClaimError as err:
            raise CallerRefused(f"the token lacks the '{err.claim}' claim", caller=caller) from None
        except jwt.PyJWTError as err:
            raise CallerRefused(f"the token is invalid: {err}", caller=caller) from None
        return _checked(claims, caller, audience, moment, keys.fingerprint(key))


def _checked(
    claims: dict[str, object], caller: str, audience: str, now: datetime, key_id: str
) -> VerifiedCaller:
    def number(name: str) -> int:
        value = claims.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CallerRefused(f"the token's '{name}' claim is not a time", caller=caller)
        return int(value)

    if claims.get("iss") != caller:
        raise CallerRefused(
            f"the token's issuer {claims.get('iss')!r} is not its subject '{caller}'",
            caller=caller,
        )
    aud = claims.get("aud")
    wanted = same_audience(audience)
    given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and same_audience(a) == wanted for a in given):
        raise CallerRefused(
            f"the token is for audience {aud!r}, not this agent ({audience})", caller=caller
        )
    issued, expires = number("iat"), number("exp")
    start = number("nbf") if "nbf" in claims else issued
    at = now.timestamp()
    slack = LEEWAY.total_seconds()
    if expires - issued > MAX_TTL.total_seconds():
        raise CallerRefused(
            f"the token lives {expires - issued} s; this agent accepts at most "
            f"{int(MAX_TTL.total_seconds())} s",
            caller=caller,
        )
    if at > expires + slack:
        when = datetime.fromtimestamp(expires, UTC).isoformat()
        raise CallerRefused(f"the token expired at {when}", caller=caller)
    if at + slack < start:
        raise CallerRefused("the token is not valid yet (issued in the future)", caller=caller)
    user = claims.get("user")
    message_id = claims.get("message_id")
    token_id = claims.get("jti")
    return VerifiedCaller(
        agent=caller,
        user=user if isinstance(user, str) else None,
        token_id=str(token_id),
        key_id=key_id,
        issued_at=datetime.fromtimestamp(issued, UTC),
        expires_at=datetime.fromtimestamp(expires, UTC),
        message_id=message_id if isinstance(message_id, str) else None,
    )
