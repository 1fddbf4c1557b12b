"""Remote A2A agents as configuration: the ``RemoteAgent`` model and the blocks that declare them.

Pure (stdlib and pydantic only): importable inside the workflow sandbox, and nothing here
touches the environment. Agents are declared by alias, in JamJet's shapes:

* ``JamJetConfig(a2a_agents={"research": RemoteAgent(url="https://...")})`` in Python (models
  or plain dicts);
* a pipeline's ``a2a: {remote_agents: {ALIAS: {url, agent_card_path, auth}}}``
  (:func:`agents_from_mapping`).

Secrets: an agent's ``auth`` names environment variables (``token_env``, ``key_env``), never
values. Only the worker reads them, from its own environment, when it calls the agent
(:meth:`RemoteAgent.headers`), so a declaration may travel through workflow history.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jamjet_temporal._shared._aliases import alias_block, validation_text
from jamjet_temporal.errors import ConfigError, ConfigFileError

__all__ = [
    "ALIAS_PATTERN",
    "ApiKeyAuth",
    "BearerAuth",
    "RemoteAgent",
    "SignedAuth",
    "agent_from",
    "agents_from_config",
    "agents_from_mapping",
    "alias_problem",
]

#: What an agent alias may be: ASCII letters, digits, ``_`` and ``-`` (no dot: the gate names a
#: delegation ``a2a:ALIAS.SKILL``), at most 64 characters.
ALIAS_PATTERN: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
_VARIABLE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: An HTTP header name (RFC 9110 token characters).
_HEADER: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELDS: Final = "url, agent_card_path, auth, timeout_seconds"
_AUTH_FIELDS: Final = (
    "{type: bearer, token_env: VAR}, {type: api_key, header: NAME, key_env: VAR} or "
    "{type: signed, key_file: PATH}"
)


def alias_problem(alias: object) -> str | None:
    """Why ``alias`` cannot name a remote agent (None when it can)."""
    if not isinstance(alias, str) or ALIAS_PATTERN.fullmatch(alias) is None:
        return (
            f"the A2A agent alias {alias!r} is not 1 to 64 ASCII letters, digits, '_' or '-' "
            "(starting with a letter, digit or '_')"
        )
    return None


def _variable(name: str) -> str:
    if _VARIABLE.fullmatch(name) is None:
        raise ValueError(
            f"{name!r} is not an environment variable name (letters, digits and '_'); give the "
            "variable's NAME, never the secret itself"
        )
    return name


class BearerAuth(BaseModel):
    """``Authorization: Bearer <token>``, the token read from the worker's environment.

    Attributes:
        token_env: The environment variable holding the token (its name, not its value).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["bearer"] = "bearer"
    token_env: str

    @field_validator("token_env")
    @classmethod
    def _name(cls, value: str) -> str:
        return _variable(value)

    def credential(self, environ: Mapping[str, str]) -> tuple[str, str, str, str]:
        """(header name, header value, the secret in it, the variable it came from)."""
        token = _read(environ, self.token_env)
        return "Authorization", f"Bearer {token}", token, self.token_env


class ApiKeyAuth(BaseModel):
    """An API key in a header of its own, read from the worker's environment.

    Attributes:
        header: The header's name (default ``X-API-Key``).
        key_env: The environment variable holding the key (its name, not its value).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["api_key"] = "api_key"
    header: str = "X-API-Key"
    key_env: str

    @field_validator("key_env")
    @classmethod
    def _name(cls, value: str) -> str:
        return _variable(value)

    @field_validator("header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if _HEADER.fullmatch(value) is None:
            raise ValueError(f"{value!r} is not an HTTP header name")
        return value

    def credential(self, environ: Mapping[str, str]) -> tuple[str, str, str, str]:
        """(header name, header value, the secret in it, the variable it came from)."""
        key = _read(environ, self.key_env)
        return self.header, key, key, self.key_env


class SignedAuth(BaseModel):
    """A short-lived token signed for each delegation with this caller's Ed25519 key.

    ``Authorization: Bearer <JWT>`` (EdDSA): audience the agent's URL, subject the calling
    agent (the key file's ``# agent:`` line), the user the run acts for; a new token for every
    delegation, renewed while a long one is followed (docs/a2a.md, "Identity").

    Attributes:
        key_file: The caller's key file (``jamjet a2a keygen AGENT`` writes one), read on the
            worker. Its path, not a secret, may be declared anywhere; the key stays on disk.
        ttl_seconds: How long each token is valid (default 300; callees accept at most 900).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["signed"] = "signed"
    key_file: str
    ttl_seconds: float = 300.0

    @field_validator("ttl_seconds")
    @classmethod
    def _ttl(cls, value: float) -> float:
        if not 1 <= value <= 900:
            raise ValueError(f"ttl_seconds must be between 1 and 900, got {value}")
        return value


def _read(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name)
    if not value:
        raise ConfigError(
            f"{name} is not set in the worker's environment (fix: set {name} where the worker "
            "runs; credentials are read there, never sent through workflow history)"
        )
    return value


Auth = Annotated[BearerAuth | ApiKeyAuth | SignedAuth, Field(discriminator="type")]


class RemoteAgent(BaseModel):
    """How a worker reaches one remote A2A agent.

    Attributes:
        url: The agent's base URL (its card is at ``URL/.well-known/agent-card.json``); the
            card says where its JSON-RPC or HTTP+JSON endpoint is.
        agent_card_path: Where the card is, relative to ``url``, when not at the well-known
            path.
        auth: The credential sent with every request: ``{type: bearer, token_env: VAR}``,
            ``{type: api_key, header: X-API-Key, key_env: VAR}``, or ``{type: signed,
            key_file: PATH}`` (a token signed for each delegation); None: none.
        timeout_seconds: How long one HTTP request may wait for the agent (following a long
            task is many requests, each within this); default 30 s.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    agent_card_path: str | None = None
    auth: Auth | None = None
    timeout_seconds: float = 30.0

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("timeout_seconds")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {value}")
        return value

    def headers(self, environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """The HTTP headers to send, credentials filled from ``environ`` (the worker's).

        Returns:
            (headers, {secret value: ``${VAR}``}) - the second, to keep secrets out of messages.

        Raises:
            ConfigError: A variable the auth names is not set.
        """
        if self.auth is None or isinstance(self.auth, SignedAuth):
            return {}, {}  # a signed token is made per delegation, by the activity
        name, value, secret, variable = self.auth.credential(environ)
        return {name: value}, {secret: f"${{{variable}}}"}


def url_problem(url: object) -> str | None:
    """Why ``url`` cannot be an agent's URL (None when it can): an ``http(s)://`` URL of printable
    ASCII without ``*`` (the gate names a delegation by it, and policy globs must see it as
    written)."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return f"{url!r} is not an http:// or https:// URL"
    if any(not ("!" <= char <= "~") or char == "*" for char in url):
        return (
            f"the URL {url!r} has characters outside printable ASCII (or a '*'): a look-alike "
            "character could spell a blocked agent in a way policy rules do not match; write "
            "international host names in their xn-- form"
        )
    return None


def agent_from(alias: object, value: object, *, file: str, line: int | None = None) -> RemoteAgent:
    """One agent's entry, validated; errors name the file, the alias and the fix.

    Raises:
        ConfigFileError: The alias or the entry is invalid.
    """
    problem = alias_problem(alias)
    if problem is not None:
        raise ConfigFileError(
            problem, file=file, line=line, fix="rename the agent, e.g. 'research' or 'risk-review'"
        )
    if isinstance(value, RemoteAgent):
        return value
    if isinstance(value, str):
        value = {"url": value}  # `research: https://...` is read as its URL
    if not isinstance(value, Mapping):
        raise ConfigFileError(
            f"A2A agent '{alias}' is a {type(value).__name__}, not a mapping of settings",
            file=file,
            line=line,
            fix=f"give it a url; its settings are: {_FIELDS}",
        )
    try:
        return RemoteAgent.model_validate(value)
    except ValidationError as err:
        raise ConfigFileError(
            f"A2A agent '{alias}': {validation_text(err, hidden='Auth')}",
            file=file,
            line=line,
            fix=f"settings: {_FIELDS}; auth is {_AUTH_FIELDS}",
        ) from None


def agents_from_mapping(data: object, source: str = "<inline>") -> dict[str, RemoteAgent]:
    """The agents of a pipeline's ``a2a:`` block: ``{remote_agents: {ALIAS: {...}, ...}}``.

    Args:
        data: The value of the ``a2a`` key, as parsed from YAML.
        source: The file it came from, for error messages.

    Returns:
        The agents by alias (empty for an empty block).

    Raises:
        ConfigFileError: The block or an agent in it is invalid (file and fix named).
    """
    return alias_block(
        data,
        block="a2a",
        inner="remote_agents",
        noun="agent",
        example="a2a: {remote_agents: {research: {url: https://agents.example.com/research}}}",
        source=source,
        entry=lambda alias, value: agent_from(alias, value, file=source),
    )


def agents_from_config(
    agents: Mapping[str, RemoteAgent | Mapping[str, object]], *, where: str
) -> dict[str, RemoteAgent]:
    """``JamJetConfig.a2a_agents`` as given (models or plain dicts), validated.

    Raises:
        ConfigError: An alias or an agent is invalid (the message names ``where`` and the fix).
    """
    if not isinstance(agents, Mapping):
        raise ConfigError(
            f"{where} must map agent aliases to RemoteAgent (or dicts), got {type(agents).__name__}"
        )
    return {str(alias): agent_from(alias, value, file=where) for alias, value in agents.items()}
