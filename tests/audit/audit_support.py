"""Helpers for the audit-store tests: sample events and the two backends' raw access."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from jamjet_temporal.audit import AuditEvent, AuditStore, event_id, open_store

PG_ADDRESS = "127.0.0.1:5432"
PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=root connect_timeout=3"
PG_URL = "postgresql://root@127.0.0.1:5432/test"

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def make_event(
    n: int, *, run: str = "exec_1", kind: str = "tool.call", note: str = "", ns: str = "t"
) -> AuditEvent:
    """Event number ``n``; the same ``n`` (and ``ns``) always gives the same id."""
    return AuditEvent(
        id=event_id(ns, str(n)),
        run_id=run,
        workflow_run_id=f"run-{run}",
        kind=kind,
        at=T0 + timedelta(seconds=n),
        actor={"workflow": "Agent", "worker": "w1"},
        data={"n": n, "note": note, "args": {"q": "café ☕", "k": [1, 2.5, None, True]}},
    )


class Backend:
    """A fresh place for a store (a file or a schema) plus raw SQL access that bypasses it."""

    def __init__(self, kind: str, url: str, table: str) -> None:
        self.kind = kind
        self.url = url
        self.table = table

    def open(self) -> AuditStore:
        return open_store(self.url)

    def execute(self, statement: str) -> None:
        """Run raw SQL on its own connection; ``{t}`` stands for the events table."""
        text = statement.replace("{t}", self.table)
        if self.kind == "sqlite":
            lite = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            try:
                lite.execute(text)
            finally:
                lite.close()
        else:
            with psycopg.connect(PG_DSN, autocommit=True) as pg:
                pg.execute(text.encode())

    def drop_append_only(self) -> None:
        """What an attacker with database access does first."""
        if self.kind == "sqlite":
            for name in ("no_update", "no_delete", "no_replace"):
                self.execute(f"DROP TRIGGER audit_events_{name}")
        else:
            self.execute("DROP TRIGGER audit_events_append_only ON {t}")


class Backends:
    """Makes fresh ``Backend``s of one kind and removes them at the end of the test."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self._tmp = tmp_path
        self._schemas: list[str] = []

    def fresh(self) -> Backend:
        name = f"jj_test_{uuid.uuid4().hex[:12]}"
        if self.kind == "sqlite":
            return Backend("sqlite", f"sqlite:///{self._tmp / name}.db", "audit_events")
        self._schemas.append(name)
        return Backend("postgres", f"{PG_URL}?schema={name}", f"{name}.audit_events")

    def cleanup(self) -> None:
        if not self._schemas:
            return
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for schema in self._schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())
