"""``parse_store_url``: what a store URL names; ``open_by_url``: the store it names.

One convention for every store of ours (audit trail, Engram memory): a plain file path or
``sqlite:///path`` for SQLite (SQLAlchemy's convention: the path is what follows the third
slash, so ``sqlite:///audit.db`` is relative and ``sqlite:////var/lib/jamjet/audit.db``
absolute); ``postgresql://user@host:5432/db`` (``postgres://`` too) for PostgreSQL, with an
optional ``?schema=name`` (default ``jamjet``). Other query parameters go to libpq unchanged.

Parsing does no I/O; nor does ``open_by_url``, which only builds the store (the stores connect
on first use).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jamjet_temporal.errors import ConfigError

__all__ = [
    "PostgresURL",
    "SQLiteURL",
    "absolute_store_url",
    "open_by_url",
    "parse_store_url",
    "store_fix",
    "store_identity",
]

_SQLITE = "sqlite:///"

_S = TypeVar("_S")


@dataclass(frozen=True)
class SQLiteURL:
    """A SQLite store: the database file's path."""

    path: str


@dataclass(frozen=True)
class PostgresURL:
    """A PostgreSQL store: the libpq DSN (without ``schema``) and the schema."""

    dsn: str
    schema: str


def parse_store_url(url: str, *, what: str, fix: str) -> SQLiteURL | PostgresURL:
    """Which store ``url`` names.

    Args:
        url: The URL (see the module notes).
        what: The store's name for messages ("audit store", "memory store").
        fix: What a valid URL looks like, for messages.

    Raises:
        ConfigError: The URL names no supported store. Never quotes a PostgreSQL URL, which
            may hold a password.
    """
    if not url.strip():
        raise ConfigError(f"{what} URL is empty (fix: {fix})")
    if "://" not in url:
        return SQLiteURL(url)
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sqlite":
        if url[: len(_SQLITE)].lower() != _SQLITE or len(url) == len(_SQLITE):
            raise ConfigError(f"{what} URL {url!r} names no SQLite file (fix: {fix})")
        return SQLiteURL(url[len(_SQLITE) :])
    if scheme in ("postgresql", "postgres"):
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            # Not the URL itself in the message: it may hold a password.
            raise ConfigError(f"{what} URL is malformed: {exc} (fix: {fix})") from None
        query = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [value for key, value in query if key == "schema"]
        if len(schemas) > 1:
            raise ConfigError(f"{what} URL gives 'schema' {len(schemas)} times (fix: once)")
        rest = urlencode([(key, value) for key, value in query if key != "schema"])
        dsn = urlunsplit(parts._replace(query=rest))
        return PostgresURL(dsn, schemas[0] if schemas else "jamjet")
    raise ConfigError(f"{what} URL scheme {scheme!r} is not supported (fix: {fix})")


def store_fix(example: str) -> str:
    """What a valid store URL looks like, for messages; ``example`` is a SQLite file's path
    (``"audit.db"``)."""
    return f"use a file path, 'sqlite:///{example}' or 'postgresql://user@host/db?schema=jamjet'"


def open_by_url(
    url: str,
    *,
    what: str,
    example: str,
    sqlite: Callable[[str], _S],
    postgres: Callable[[str, str], _S],
) -> _S:
    """Open the store ``url`` names with the factory for its kind (every store's one opener).

    Args:
        url: The URL (see the module notes).
        what: The store's name for messages ("audit store", "memory store").
        example: A SQLite file's path for the messages' fix (see ``store_fix``).
        sqlite: Builds a SQLite store from the database file's path.
        postgres: Builds a PostgreSQL store from the libpq DSN (without ``schema``) and the
            schema.

    Returns:
        What the factory returned.

    Raises:
        ConfigError: The URL names no supported store (and whatever the factory raises for a
            target it refuses).
    """
    where = parse_store_url(url, what=what, fix=store_fix(example))
    if isinstance(where, SQLiteURL):
        return sqlite(where.path)
    return postgres(where.dsn, where.schema)


def store_identity(url: str, *, what: str, fix: str) -> str:
    """Which store ``url`` names, the same for every spelling of it and without credentials.

    A SQLite file by its absolute path (relative paths resolved against the working
    directory now); a PostgreSQL store by host, port, database and schema.

    Raises:
        ConfigError: The URL names no supported store.
    """
    where = parse_store_url(url, what=what, fix=fix)
    if isinstance(where, SQLiteURL):
        return "sqlite:" + str(Path(where.path).expanduser().resolve())
    # Only a PostgreSQL URL needs the driver (the [postgres] extra).
    from jamjet_temporal._shared._pgtarget import conninfo_options

    options = conninfo_options(where.dsn)
    parts = [str(options.get(key, "")) for key in ("host", "port", "dbname")]
    return "postgresql:" + "/".join([*parts, where.schema])


def absolute_store_url(url: str, *, what: str, fix: str) -> str:
    """``url`` with a SQLite path made absolute (against the working directory now), so a
    process that later changes directory keeps writing to the same file; others unchanged."""
    where = parse_store_url(url, what=what, fix=fix)
    if isinstance(where, SQLiteURL):
        return "sqlite:///" + str(Path(where.path).expanduser().resolve())
    return url


#: Our PostgreSQL transactions last milliseconds. A worker that loses its link (or dies where
#: no FIN reaches the server) while holding a store's advisory lock would otherwise stall every
#: other worker's writes until TCP gives up (two hours by default): the server ends a session
#: idle inside a transaction after this long, and probes a silent client after the keepalives.
PG_IDLE_IN_TRANSACTION = "15s"
_PG_KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
}


def pg_conninfo(dsn: str) -> str:
    """``dsn`` with TCP keepalives and a session limit on idle transactions, unless it sets
    its own (connection strings and URLs alike)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    given = conninfo_to_dict(dsn)
    extra: dict[str, str] = {k: v for k, v in _PG_KEEPALIVES.items() if k not in given}
    options = str(given.get("options") or "")
    if "idle_in_transaction_session_timeout" not in options:
        limit = f"-c idle_in_transaction_session_timeout={PG_IDLE_IN_TRANSACTION}"
        extra["options"] = f"{options} {limit}".strip()
    return make_conninfo(dsn, **extra)
