"""Workflows for the MCP tests (a module of their own: the sandbox re-imports it).

Plain ``@workflow.defn`` classes: MCP tools are governed for any workflow on a worker with
``JamJetPlugin``, not only for ``jamjet_temporal.workflow`` ones.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from jamjet_temporal import mcp
from jamjet_temporal.errors import GateError

ONCE = RetryPolicy(maximum_attempts=1)


@workflow.defn(name="test-mcp.call")
class CallTool:
    """One call, its failure left to fail the run."""

    @workflow.run
    async def run(self, server: str, tool: str, arguments: dict[str, Any], once: bool) -> Any:
        options: dict[str, Any] = {"summary": f"{server}.{tool}"}
        if once:
            options["retry_policy"] = ONCE
        return await mcp.call_tool(server, tool, arguments, **options)


@workflow.defn(name="test-mcp.durable")
class Durable:
    """One call retried as Temporal retries it, a lost worker noticed within 2 s (heartbeats)."""

    @workflow.run
    async def run(self, server: str, tool: str, arguments: dict[str, Any]) -> Any:
        return await mcp.call_tool(
            server,
            tool,
            arguments,
            heartbeat_timeout=timedelta(seconds=2),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=1)),
        )


@workflow.defn(name="test-mcp.tour")
class Tour:
    """Lists a server's tools and calls several; returns what each call gave."""

    @workflow.run
    async def run(self, server: str, calls: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        tools = await mcp.list_tools(server)
        results: list[Any] = []
        for index, (tool, arguments) in enumerate(calls):
            results.append(
                await mcp.call_tool(server, tool, arguments, activity_id=f"call-{index}")
            )
        return {"tools": [tool.model_dump(mode="json") for tool in tools], "results": results}


@workflow.defn(name="test-mcp.attempts")
class Attempts:
    """Tries calls, one after the other, and says what became of each (refused or done)."""

    @workflow.run
    async def run(self, calls: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
        outcomes: list[dict[str, Any]] = []
        for server, tool, arguments in calls:
            try:
                result = await mcp.call_tool(server, tool, arguments, retry_policy=ONCE)
            except GateError as err:
                outcomes.append(
                    {"outcome": type(err).__name__, "scope": err.scope, "rule": err.rule}
                )
            except ActivityError as err:
                cause = err.cause
                kind = cause.type if isinstance(cause, ApplicationError) else repr(cause)
                outcomes.append({"outcome": kind})
            else:
                outcomes.append({"outcome": "done", "result": result})
        return outcomes


@workflow.defn(name="test-mcp.raw")
class Raw:
    """Plain workflow code scheduling an activity by name, with whatever argument it likes."""

    @workflow.run
    async def run(self, activity: str, argument: Any) -> Any:
        return await workflow.execute_activity(
            activity, argument, start_to_close_timeout=timedelta(seconds=30), retry_policy=ONCE
        )


@workflow.defn(name="test-mcp.steps")
class Steps:
    """Lists and calls, one after the other, saying what became of each (never failing).

    Each step is ``{"op": "list" | "call" | "dotted", "server", "tool", "arguments",
    "timeout"}``; ``dotted`` calls ``mcp.call("server.tool", ...)``.
    """

    @workflow.run
    async def run(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        outcomes: list[dict[str, Any]] = []
        for step in steps:
            options: dict[str, Any] = {"retry_policy": ONCE}
            if step.get("timeout"):
                options["start_to_close_timeout"] = timedelta(seconds=step["timeout"])
            try:
                if step["op"] == "list":
                    tools = await mcp.list_tools(step["server"], **options)
                    result: Any = [tool.name for tool in tools]
                elif step["op"] == "dotted":
                    name = f"{step['server']}.{step['tool']}"
                    result = await mcp.call(name, step.get("arguments", {}), **options)
                else:
                    result = await mcp.call_tool(
                        step["server"], step["tool"], step.get("arguments", {}), **options
                    )
            except GateError as err:
                outcomes.append(
                    {
                        "outcome": type(err).__name__,
                        "scope": err.scope,
                        "rule": err.rule,
                        "message": str(err),
                    }
                )
            except ActivityError as err:
                cause = err.cause
                outcomes.append(
                    {
                        "outcome": cause.type if isinstance(cause, ApplicationError) else "?",
                        "message": cause.message if isinstance(cause, ApplicationError) else "",
                        "retryable": not cause.non_retryable
                        if isinstance(cause, ApplicationError)
                        else None,
                    }
                )
            else:
                outcomes.append({"outcome": "done", "result": result})
        return outcomes


@workflow.defn(name="test-mcp.together")
class Together:
    """Calls tools of one server at the same time (the run lists the server once)."""

    @workflow.run
    async def run(self, server: str, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        return list(
            await asyncio.gather(
                *(mcp.call_tool(server, tool, arguments) for tool, arguments in calls)
            )
        )


@workflow.defn(name="test-mcp.raw-on-queue")
class RawOnQueue:
    """Schedules the MCP call on another task queue (run on a worker without the plugin)."""

    @workflow.run
    async def run(self, queue: str, call: dict[str, Any]) -> Any:
        return await workflow.execute_activity(
            "jamjet.mcp.call_tool",
            call,
            task_queue=queue,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=ONCE,
        )


WORKFLOWS = [CallTool, Durable, Tour, Attempts, Raw, Steps, Together]
