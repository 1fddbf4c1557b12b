"""The bank's side of the transfer example: a wire is a side effect, so it is keyed by the step's
idempotency key and the bank books each key once (used by ``workflows/transfer.py``)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

from jamjet_temporal import idempotency_key, task


def ledger_path() -> Path:
    """Where the demo bank books transfers ($JAMJET_BANK_LEDGER, default .jamjet/bank.db)."""
    return Path(os.environ.get("JAMJET_BANK_LEDGER", ".jamjet/bank.db"))


def _book(key: str, amount: float, to: str) -> str:
    path = ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path, timeout=30) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS transfers (key TEXT PRIMARY KEY, amount REAL, to_ TEXT)"
        )
        db.execute("CREATE TABLE IF NOT EXISTS attempts (key TEXT, n INTEGER)")
        db.execute("INSERT INTO attempts VALUES (?, 1)", (key,))
        # The bank deduplicates on the key: a retried step cannot send the money twice.
        db.execute("INSERT OR IGNORE INTO transfers VALUES (?, ?, ?)", (key, amount, to))
    return "txn_" + key[3:15]


@task(name="bank.send")
async def send(amount: float, to: str) -> str:
    """Wire ``amount`` to ``to``; returns the bank's transaction id."""
    await asyncio.sleep(1.5)  # the bank is slow
    return await asyncio.to_thread(_book, idempotency_key(), amount, to)
