"""``open_memory``: the memory store a URL names (activity side)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError
from ._sqlite import SQLiteMemory
from ._store import SQLMemory

__all__ = ["open_memory"]

_SQLITE = "sqlite:///"
_FIX = "use a file path, 'sqlite:///.jamjet/memory.db' or 'postgresql://user@host/db?schema=jamjet'"


def open_memory(url: str) -> SQLMemory:
    """Open the memory store a URL names. No I/O happens until its first call.

    Args:
        url: A file path or ``sqlite:///path`` for SQLite (``sqlite:////abs/path`` absolute);
            ``postgresql://user@host:5432/db`` (or ``postgres://``) for PostgreSQL, with an
            optional ``?schema=name`` (default ``jamjet``).

    Raises:
        ConfigError: The URL names no supported store.
    """
    if not url.strip():
        raise ConfigError(f"memory store URL is empty (fix: {_FIX})")
    if "://" not in url:
        return SQLiteMemory(url)
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sqlite":
        if url[: len(_SQLITE)].lower() != _SQLITE or len(url) == len(_SQLITE):
            raise ConfigError(f"memory store URL {url!r} names no SQLite file (fix: {_FIX})")
        return SQLiteMemory(url[len(_SQLITE) :])
    if scheme in ("postgresql", "postgres"):
        from ._postgres import PostgresMemory

        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise ConfigError(f"memory store URL is malformed: {exc} (fix: {_FIX})") from None
        query = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [value for key, value in query if key == "schema"]
        if len(schemas) > 1:
            raise ConfigError(f"memory store URL gives 'schema' {len(schemas)} times (fix: once)")
        rest = urlencode([(key, value) for key, value in query if key != "schema"])
        dsn = urlunsplit(parts._replace(query=rest))
        return PostgresMemory(dsn, schema=schemas[0] if schemas else "jamjet")
    raise ConfigError(f"memory store URL scheme {scheme!r} is not supported (fix: {_FIX})")
