"""``open_memory``: the memory store a URL names (activity side)."""

from __future__ import annotations

from jamjet_temporal._shared._storeurl import open_by_url
from jamjet_temporal.memory._sqlite import SQLiteMemory
from jamjet_temporal.memory._store import SQLMemory

__all__ = ["open_memory"]


def open_memory(url: str) -> SQLMemory:
    """Open the memory store a URL names. No I/O happens until its first call.

    Args:
        url: A file path or ``sqlite:///path`` for SQLite (``sqlite:////abs/path`` absolute);
            ``postgresql://user@host:5432/db`` (or ``postgres://``) for PostgreSQL, with an
            optional ``?schema=name`` (default ``jamjet``).

    Raises:
        ConfigError: The URL names no supported store.
    """
    return open_by_url(
        url,
        what="memory store",
        example=".jamjet/memory.db",
        sqlite=SQLiteMemory,
        postgres=_postgres,
    )


def _postgres(dsn: str, schema: str) -> SQLMemory:
    # Imported on use: a SQLite-only deployment never loads the PostgreSQL backend.
    from jamjet_temporal.memory._postgres import PostgresMemory

    return PostgresMemory(dsn, schema=schema)
