"""``@task``: an async function that runs as a Temporal activity.

Both sides of the determinism boundary meet here, so the module is kept pure enough for the
workflow sandbox: awaiting a task inside a workflow only *schedules* an activity (the
``workflow.execute_activity`` call); the task body itself runs on a worker, in activity
context, with automatic heartbeats; called anywhere else it simply runs (unit tests).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import typing
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Literal, ParamSpec, TypeVar, overload

from pydantic_core import to_jsonable_python
from temporalio import activity, workflow
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError
from temporalio.workflow import ActivityConfig

from jamjet_temporal._shared._activity import DEFAULT_RETRY_POLICY, auto_heartbeat
from jamjet_temporal.budget._ledger import Budget
from jamjet_temporal.errors import ConfigError, InlineTaskError
from jamjet_temporal.mcp._types import McpTools

P = ParamSpec("P")
R = TypeVar("R")

AgentTool = Callable[..., Awaitable[object]] | McpTools
"""What an agent task may be given as a tool: a ``@task`` function, or an MCP server's tools
(``mcp_tools(...)``)."""


def default_task_config() -> ActivityConfig:
    """The activity options every ``@task`` starts from (each overridable by keyword).

    Returns:
        start-to-close 10 minutes per attempt; heartbeat timeout 30 s (heartbeats are sent
        automatically, so a dead worker is noticed within it); retries with exponential backoff
        from 1 s, capped at 60 s between attempts and 10 attempts in all; ``TypeError``,
        ``NotImplementedError`` and ``ConfigError`` are not retried.
    """
    return ActivityConfig(
        start_to_close_timeout=timedelta(minutes=10),
        heartbeat_timeout=timedelta(seconds=30),
        retry_policy=DEFAULT_RETRY_POLICY,
    )


@dataclass(frozen=True)
class TaskDefinition:
    """What ``@task`` recorded about a function.

    Attributes:
        name: The activity type name (the stable wire name), or the agent's name.
        config: The activity options used when a workflow awaits the task.
        fn: The undecorated function.
        tools: For an agent task (``@task(tools=[...])``), the tools it may use (``@task``
            functions and ``mcp_tools(...)`` sets); None for a plain task.
        inline: The body runs in the workflow (agent, strategy or budgeted task), not as an
            activity.
        why: For an inline task, the arguments that made it one (``"max_cost="``).
    """

    name: str
    config: ActivityConfig
    fn: Callable[..., Awaitable[object]]
    tools: tuple[AgentTool, ...] | None = None
    inline: bool = False
    why: str = ""

    def not_an_activity(self, where: str) -> InlineTaskError:
        """The error for an inline task given to ``where`` as if it were an activity."""
        return InlineTaskError(
            self.name,
            f"{where}: @task '{self.name}' has {self.why} so its body runs inside the workflow "
            "(it orchestrates; each model and tool call it makes is its own activity): it is "
            "not an activity. Call it from workflow code and register the @task functions it "
            "calls instead; see docs/what-runs-where.md",
        )


@dataclass(frozen=True)
class StrategySettings:
    """The strategy options of the inline task running now (read by ``strategies``)."""

    name: str
    strategy: str | None
    max_iters: int | None


STRATEGY: ContextVar[StrategySettings | None] = ContextVar("jamjet_strategy", default=None)

#: The tools of the agent task running now (read by ``agent.run``).
AGENT_TOOLS: ContextVar[tuple[AgentTool, ...] | None] = ContextVar(
    "jamjet_agent_tools", default=None
)


_DEFINITION_ATTR = "__jamjet_task__"


MemoryAccess = Literal["read", "write", "none"]

#: Per ``@task(memory=...)``: the memory calls (``MEMORY_SUBJECTS`` names) the agent may not make.
_MEMORY_BLOCKS: dict[str, tuple[str, ...]] = {
    "read": ("engram.write", "engram.forget"),
    "write": ("engram.forget",),
    "none": ("engram.*",),
}


def task_definition(obj: object) -> TaskDefinition | None:
    """The ``TaskDefinition`` of a ``@task`` function, or None for anything else."""
    defn = getattr(obj, _DEFINITION_ATTR, None)
    return defn if isinstance(defn, TaskDefinition) else None


def _validate_config(name: str, config: dict[str, object]) -> ActivityConfig:
    known = ActivityConfig.__annotations__
    for key in config:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known options: {sorted(known)}"
            raise ConfigError(f"@task '{name}': unknown option '{key}'; {hint}")
    for key in ("start_to_close_timeout", "heartbeat_timeout", "schedule_to_close_timeout"):
        value = config.get(key)
        if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
            raise ConfigError(
                f"@task '{name}': {key} must be a positive datetime.timedelta, got {value!r}"
            )
    merged: dict[str, object] = {**default_task_config(), **config}
    if (
        merged.get("start_to_close_timeout") is None
        and merged.get("schedule_to_close_timeout") is None
    ):
        raise ConfigError(
            f"@task '{name}': Temporal needs start_to_close_timeout or schedule_to_close_timeout; "
            "set one of them (or leave the default of 10 minutes)"
        )
    return typing.cast(ActivityConfig, merged)


@overload
def task(fn: Callable[P, Awaitable[R]], /) -> Callable[P, Awaitable[R]]: ...


@overload
def task(
    *,
    name: str | None = None,
    tools: Sequence[AgentTool] | None = None,
    strategy: Literal["reflection"] | None = None,
    max_iters: int | None = None,
    max_cost: float | str | Decimal | None = None,
    max_tokens: int | None = None,
    memory: MemoryAccess | None = None,
    **config: typing.Unpack[ActivityConfig],
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]: ...


def task(
    fn: Callable[P, Awaitable[R]] | None = None,
    /,
    *,
    name: str | None = None,
    tools: Sequence[AgentTool] | None = None,
    strategy: Literal["reflection"] | None = None,
    max_iters: int | None = None,
    max_cost: float | str | Decimal | None = None,
    max_tokens: int | None = None,
    memory: MemoryAccess | None = None,
    **config: typing.Unpack[ActivityConfig],
) -> Callable[P, Awaitable[R]] | Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Make an async function a crash-safe task (a Temporal activity).

    Inside a workflow, ``await my_task(x)`` schedules the activity and waits for its result;
    on a worker the body runs with automatic heartbeats; anywhere else the call just runs the
    body, so tasks unit-test like plain functions. Register tasks on a worker like activities:
    ``Worker(..., activities=[my_task])`` or ``JamJetPlugin(tasks=[my_task])``.

    With ``tools=[...]`` the function is an *agent task* instead: its body runs in the workflow
    (it only orchestrates), ``agent.run(...)`` inside it may use exactly those tools, and every
    model call and tool call it makes is its own activity, decided by the policy gate (scope
    ``agent:<name>``, a closed allow-list).

    Args:
        fn: The async function (when used as ``@task`` without parentheses).
        name: Activity type name. Defaults to the function's ``__name__``; set it explicitly to
            keep running workflows working across a rename.
        tools: Makes this an agent task allowed to use these tools and no other: ``@task``
            functions, and MCP servers' tools as ``mcp_tools("files", only=[...])`` (allowed
            as ``ALIAS.TOOL``).
        strategy: ``"reflection"``: the body's ``strategies.loop_until_confident(...)`` drafts,
            critiques and refines until confident, within ``max_iters`` and the budget.
        max_iters: Most iterations of the strategy's loop.
        max_cost: Budget in USD for every model call the body makes: each call is projected
            first and the task halts *before* a call that could cross it.
        max_tokens: Budget in tokens (input + output), enforced the same way.
        memory: What the agent task's own memory calls (``engram.*`` in its body) may do:
            ``"read"`` (``context_for``, ``facts``), ``"write"`` (also ``remember``,
            ``record``), ``"none"``; none of them allows ``forget``. Refused calls are
            recorded like refused tools (as ``engram.write``...). Default: whatever the
            operator's policy allows. Needs ``tools=`` (or another option that runs the body
            in the workflow).
        **config: Any ``temporalio.workflow.ActivityConfig`` option (``start_to_close_timeout``,
            ``heartbeat_timeout``, ``retry_policy``, ``task_queue``, ...), overriding
            ``default_task_config()``.

    Returns:
        The decorated function; same signature, also usable as an activity.

    Raises:
        ConfigError: The function is not ``async def`` or an option is invalid.
    """

    def decorate(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        task_name = name or getattr(func, "__name__", None)
        if not task_name:
            raise ConfigError("@task needs a name= for a callable without __name__")
        if not inspect.iscoroutinefunction(func):
            raise ConfigError(
                f"@task '{task_name}' must decorate an 'async def' function; wrap blocking "
                "code with 'await asyncio.to_thread(...)' inside it"
            )
        options = _validate_config(task_name, dict(config))
        budget = _budget(task_name, max_cost, max_tokens)
        if strategy is not None and strategy != "reflection":
            raise ConfigError(
                f"@task '{task_name}': unknown strategy {strategy!r}; use 'reflection'"
            )
        if max_iters is not None and max_iters < 1:
            raise ConfigError(f"@task '{task_name}': max_iters must be at least 1, got {max_iters}")
        if max_iters is not None and strategy is None:
            raise ConfigError(
                f"@task '{task_name}': max_iters= bounds a strategy's loop; add "
                "strategy='reflection' (or drop max_iters)"
            )
        if config and (tools is not None or budget is not None or strategy is not None):
            raise ConfigError(
                f"@task '{task_name}': {', '.join(sorted(config))} would be ignored: with "
                "tools=, strategy=, max_cost= or max_tokens= the body runs in the workflow, not "
                "as an activity; set activity options on the @task functions it calls"
            )
        if memory is not None and memory not in _MEMORY_BLOCKS:
            raise ConfigError(
                f"@task '{task_name}': memory={memory!r} is not one of 'read', 'write', 'none'"
            )
        if memory is not None and tools is None and budget is None and strategy is None:
            raise ConfigError(
                f"@task '{task_name}': memory= limits the memory calls an agent task's body "
                "makes in the workflow; this task's body runs as an activity, where memory "
                "calls are not the gate's (add tools=[...], or drop memory=)"
            )
        if tools is not None or budget is not None or strategy is not None:
            made_inline = [
                f"{arg}="
                for arg, value in (
                    ("tools", tools),
                    ("strategy", strategy),
                    ("max_cost", max_cost),
                    ("max_tokens", max_tokens),
                )
                if value is not None
            ]
            return _inline_task(
                task_name,
                func,
                options,
                why=", ".join(made_inline),
                tools=None if tools is None else tuple(tools),
                budget=budget,
                strategy=strategy,
                max_iters=max_iters,
                memory=memory,
            )
        signature = inspect.signature(func)
        return_type = typing.get_type_hints(func).get("return")

        @functools.wraps(func)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            if workflow.in_workflow():
                from jamjet_temporal.gate._workflow import (
                    named_arguments,  # the gate imports this module
                )

                # Activities take positional arguments only: bind keywords to their places.
                # By name too, for what approvers are shown if the policy asks for a human.
                bound = signature.bind(*args, **kwargs)
                with named_arguments(
                    lambda: to_jsonable_python(dict(bound.arguments), fallback=repr)
                ):
                    handle = workflow.start_activity(
                        task_name,
                        args=list(bound.args),
                        result_type=return_type,
                        **options,
                    )
                return typing.cast(R, await handle)
            if activity.in_activity() and activity.info().activity_type == task_name:
                async with auto_heartbeat():
                    return await func(*args, **kwargs)
            return await func(*args, **kwargs)

        activity.defn(name=task_name)(run)
        setattr(run, _DEFINITION_ATTR, TaskDefinition(task_name, options, func))
        return run

    return decorate(fn) if fn is not None else decorate


def _budget(name: str, max_cost: object, max_tokens: int | None) -> Budget | None:
    if max_cost is None and max_tokens is None:
        return None
    try:
        return Budget(
            max_cost=None if max_cost is None else Decimal(str(max_cost)), max_tokens=max_tokens
        )
    except (ValueError, ArithmeticError) as err:
        raise ConfigError(
            f"@task '{name}': max_cost must be a non-negative amount in USD and max_tokens a "
            f"positive integer ({err})"
        ) from None


def _inline_task(
    name: str,
    func: Callable[P, Awaitable[R]],
    options: ActivityConfig,
    *,
    why: str,
    tools: tuple[AgentTool, ...] | None,
    budget: Budget | None,
    strategy: str | None,
    max_iters: int | None,
    memory: MemoryAccess | None = None,
) -> Callable[P, Awaitable[R]]:
    """A task whose body runs in the workflow: it orchestrates calls, each its own activity."""
    from jamjet_temporal.budget._workflow import budget_scope
    from jamjet_temporal.gate._workflow import policy_scope  # the gate imports this module
    from jamjet_temporal.policy import Policy

    tool_names: list[str] = []
    for tool in tools or ():
        if isinstance(tool, McpTools):
            tool_names += tool.globs
            continue
        defn = task_definition(tool)
        if defn is None or defn.inline:
            raise ConfigError(
                f"@task '{name}': tools=[...] takes @task functions; {tool!r} is not one "
                "(decorate it with @task)"
            )
        tool_names.append(defn.name)
    allow_list = (
        None
        if tools is None
        else Policy.allow_list(tool_names, source=f"@task(tools=...) of '{name}'")
    )
    if memory is not None:
        # The memory calls the agent may not make, in its own scope (an allow-list of tools
        # says nothing about memory: see decide_memory).
        blocked = _MEMORY_BLOCKS[memory]
        source = f"@task(memory={memory!r}) of '{name}'"
        allow_list = (
            Policy(blocked_tools=blocked, source=source)
            if allow_list is None
            else Policy(rules=allow_list.rules, closed=True, blocked_tools=blocked, source=source)
        )
    settings = StrategySettings(name=name, strategy=strategy, max_iters=max_iters)

    @functools.wraps(func)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        tools_token = AGENT_TOOLS.set(tools) if tools is not None else None
        strategy_token = STRATEGY.set(settings)
        try:
            with (
                policy_scope(f"agent:{name}", allow_list, agent=name),
                budget_scope(f"task:{name}", budget),
            ):
                return await func(*args, **kwargs)
        except RestrictedWorkflowAccessError as err:
            # Failing the run beats Temporal's default here: a sandbox refusal fails the
            # workflow *task*, retried forever, and the run looks hung.
            raise InlineTaskError(
                name,
                f"@task '{name}' has {why} so its body runs inside the workflow (it orchestrates; "
                f"each model and tool call it makes is its own activity), where Temporal's "
                f"sandbox refused: {err}. Move that I/O into a plain @task (an activity) and "
                "await it from here; see docs/what-runs-where.md",
            ) from None
        finally:
            STRATEGY.reset(strategy_token)
            if tools_token is not None:
                AGENT_TOOLS.reset(tools_token)

    setattr(run, _DEFINITION_ATTR, TaskDefinition(name, options, func, tools, inline=True, why=why))
    return run
