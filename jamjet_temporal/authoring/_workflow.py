"""``@workflow``: an async function that runs as a Temporal workflow.

The function body runs inside the workflow sandbox, so it follows Temporal's rules: no I/O,
clocks or randomness except through ``temporalio.workflow``; side effects belong in tasks.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from temporalio import workflow as temporal_workflow

from jamjet_temporal.errors import ConfigError

R = TypeVar("R")


@overload
def workflow(fn: Callable[..., Awaitable[R]], /) -> type: ...


@overload
def workflow(*, name: str | None = None) -> Callable[[Callable[..., Awaitable[R]]], type]: ...


def workflow(
    fn: Callable[..., Awaitable[R]] | None = None, /, *, name: str | None = None
) -> type | Callable[[Callable[..., Awaitable[R]]], type]:
    """Make an async function a Temporal workflow.

    The result is an ordinary ``@workflow.defn`` class whose ``run`` method calls the function,
    so it is registered and started like any Temporal workflow::

        Worker(client, task_queue="q", workflows=[pipeline], activities=[fetch_data, analyze])
        await client.execute_workflow(pipeline.run, id="exec_1", task_queue="q")

    Args:
        fn: The async function (when used as ``@workflow`` without parentheses).
        name: Workflow type name. Defaults to the function's ``__name__``; set it explicitly to
            keep running workflows working across a rename.

    Returns:
        The workflow class, named like the function and importable from the same module (the
        sandbox re-imports it by that name).

    Raises:
        ConfigError: The function is not ``async def``.
    """

    def decorate(func: Callable[..., Awaitable[R]]) -> type:
        wf_name = name or func.__name__
        if not inspect.iscoroutinefunction(func):
            raise ConfigError(f"@workflow '{wf_name}' must decorate an 'async def' function")

        async def run(self: Any, *args: Any) -> Any:
            return await func(*args)

        # Temporal reads argument and return types from the run method's signature and hints;
        # take them from the user's function so payloads convert to the declared types.
        params = list(inspect.signature(func).parameters.values())
        self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        run.__signature__ = inspect.signature(func).replace(  # type: ignore[attr-defined]
            parameters=[self_param, *params]
        )
        run.__annotations__ = dict(func.__annotations__)
        run.__module__ = func.__module__
        run.__qualname__ = f"{func.__qualname__}.run"
        run.__doc__ = func.__doc__
        run.__wrapped__ = func  # type: ignore[attr-defined]
        cls = type(
            func.__name__,
            (),
            {
                "run": temporal_workflow.run(run),
                "__module__": func.__module__,
                "__qualname__": func.__qualname__,
                "__doc__": func.__doc__,
            },
        )
        return temporal_workflow.defn(name=wf_name)(cls)

    return decorate(fn) if fn is not None else decorate
