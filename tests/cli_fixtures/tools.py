"""Tools for the CLI tests."""

from __future__ import annotations

from jamjet_temporal import task


@task
async def shout(text: str) -> str:
    return text.upper()


@task
async def explode(reason: str) -> str:
    raise ValueError(f"cannot process: {reason}")
