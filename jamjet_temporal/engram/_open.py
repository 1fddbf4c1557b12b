"""``open_memory``: the memory store a URL names (activity side)."""

from __future__ import annotations

from .._storeurl import SQLiteURL, parse_store_url
from ._sqlite import SQLiteMemory
from ._store import SQLMemory

__all__ = ["open_memory"]

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
    where = parse_store_url(url, what="memory store", fix=_FIX)
    if isinstance(where, SQLiteURL):
        return SQLiteMemory(where.path)
    from ._postgres import PostgresMemory

    return PostgresMemory(where.dsn, schema=where.schema)
