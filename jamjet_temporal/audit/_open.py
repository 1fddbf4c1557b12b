"""``open_store``: the audit store a URL names (activity side)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError
from ._postgres import PostgresAuditStore
from ._sqlite import SQLiteAuditStore
from ._store import AuditStore

__all__ = ["open_store"]

_SQLITE = "sqlite:///"
_FIX = "use a file path, 'sqlite:///audit.db' or 'postgresql://user@host/db?schema=jamjet'"


def open_store(url: str) -> AuditStore:
    """Open the audit store a URL names. No I/O happens until the store's first call.

    Args:
        url: A plain file path or ``sqlite:///path`` for SQLite (SQLAlchemy's convention:
            the path is what follows the third slash, so ``sqlite:///audit.db`` is relative
            and ``sqlite:////var/lib/jamjet/audit.db`` absolute); or
            ``postgresql://user@host:5432/db`` (``postgres://`` too) for PostgreSQL, with an
            optional ``?schema=name`` (default ``jamjet``). Other query parameters go to libpq
            unchanged.

    Returns:
        A ``SQLiteAuditStore`` or a ``PostgresAuditStore``.

    Raises:
        ConfigError: The URL names no supported store.
    """
    if not url.strip():
        raise ConfigError(f"audit store URL is empty (fix: {_FIX})")
    if "://" not in url:
        return SQLiteAuditStore(url)
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sqlite":
        if url[: len(_SQLITE)].lower() != _SQLITE or len(url) == len(_SQLITE):
            raise ConfigError(f"audit store URL {url!r} names no SQLite file (fix: {_FIX})")
        return SQLiteAuditStore(url[len(_SQLITE) :])
    if scheme in ("postgresql", "postgres"):
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            # Not the URL itself in the message: it may hold a password.
            raise ConfigError(f"audit store URL is malformed: {exc} (fix: {_FIX})") from None
        query = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [value for key, value in query if key == "schema"]
        if len(schemas) > 1:
            raise ConfigError(f"audit store URL gives 'schema' {len(schemas)} times (fix: once)")
        rest = urlencode([(key, value) for key, value in query if key != "schema"])
        dsn = urlunsplit(parts._replace(query=rest))
        return PostgresAuditStore(dsn, schema=schemas[0] if schemas else "jamjet")
    raise ConfigError(f"audit store URL scheme {scheme!r} is not supported (fix: {_FIX})")
