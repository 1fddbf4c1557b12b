"""Tools for the chaos test: every step performs a real side effect into a SQLite ledger.

Loaded by the worker subprocesses (``jamjet worker --tools tests/chaos_tools.py``) that
tests/test_chaos.py SIGKILLs; the ledger file is named by the ``CHAOS_LEDGER`` variable.

Two tables:

* ``executions``: one row per attempt that began running the step body (even if its worker
  was killed a moment later), and whether that attempt reached the side effect.
* ``ledger``: the side effect itself, keyed by the idempotency key. ``INSERT OR IGNORE`` is the
  deduplication a real downstream system would do: an attempt whose worker died after the
  effect but before Temporal heard of the completion is retried, and the retry must not repeat
  the effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from temporalio import activity

from jamjet_temporal import idempotency_key, task

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    activity_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    effect_at REAL,
    effect_applied INTEGER
);
CREATE TABLE IF NOT EXISTS ledger (
    key TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    activity_id TEXT NOT NULL,
    step TEXT NOT NULL,
    value INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    effect_at REAL NOT NULL
);
"""


@contextlib.contextmanager
def connect(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A connection that waits for the other writers (several worker processes share the file)."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        yield conn
    finally:
        conn.close()


def init_ledger(path: str | Path) -> None:
    """Create the tables, in WAL mode so readers never block the writing workers."""
    with connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)


# Long enough that a kill often lands mid-step and that the runs outlast the test's kills.
STEP_SECONDS = (0.6, 1.4)


def step_seconds(key: str) -> float:
    """Fixed per step (from its key), so every attempt of a step takes as long as the first."""
    low, high = STEP_SECONDS
    return low + (high - low) * (int(key[3:11], 16) % 1001) / 1000


def _record_start(path: str, key: str, info: activity.Info) -> int:
    with connect(path) as conn:
        cur = conn.execute(
            "INSERT INTO executions (key, workflow_id, run_id, activity_id, attempt, pid,"
            " started_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                info.workflow_id,
                info.workflow_run_id,
                info.activity_id,
                info.attempt,
                os.getpid(),
                time.time(),
            ),
        )
        return int(cur.lastrowid or 0)


def _apply_effect(
    path: str, execution: int, key: str, info: activity.Info, step: str, value: int
) -> None:
    now = time.time()
    with connect(path) as conn:
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(
            "INSERT OR IGNORE INTO ledger (key, workflow_id, run_id, activity_id, step, value,"
            " pid, effect_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                info.workflow_id,
                info.workflow_run_id,
                info.activity_id,
                step,
                value,
                os.getpid(),
                now,
            ),
        )
        conn.execute(
            "UPDATE executions SET effect_at = ?, effect_applied = ? WHERE id = ?",
            (now, cur.rowcount, execution),
        )
        conn.execute("COMMIT")


@task
async def effect(step: str, value: int) -> int:
    """Apply this step's side effect exactly once, however often the step is attempted."""
    path = os.environ["CHAOS_LEDGER"]
    key = idempotency_key()
    info = activity.info()
    execution = await asyncio.to_thread(_record_start, path, key, info)
    seconds = step_seconds(key)
    # The effect lands two thirds of the way through, so a kill can also fall between the
    # effect and the completion report: the window the idempotency key exists for.
    await asyncio.sleep(seconds * 2 / 3)
    await asyncio.to_thread(_apply_effect, path, execution, key, info, step, value)
    await asyncio.sleep(seconds / 3)
    return value + 1
