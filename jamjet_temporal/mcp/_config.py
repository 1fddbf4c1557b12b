"""MCP servers as configuration: the ``McpServer`` model and the files that declare servers.

Pure (stdlib and pydantic only): importable inside the workflow sandbox, and nothing here
touches the environment. Servers are declared by alias, in JamJet's shapes:

* ``JamJetConfig(mcp_servers={"files": McpServer(command="npx", args=[...])})`` in Python;
* a pipeline's ``mcp: {servers: {ALIAS: {transport: stdio, command, args, env, cwd}}}`` or
  ``{transport: http, url, headers}`` (:func:`servers_from_mapping`);
* a ``jamjet.toml`` beside it, with ``[[mcp_servers]]`` (``name``, ``command``, ``args``,
  ``env``, ``url``, ``headers``) as JamJet's templates write it, or ``[[mcp.servers]]``
  (:func:`read_jamjet_toml`).

Secrets: any value may hold ``${VAR}``. It stays as written in the configuration (and so in any
pipeline spec that reaches workflow history); only the worker replaces it, from its own
environment, when it connects (:meth:`McpServer.resolved`). ``$$`` writes a literal ``$``.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from jamjet_temporal._shared._aliases import alias_block, validation_text
from jamjet_temporal.errors import ConfigError, ConfigFileError
from jamjet_temporal.mcp._types import alias_problem

__all__ = ["McpServer", "read_jamjet_toml", "servers_from_mapping"]

#: JamJet's transport names, and ours for each.
_TRANSPORTS: Final = {
    "stdio": "stdio",
    "http": "http",
    "streamable_http": "http",
    "streamable-http": "http",
    "http_sse": "http",
    "sse": "http",
}
_REFERENCE: Final = re.compile(r"\$\$|\$\{([^}]*)\}")
_VARIABLE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIELDS: Final = "transport, command, args, env, cwd, url, headers, timeout_seconds"


def _references(text: str) -> list[str]:
    """The variables ``text`` refers to as ``${VAR}`` (``$$`` is a literal ``$``)."""
    return [m[1] for m in _REFERENCE.finditer(text) if m[0] != "$$"]


def _expand(text: str, environ: Mapping[str, str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name = match[1]
        value = environ.get(name)
        if value is None:
            raise ConfigError(
                f"{where} uses ${{{name}}}, but {name} is not set in the worker's environment "
                f"(fix: set {name} where the worker runs; values are read there, never sent "
                "through workflow history)"
            )
        return value

    return _REFERENCE.sub(replace, text)


class McpServer(BaseModel):
    """How a worker reaches one MCP server.

    ``transport`` may be left out: a ``command`` means ``stdio``, a ``url`` means ``http``
    (streamable HTTP). JamJet's names ``streamable_http``, ``http_sse`` and ``sse`` are read as
    ``http``. Values may hold ``${VAR}``, filled from the worker's environment at connect time.

    Attributes:
        transport: ``stdio`` (the worker starts ``command``) or ``http`` (it connects to
            ``url``).
        command: The program to start (stdio).
        args: Its arguments (stdio).
        env: Environment variables for it, over the worker's own (stdio).
        cwd: Its working directory (stdio).
        url: The server's streamable HTTP endpoint, such as ``http://127.0.0.1:8000/mcp``.
        headers: HTTP headers sent with every request (http), such as
            ``{"Authorization": "Bearer ${GITHUB_TOKEN}"}``.
        timeout_seconds: How long one request may wait for the server's answer; None: until
            the activity's own timeout.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Inferred when left out (from ``command`` or ``url``); the default is never used as is.
    transport: Literal["stdio", "http"] = "stdio"
    command: str | None = None
    args: list[str] = []
    env: dict[str, str] = {}
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = {}
    timeout_seconds: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _transport(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        unknown = [str(key) for key in data if key not in cls.model_fields]
        if unknown:
            hints = [
                f"'{key}' (did you mean '{close[0]}'?)"
                if (close := difflib.get_close_matches(key, list(cls.model_fields), n=1))
                else f"'{key}'"
                for key in unknown
            ]
            raise ValueError(f"unknown setting {', '.join(hints)}")
        transport = data.get("transport")
        if transport is None:
            if data.get("command") is not None:
                data["transport"] = "stdio"
            elif data.get("url") is not None:
                data["transport"] = "http"
            else:
                raise ValueError("give a command (a stdio server) or a url (an HTTP server)")
        elif isinstance(transport, str):
            known = _TRANSPORTS.get(transport.strip().lower())
            if known is None:
                raise ValueError(
                    f"transport {transport!r} is not one of stdio, http (streamable_http, "
                    "http_sse and sse are read as http)"
                )
            data["transport"] = known
        return data

    @model_validator(mode="after")
    def _consistent(self) -> McpServer:
        if self.transport == "stdio":
            if not self.command:
                raise ValueError("a stdio server needs a command")
            extra = [name for name in ("url", "headers") if getattr(self, name)]
            if extra:
                raise ValueError(f"a stdio server takes no {' or '.join(extra)}")
        else:
            if not self.url:
                raise ValueError("an http server needs a url")
            extra = [name for name in ("command", "args", "env", "cwd") if getattr(self, name)]
            if extra:
                raise ValueError(f"an http server takes no {', '.join(extra)}")
            if not self.url.startswith(("http://", "https://", "${")):
                raise ValueError(f"url {self.url!r} is not an http:// or https:// URL")
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {self.timeout_seconds}")
        for where, text in self._texts():
            for name in _references(text):
                if _VARIABLE.fullmatch(name) is None:
                    raise ValueError(
                        f"{where} refers to ${{{name}}}, which is not a variable name "
                        "(letters, digits and '_'; write $$ for a literal '$')"
                    )
            if "${" in _REFERENCE.sub("", text):
                raise ValueError(f"{where} has a '${{' without its closing '}}'")
        return self

    def _texts(self) -> list[tuple[str, str]]:
        texts: list[tuple[str, str]] = []
        if self.command is not None:
            texts.append(("command", self.command))
        texts += [(f"args[{i}]", arg) for i, arg in enumerate(self.args)]
        texts += [(f"env.{key}", value) for key, value in self.env.items()]
        if self.cwd is not None:
            texts.append(("cwd", self.cwd))
        if self.url is not None:
            texts.append(("url", self.url))
        texts += [(f"headers.{key}", value) for key, value in self.headers.items()]
        return texts

    def references(self) -> list[str]:
        """Every environment variable the server's values refer to (``${VAR}``), in order."""
        found: list[str] = []
        for _, text in self._texts():
            found += [name for name in _references(text) if name not in found]
        return found

    def resolved(self, environ: Mapping[str, str], *, alias: str = "?") -> McpServer:
        """The server with every ``${VAR}`` replaced from ``environ`` (the worker's environment).

        Args:
            environ: Where variables are read (``os.environ`` on the worker).
            alias: The server's alias, for the error message.

        Raises:
            ConfigError: A variable is not set; the message names it and the field using it.
        """

        def fill(where: str, text: str) -> str:
            return _expand(text, environ, f"MCP server '{alias}': {where}")

        return self.model_copy(
            update={
                "command": None if self.command is None else fill("command", self.command),
                "args": [fill(f"args[{i}]", arg) for i, arg in enumerate(self.args)],
                "env": {key: fill(f"env.{key}", value) for key, value in self.env.items()},
                "cwd": None if self.cwd is None else fill("cwd", self.cwd),
                "url": None if self.url is None else fill("url", self.url),
                "headers": {
                    key: fill(f"headers.{key}", value) for key, value in self.headers.items()
                },
            }
        )


def server_from(alias: object, value: object, *, file: str, line: int | None = None) -> McpServer:
    """One server's entry, validated; errors name the file, the alias and the fix.

    Raises:
        ConfigFileError: The alias or the entry is invalid.
    """
    problem = alias_problem(alias)
    if problem is not None:
        raise ConfigFileError(
            problem, file=file, line=line, fix="rename the server, e.g. 'files' or 'brave-search'"
        )
    if isinstance(value, McpServer):
        return value
    if not isinstance(value, Mapping):
        raise ConfigFileError(
            f"MCP server '{alias}' is a {type(value).__name__}, not a table of settings",
            file=file,
            line=line,
            fix=f"give it a command (stdio) or a url (http); its settings are: {_FIELDS}",
        )
    try:
        return McpServer.model_validate(value)
    except ValidationError as err:
        raise ConfigFileError(
            f"MCP server '{alias}': {validation_text(err)}",
            file=file,
            line=line,
            fix=f"a stdio server has command, args, env, cwd; an http server has url, headers "
            f"(settings: {_FIELDS})",
        ) from None


def servers_from_mapping(data: object, source: str = "<inline>") -> dict[str, McpServer]:
    """The servers of a pipeline's ``mcp:`` block: ``{servers: {ALIAS: {...}, ...}}``.

    Args:
        data: The value of the ``mcp`` key, as parsed from YAML.
        source: The file it came from, for error messages.

    Returns:
        The servers by alias (empty for an empty block).

    Raises:
        ConfigFileError: The block or a server in it is invalid (file and fix named).
    """
    return alias_block(
        data,
        block="mcp",
        inner="servers",
        noun="server",
        example="mcp: {servers: {files: {command: npx, args: [...]}}}",
        source=source,
        entry=lambda alias, value: server_from(alias, value, file=source),
    )


def _line_of(text: str, name: object) -> int | None:
    """The line of ``name = "<name>"`` in a TOML text (the entry's first line, roughly)."""
    if not isinstance(name, str):
        return None
    pattern = re.compile(rf"^\s*name\s*=\s*[\"']{re.escape(name)}[\"']", re.MULTILINE)
    found = pattern.search(text)
    return None if found is None else text.count("\n", 0, found.start()) + 1


def _toml_entries(value: object, key: str, file: str) -> list[tuple[object, dict[str, object]]]:
    """(name, settings) of each server under ``key``: an array of tables, or a table of tables."""
    if isinstance(value, list):
        entries = []
        for index, entry in enumerate(value):
            if not isinstance(entry, dict):
                raise ConfigFileError(
                    f"{key}[{index}] is not a table",
                    file=file,
                    fix=f'write each server as [[{key}]] with name = "..." and its settings',
                )
            settings = dict(entry)
            if "name" not in settings:
                raise ConfigFileError(
                    f"{key}[{index}] has no name",
                    file=file,
                    fix=f'add name = "files" (the alias workflows call it by) to the [[{key}]] '
                    "entry",
                )
            entries.append((settings.pop("name"), settings))
        return entries
    if isinstance(value, dict):
        return [(name, settings) for name, settings in value.items()]
    raise ConfigFileError(
        f"{key} is a {type(value).__name__}, not an array of tables",
        file=file,
        fix=f'write each server as [[{key}]] with name = "..." and its settings',
    )


def read_jamjet_toml(path: str | Path) -> dict[str, McpServer]:
    """The MCP servers a ``jamjet.toml`` declares.

    Both shapes are read (together, if a file has both): ``[[mcp_servers]]``, as JamJet's
    templates write it, and ``[[mcp.servers]]``; each entry has a ``name`` (the alias) and the
    server's settings (``command``, ``args``, ``env``, ``cwd``, ``url``, ``headers``,
    ``transport``, ``timeout_seconds``). Other tables of the file are not looked at.

    Args:
        path: The file.

    Returns:
        The servers by alias (empty when the file declares none).

    Raises:
        ConfigFileError: The file is unreadable, not TOML, or declares a server wrongly; the
            message names the file, the line when known, and the fix.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigFileError(
            f"cannot read the file: {err}", file=file, fix="check the path and its permissions"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        found = re.search(r"\(at line (\d+)", str(err))
        raise ConfigFileError(
            f"not valid TOML: {err}",
            file=file,
            line=int(found[1]) if found else None,
            fix='fix the TOML syntax; a server reads [[mcp_servers]] name = "files" '
            'command = "npx" args = ["-y", "@modelcontextprotocol/server-filesystem", "."]',
        ) from None
    entries: list[tuple[str, object, dict[str, object]]] = []
    if "mcp_servers" in data:
        entries += [
            ("mcp_servers", name, settings)
            for name, settings in _toml_entries(data["mcp_servers"], "mcp_servers", file)
        ]
    mcp = data.get("mcp")
    if mcp is not None:
        if not isinstance(mcp, dict):
            raise ConfigFileError(
                "mcp is not a table",
                file=file,
                fix='declare servers as [[mcp.servers]] with name = "..." and their settings',
            )
        if "servers" in mcp:
            entries += [
                ("mcp.servers", name, settings)
                for name, settings in _toml_entries(mcp["servers"], "mcp.servers", file)
            ]
    servers: dict[str, McpServer] = {}
    for key, name, settings in entries:
        line = _line_of(text, name)
        server = server_from(name, settings, file=file, line=line)
        assert isinstance(name, str)
        if name in servers:
            raise ConfigFileError(
                f"two MCP servers are named '{name}' (the second under {key})",
                file=file,
                line=line,
                fix="give each server its own name",
            )
        servers[name] = server
    return servers


def servers_from_config(
    servers: Mapping[str, McpServer | Mapping[str, object]], *, where: str
) -> dict[str, McpServer]:
    """``JamJetConfig.mcp_servers`` as given (models or plain dicts), validated.

    Raises:
        ConfigError: An alias or a server is invalid (the message names ``where`` and the fix).
    """
    if not isinstance(servers, Mapping):
        raise ConfigError(
            f"{where} must map server aliases to McpServer (or dicts), got {type(servers).__name__}"
        )
    return {str(alias): server_from(alias, value, file=where) for alias, value in servers.items()}
