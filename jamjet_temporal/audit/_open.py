"""``open_store``: the audit store a URL names (activity side)."""

from __future__ import annotations

from .._storeurl import SQLiteURL, parse_store_url
from ._checkpoint import CheckpointSigner
from ._postgres import PostgresAuditStore
from ._sqlite import SQLiteAuditStore
from ._store import AuditStore

__all__ = ["open_store"]

_FIX = "use a file path, 'sqlite:///audit.db' or 'postgresql://user@host/db?schema=jamjet'"


def open_store(url: str, *, signer: CheckpointSigner | None = None) -> AuditStore:
    """Open the audit store a URL names. No I/O happens until the store's first call.

    Args:
        url: A plain file path or ``sqlite:///path`` for SQLite (``sqlite:///audit.db`` is
            relative, ``sqlite:////var/lib/jamjet/audit.db`` absolute); or
            ``postgresql://user@host:5432/db`` (``postgres://`` too) for PostgreSQL, with an
            optional ``?schema=name`` (default ``jamjet``). Other query parameters go to libpq
            unchanged.
        signer: Signs checkpoints of the chain's head as events are appended (workers pass
            one; readers and verifiers need none).

    Returns:
        A ``SQLiteAuditStore`` or a ``PostgresAuditStore``.

    Raises:
        ConfigError: The URL names no supported store.
    """
    where = parse_store_url(url, what="audit store", fix=_FIX)
    if isinstance(where, SQLiteURL):
        return SQLiteAuditStore(where.path, signer=signer)
    return PostgresAuditStore(where.dsn, schema=where.schema, signer=signer)
