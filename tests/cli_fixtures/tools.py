"""Tools for the CLI tests."""

from __future__ import annotations

from datetime import timedelta

from jamjet_temporal import task


@task
async def shout(text: str) -> str:
    return text.upper()


@task
async def explode(reason: str) -> str:
    raise ValueError(f"cannot process: {reason}")


@task(heartbeat_timeout=timedelta(seconds=2))
async def linger(seconds: float) -> str:
    """A step that takes a while (long enough to be interrupted in the middle)."""
    import asyncio

    await asyncio.sleep(seconds)
    return f"lingered {seconds}s"
