"""Checks shared by our PostgreSQL stores (audit trail, Engram memory): no I/O.

A DSN and a schema are checked when a store is built, so a typo fails at start-up with a clear
message rather than at the first write; messages never quote the DSN (it may hold a password).
"""

from __future__ import annotations

import hashlib
import re

from jamjet_temporal._shared._extras import missing_extra
from jamjet_temporal.errors import ConfigError

try:
    import psycopg
    from psycopg import pq
except ImportError as _missing:  # the extra is not installed
    raise missing_extra("postgres", _missing) from _missing

__all__ = ["check_target", "conninfo_options", "lock_key"]

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_FIX_DSN = "fix: 'postgresql://user@host:5432/dbname'"


def lock_key(text: str) -> int:
    """A 64-bit advisory-lock key for ``text`` (stable across processes and hosts)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def _redact(reason: str, dsn: str) -> str:
    """libpq's complaint about a DSN without any part of it but option names.

    libpq quotes the whole DSN, or the word it stumbled on (which can be part of a password),
    in some messages.
    """
    keywords = {option.keyword.decode() for option in pq.Conninfo.get_defaults()}
    reason = reason.strip().replace(dsn, "<dsn>")
    return re.sub(r'"([^"]*)"', lambda m: m[0] if m[1] in keywords else '"…"', reason)


def conninfo_options(dsn: str) -> dict[str, object]:
    """The options of a libpq connection string or URL; empty when libpq cannot parse it."""
    try:
        return dict(psycopg.conninfo.conninfo_to_dict(dsn))
    except psycopg.ProgrammingError:
        return {}


def check_target(dsn: str, schema: str, *, what: str) -> None:
    """Refuse a schema that is not a plain identifier and a DSN libpq cannot parse.

    Args:
        dsn: A libpq connection string or ``postgresql://`` URL.
        schema: The schema's name.
        what: The store's name for messages ("audit store", "memory store").

    Raises:
        ConfigError: What is wrong and how to fix it, without any part of the DSN.
    """
    if not _IDENTIFIER.match(schema):
        raise ConfigError(
            f"{what} schema {schema!r} is not a plain identifier (fix: lowercase "
            "letters, digits and '_', not starting with a digit, at most 63 characters)"
        )
    try:
        options = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            f"{what} DSN is not a PostgreSQL connection string "
            f"({_redact(str(exc), dsn)}) ({_FIX_DSN})"
        ) from None
    port = str(options.get("port", ""))
    if port and not all(part.strip().isdigit() for part in port.split(",")):
        # Not echoed: "postgresql://user:password/db" (no '@') parses the password as a port.
        raise ConfigError(f"{what} DSN gives a port that is not a number ({_FIX_DSN})")
