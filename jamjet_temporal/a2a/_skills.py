"""What an A2A server serves: skills, each a workflow or a YAML pipeline (client side).

A skill is one Temporal workflow type the server starts for each A2A task: a ``@workflow``
function, any ``@workflow.defn`` class, or a YAML pipeline (``PIPELINE_WORKFLOW`` with its
spec). Its card entry (id, name, description) comes from the workflow (its type name and
docstring) or the pipeline (``workflow.id``, ``name``, ``description``).

A message becomes the workflow's arguments:

* its input is the message's one data part (any JSON), or its text parts joined by newlines;
* a workflow without parameters takes no input; one with one parameter takes the input; one
  with several takes an object whose keys are its parameter names (those with defaults may be
  left out), in their order;
* a pipeline takes an object (its initial state, checked against ``state_schema``); a text
  goes to the schema's first ``string`` field.

Each argument is checked against the parameter's type before the run starts (a payload the
workflow cannot decode would fail its first task over and over), and a mismatch is the
protocol's ``InvalidParams`` error, naming the parameter.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import JsonValue, TypeAdapter, ValidationError
from temporalio import workflow

from jamjet_temporal.errors import ConfigError, JamJetError

__all__ = [
    "InputProblem",
    "ServedSkill",
    "pipeline_skill",
    "served_skill",
    "workflow_skill",
]


class InputProblem(ValueError):
    """A message's input does not fit the skill (the message says what it takes)."""


@dataclass(frozen=True)
class _Param:
    name: str
    hint: Any
    has_default: bool


@dataclass(frozen=True)
class ServedSkill:
    """One skill of a served agent: the workflow started for each task.

    Attributes:
        id: The skill's id on the card (what a message's ``metadata.skill`` names).
        name: Its name for people.
        description: What it does (the workflow's docstring, the pipeline's description).
        workflow: The workflow type name the server starts.
        kind: ``workflow`` or ``pipeline``.
        arguments: The message's input to the run's arguments (raises :class:`InputProblem`).
        output: The run's result to the task's result (JSON).
        tags: The card's tags for the skill.
        workflow_class: The workflow class, when there is one (what a worker registers).
    """

    id: str
    name: str
    description: str
    workflow: str
    kind: Literal["workflow", "pipeline"]
    arguments: Callable[[JsonValue], list[Any]]
    output: Callable[[Any], JsonValue] = field(default=lambda result: result)
    tags: tuple[str, ...] = ()
    workflow_class: type | None = None


def _first_paragraph(text: str | None) -> str:
    if not text:
        return ""
    return inspect.cleandoc(text).split("\n\n", 1)[0].replace("\n", " ").strip()


def _params(cls: type) -> list[_Param]:
    run = getattr(cls, "run", None)
    if run is None:
        raise ConfigError(f"{cls.__qualname__} has no run method")
    target = getattr(run, "__wrapped__", run)  # @workflow: the user's function
    signature = inspect.signature(run)
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: the values go unchecked
        hints = {}
    params = [p for p in signature.parameters.values() if p.name != "self"]
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.KEYWORD_ONLY):
            raise ConfigError(
                f"workflow {cls.__qualname__}: parameter '{param.name}' is not positional; a "
                "served workflow takes positional parameters only"
            )
    return [
        _Param(p.name, hints.get(p.name, Any), p.default is not inspect.Parameter.empty)
        for p in params
    ]


def _checked(param: _Param, value: JsonValue) -> JsonValue:
    if param.hint is Any:
        return value
    try:
        TypeAdapter(param.hint).validate_python(value)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InputProblem(
            f"'{param.name}'{f' ({where})' if where else ''}: {first['msg']}"
        ) from None
    except Exception:  # a hint pydantic cannot check (a plain class): the workflow decides
        return value
    return value


def workflow_skill(
    cls: type, *, description: str | None = None, tags: tuple[str, ...] = ()
) -> ServedSkill:
    """The skill that serves a workflow class (``@workflow`` or ``@workflow.defn``).

    Raises:
        ConfigError: ``cls`` is not a workflow class, or its parameters are not positional.
    """
    try:
        defn = workflow._Definition.must_from_class(cls)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{cls!r} is not a workflow: serve a @workflow function or a @workflow.defn class"
        ) from None
    name = defn.name
    if name is None:
        raise ConfigError(f"{cls.__qualname__} is a dynamic workflow: it cannot be served")
    params = _params(cls)
    shown = ", ".join(p.name for p in params)

    def arguments(value: JsonValue) -> list[Any]:
        if not params:
            if value not in (None, "", {}):
                raise InputProblem(f"skill '{name}' takes no input")
            return []
        if len(params) == 1:
            return [_checked(params[0], value)]
        if not isinstance(value, dict):
            raise InputProblem(
                f"skill '{name}' takes an object with {shown} (one data part), got "
                f"{type(value).__name__}"
            )
        unknown = sorted(set(value) - {p.name for p in params})
        if unknown:
            raise InputProblem(f"skill '{name}' takes {shown}; unknown: {', '.join(unknown)}")
        args: list[Any] = []
        for index, param in enumerate(params):
            if param.name in value:
                if len(args) < index:
                    skipped = params[len(args)].name
                    raise InputProblem(
                        f"skill '{name}': give '{skipped}' too when giving '{param.name}' "
                        "(arguments are positional)"
                    )
                args.append(_checked(param, value[param.name]))
            elif not param.has_default:
                raise InputProblem(f"skill '{name}' needs '{param.name}' (it takes {shown})")
        return args

    doc = defn.run_fn.__doc__ or cls.__doc__
    return ServedSkill(
        id=name,
        name=name,
        description=description or _first_paragraph(doc) or f"the {name} workflow",
        workflow=name,
        kind="workflow",
        arguments=arguments,
        tags=tags,
        workflow_class=cls,
    )


def pipeline_skill(
    spec: Any,
    *,
    tool_params: Mapping[str, Any] | None = None,
    agents: Mapping[str, Any] | None = None,
    tags: tuple[str, ...] = (),
) -> ServedSkill:
    """The skill that serves a YAML pipeline (its ``PipelineSpec``).

    Args:
        spec: The loaded pipeline (``load_pipeline``).
        tool_params: Its tools' parameter names (``PipelineRun.tool_params``), as ``jamjet
            run`` passes them.
        agents: The agents its ``agent`` nodes name (``PipelineRun.agents``).
        tags: The card's tags for the skill.
    """
    from jamjet_temporal.pipeline import PIPELINE_WORKFLOW, PipelineRun
    from jamjet_temporal.pipeline._spec import PipelineSpec, check_input

    if not isinstance(spec, PipelineSpec):
        raise ConfigError(f"pipeline_skill() takes a PipelineSpec, got {type(spec).__name__}")
    meta = spec.workflow
    schema = meta.state_schema or {}
    properties = schema.get("properties")
    text_field = next(
        (
            name
            for name, prop in (properties.items() if isinstance(properties, dict) else ())
            if isinstance(prop, dict) and prop.get("type") == "string"
        ),
        None,
    )

    def arguments(value: JsonValue) -> list[Any]:
        if isinstance(value, str):
            if text_field is None:
                raise InputProblem(
                    f"pipeline '{meta.id}' takes an object (its state), not text: its state "
                    "schema has no string field"
                )
            value = {text_field: value}
        elif value is None:
            value = {}
        if not isinstance(value, dict):
            raise InputProblem(
                f"pipeline '{meta.id}' takes an object (its initial state), got "
                f"{type(value).__name__}"
            )
        try:
            state = check_input(spec, value)
        except JamJetError as err:
            raise InputProblem(str(err)) from None
        run = PipelineRun(
            spec=spec,
            input=state,
            tool_params=dict(tool_params or {}),
            agents=dict(agents or {}),
        )
        return [run]

    def output(result: Any) -> JsonValue:
        if isinstance(result, dict) and "state" in result:
            produced: JsonValue = result.get("output")
            state: JsonValue = result["state"]
            return produced if produced is not None else state
        shown: JsonValue = result
        return shown

    return ServedSkill(
        id=meta.id,
        name=meta.name or meta.id,
        description=meta.description or meta.name or f"the {meta.id} pipeline",
        workflow=PIPELINE_WORKFLOW,
        kind="pipeline",
        arguments=arguments,
        output=output,
        tags=tags,
    )


def served_skill(target: object) -> ServedSkill:
    """A skill from what ``A2AServer`` is given: a ``ServedSkill``, a workflow class or a
    ``PipelineSpec``."""
    if isinstance(target, ServedSkill):
        return target
    if isinstance(target, type):
        return workflow_skill(target)
    from jamjet_temporal.pipeline._spec import PipelineSpec

    if isinstance(target, PipelineSpec):
        return pipeline_skill(target)
    raise ConfigError(
        f"cannot serve {target!r}: give a @workflow, a @workflow.defn class, a PipelineSpec or "
        "a ServedSkill"
    )
