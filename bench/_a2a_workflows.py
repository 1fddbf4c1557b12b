"""Workflows for bench/a2a_overhead.py (a module of their own: the sandbox re-imports it)."""

from __future__ import annotations

from typing import Any

from jamjet_temporal import a2a, workflow


@workflow(name="bench-a2a.delegate")
async def delegate_echo(payload: dict[str, Any]) -> Any:
    """One delegation of ``echo`` to the agent the worker declares as ``echo``."""
    return await a2a.delegate("echo", skill="echo", input=payload)


@workflow(name="bench-a2a.echo")
async def served_echo(payload: dict[str, Any]) -> dict[str, Any]:
    """Echoes its input: served as an A2A agent by jamjet (one task, one workflow)."""
    return payload
