"""``open_store``: which store a URL names, and the errors for the ones it does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from jamjet_temporal.audit import PostgresAuditStore, SQLiteAuditStore, open_store
from jamjet_temporal.errors import ConfigError
from tests.audit.audit_support import make_event


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("audit.db", "audit.db"),
        ("nested/dir/audit.db", "nested/dir/audit.db"),
        ("sqlite:///rel.db", "rel.db"),
        ("SQLITE:///rel.db", "rel.db"),
        ("sqlite:///{tmp}/abs.db", "abs.db"),
    ],
)
async def test_sqlite_urls(
    url: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    store = open_store(url.format(tmp=tmp_path))
    assert isinstance(store, SQLiteAuditStore)
    try:
        await store.append([make_event(1)])
    finally:
        await store.close()
    base = tmp_path if "{tmp}" in url else workdir
    assert (base / where).is_file()


@pytest.mark.parametrize(
    ("url", "dsn", "schema"),
    [
        ("postgresql://u@db.example:5432/audit", "postgresql://u@db.example:5432/audit", "jamjet"),
        ("postgres://u:pw@h/db?schema=gov_1", "postgres://u:pw@h/db", "gov_1"),
        (
            "postgresql://h/db?sslmode=require&schema=a&connect_timeout=5",
            "postgresql://h/db?sslmode=require&connect_timeout=5",
            "a",
        ),
    ],
)
def test_postgres_urls(url: str, dsn: str, schema: str) -> None:
    store = open_store(url)
    assert isinstance(store, PostgresAuditStore)
    assert (store._dsn, store._schema) == (dsn, schema)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("mysql://h/db", "'mysql' is not supported"),
        ("postgresql+psycopg://h/db", "not supported"),
        ("sqlite://", "names no SQLite file"),
        ("sqlite:///", "names no SQLite file"),
        ("sqlite://relative.db", "names no SQLite file"),
        ("sqlite:///:memory:", "outlive the process"),
        (":memory:", "outlive the process"),
        ("postgresql://h/db?schema=Bad-Name", "not a plain identifier"),
        ("postgresql://h/db?schema=", "not a plain identifier"),
        ("postgresql://h/db?schema=a&schema=b", "'schema' 2 times"),
        ("postgresql://h/db?nosuch=1", "invalid URI query parameter"),
        ("postgresql://u:s3cret@[bad/db", "malformed"),
    ],
)
def test_unusable_urls_raise_config_error_with_the_fix(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match="fix") as caught:
        open_store(url)
    assert says in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_store_constructors_check_their_arguments() -> None:
    with pytest.raises(ConfigError, match="outlive"):
        SQLiteAuditStore(":memory:")
    with pytest.raises(ConfigError, match="identifier"):
        PostgresAuditStore("host=h dbname=d", schema="1abc")
    with pytest.raises(ConfigError, match="connection string") as caught:
        PostgresAuditStore("postgresql://u:s3cret@[::1/db")
    assert "s3cret" not in str(caught.value)
