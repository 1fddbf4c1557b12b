"""A block of entries declared by alias: ``mcp: {servers: {...}}``, ``a2a: {remote_agents: ...}``.

Pure (no I/O): the pipeline loader and the MCP and A2A configs read these blocks alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from pydantic import ValidationError

from jamjet_temporal.errors import ConfigFileError

__all__ = ["alias_block", "validation_text"]

_T = TypeVar("_T")


def alias_block(
    data: object,
    *,
    block: str,
    inner: str,
    noun: str,
    example: str,
    source: str,
    entry: Callable[[object, object], _T],
) -> dict[str, _T]:
    """The entries of ``{block}: {{{inner}: {{ALIAS: ...}}}}``, each read by ``entry``.

    Args:
        data: The value of the ``block`` key, as parsed.
        block: The block's key (``mcp``).
        inner: The key of the alias mapping inside it (``servers``).
        noun: What one entry is (``server``), for messages.
        example: The block written correctly, shown in fixes.
        source: The file it came from.
        entry: Reads one ``(alias, value)`` (raising ``ConfigFileError`` itself).

    Returns:
        The entries by alias (empty for an empty block).

    Raises:
        ConfigFileError: The block is not of that shape (file and fix named).
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigFileError(
            f"the {block} block is a {type(data).__name__}, not a mapping",
            file=source,
            fix=f"write it as {example}",
        )
    unknown = sorted(str(key) for key in data if key != inner)
    if unknown:
        raise ConfigFileError(
            f"the {block} block has unknown keys: {', '.join(unknown)}",
            file=source,
            fix=f"declare each {noun} under {block}.{inner}, by alias: {example}",
        )
    entries = data.get(inner)
    if entries is None:
        return {}
    if not isinstance(entries, Mapping):
        raise ConfigFileError(
            f"{block}.{inner} is a {type(entries).__name__}, not a mapping of alias to {noun}",
            file=source,
            fix=f"write it as {example}",
        )
    return {str(alias): entry(alias, value) for alias, value in entries.items()}


def validation_text(error: ValidationError, *, hidden: str | None = None) -> str:
    """Every problem of one entry's validation on one line: ``where: what; where: what``.

    Args:
        error: The entry's validation error.
        hidden: Location parts ending with this (a tagged union's member names, ``...Auth``)
            are left out of ``where``.
    """
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(
            str(part) for part in item["loc"] if hidden is None or not str(part).endswith(hidden)
        )
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
