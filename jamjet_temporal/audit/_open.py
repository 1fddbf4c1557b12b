"""``open_store``: the audit store a URL names (activity side)."""

from __future__ import annotations

from jamjet_temporal._shared._storeurl import open_by_url
from jamjet_temporal.audit._checkpoint import CheckpointSigner
from jamjet_temporal.audit._sqlite import SQLiteAuditStore
from jamjet_temporal.audit._store import GATHER_S, AuditStore

__all__ = ["open_store"]


def open_store(
    url: str, *, signer: CheckpointSigner | None = None, gather_s: float = GATHER_S
) -> AuditStore:
    """Open the audit store a URL names. No I/O happens until the store's first call.

    Args:
        url: A plain file path or ``sqlite:///path`` for SQLite (``sqlite:///audit.db`` is
            relative, ``sqlite:////var/lib/jamjet/audit.db`` absolute); or
            ``postgresql://user@host:5432/db`` (``postgres://`` too) for PostgreSQL, with an
            optional ``?schema=name`` (default ``jamjet``). Other query parameters go to libpq
            unchanged.
        signer: Signs checkpoints of the chain's head as events are appended (workers pass
            one; readers and verifiers need none).
        gather_s: Under load, how long a transaction waits for more appends (``GATHER_S``);
            0: never waits.

    Returns:
        A ``SQLiteAuditStore`` or a ``PostgresAuditStore``.

    Raises:
        ConfigError: The URL names no supported store.
    """

    def sqlite(path: str) -> AuditStore:
        return SQLiteAuditStore(path, signer=signer, gather_s=gather_s)

    def postgres(dsn: str, schema: str) -> AuditStore:
        # Imported here: the driver is the [postgres] extra, needed only for this URL.
        from jamjet_temporal.audit._postgres import PostgresAuditStore

        return PostgresAuditStore(dsn, schema=schema, signer=signer, gather_s=gather_s)

    return open_by_url(
        url, what="audit store", example="audit.db", sqlite=sqlite, postgres=postgres
    )
