"""The long step of bench/recovery.py, loaded by its ``jamjet worker`` subprocesses.

Each attempt appends ``{"workflow_id", "attempt", "pid", "t"}`` as one JSON line to the file
named by ``RECOVERY_LOG`` the moment it starts, so the benchmark sees when (and where) the
step runs again after its worker is killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from temporalio import activity

from jamjet_temporal import task


def _record(path: str, entry: dict[str, object]) -> None:
    # One small O_APPEND write per line: both workers' lines land whole.
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


@task
async def long_step(seconds: float) -> float:
    """Sleep ``seconds`` (heartbeats are automatic); return when this attempt started."""
    started = time.time()
    info = activity.info()
    entry = {"workflow_id": info.workflow_id, "attempt": info.attempt, "pid": os.getpid()}
    await asyncio.to_thread(_record, os.environ["RECOVERY_LOG"], {**entry, "t": started})
    await asyncio.sleep(seconds)
    return started
