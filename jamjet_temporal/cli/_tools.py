"""A pipeline's tools: importing their modules and checking every tool node against them."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from jamjet_temporal.authoring._agent import tool_schema
from jamjet_temporal.authoring._task import task_definition
from jamjet_temporal.errors import JamJetError, PipelineSpecError
from jamjet_temporal.pipeline import PipelineSpec
from jamjet_temporal.pipeline._nodes import AgentNode, ToolNode
from jamjet_temporal.pipeline._workflow import AgentSpec, AgentTool, ToolSignature


def load_tools(specs: list[str]) -> list[Callable[..., Any]]:
    """Import tool modules (dotted names or .py paths) and collect their ``@task`` functions.

    Agents (``@task(tools=...)``) are collected too, with the tools they use; workers register
    :func:`activities_of` the result.
    """
    tools: dict[str, Callable[..., Any]] = {}
    for spec in specs:
        module = _import(spec)
        for value in vars(module).values():
            defn = task_definition(value)
            if defn is None:
                continue
            tools.setdefault(defn.name, value)
            for used in defn.tools or ():
                used_defn = task_definition(used)
                if used_defn is not None and callable(used):  # not an MCP server's tools
                    tools.setdefault(used_defn.name, used)
    return list(tools.values())


def activities_of(tools: list[Callable[..., Any]]) -> list[Callable[..., Any]]:
    """The tools that run as activities (agents and other inline tasks run in the workflow)."""
    return [t for t in tools if (d := task_definition(t)) is not None and not d.inline]


def _import(spec: str) -> ModuleType:
    path = Path(spec)
    if spec.endswith(".py"):
        if not path.exists():
            raise JamJetError(f"tool module {spec} does not exist")
        # One module per file: every project's tools.py has the same stem.
        where = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        name = f"jamjet_tools_{path.stem}_{where}"
        if name in sys.modules:
            return sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module
    # A dotted name is looked up from the current directory first, as `python -m` does (the
    # `jamjet` script's own folder is what Python puts on the path, not the user's).
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as err:
        if err.name is None or not (spec == err.name or spec.startswith(f"{err.name}.")):
            # The module exists; something it imports does not.
            raise JamJetError(f"tool module {spec} cannot be imported: {err}") from None
        as_file = spec.replace(".", "/") + ".py"
        raise JamJetError(
            f"tool module {spec} was not found (looked in the current directory {here} and "
            f"the installed packages); give its file instead, e.g. --tools {as_file}"
        ) from None


def default_tool_modules(pipeline: Path, spec: PipelineSpec) -> list[str]:
    """``tools.py`` beside the pipeline file, when there is one and the pipeline calls tools."""
    candidate = pipeline.parent / "tools.py"
    return [str(candidate)] if needs_tools(spec) and candidate.exists() else []


def needs_tools(spec: PipelineSpec) -> bool:
    """Whether the pipeline calls ``@task`` tools or agents (not only models and MCP servers)."""
    return any(
        (isinstance(node, ToolNode) and node.server is None) or isinstance(node, AgentNode)
        for node in spec.nodes.values()
    )


def agent_specs(spec: PipelineSpec, tools: list[Callable[..., Any]]) -> dict[str, AgentSpec]:
    """The agents the pipeline's ``agent`` nodes name: each an ``@task(tools=...)`` function."""
    by_name = {d.name: d for t in tools if (d := task_definition(t)) is not None}
    agents: dict[str, AgentSpec] = {}
    for node_id, node in spec.nodes.items():
        if not isinstance(node, AgentNode) or node.agent_ref in agents:
            continue
        defn = by_name.get(node.agent_ref)
        if defn is None or defn.tools is None:
            known = sorted(name for name, d in by_name.items() if d.tools is not None)
            raise PipelineSpecError(
                f"agent '{node.agent_ref}' is not registered (agents loaded: "
                f"{', '.join(known) or 'none'})",
                file=spec.source,
                node=node_id,
                fix="define it with @task(tools=[...]) in tools.py beside the pipeline, or pass "
                "--tools MODULE",
            )
        offered = []
        for tool in defn.tools:
            tool_defn = task_definition(tool)
            if tool_defn is None:
                raise PipelineSpecError(
                    f"agent '{node.agent_ref}' offers MCP tools ({tool!r}); a pipeline's agent "
                    "nodes take @task tools only",
                    file=spec.source,
                    node=node_id,
                    fix="call the MCP tools from mcp_tool nodes, or run the agent from a "
                    "Python workflow",
                )
            params = list(inspect.signature(tool_defn.fn).parameters.values())
            offered.append(
                AgentTool(
                    name=tool_defn.name,
                    signature=ToolSignature(
                        params=[p.name for p in params],
                        required=sum(1 for p in params if p.default is inspect.Parameter.empty),
                    ),
                    schema=tool_schema(tool_defn),
                )
            )
        agents[node.agent_ref] = AgentSpec(
            name=defn.name, tools=offered, instructions=inspect.getdoc(defn.fn)
        )
    return agents


def tool_signatures(
    spec: PipelineSpec, tools: list[Callable[..., Any]]
) -> dict[str, ToolSignature]:
    """Check every tool node names a loaded tool; return how each tool takes its arguments."""
    by_name = {d.name: (d, t) for t in tools if (d := task_definition(t)) is not None}
    signatures: dict[str, ToolSignature] = {}
    for node_id, node in spec.nodes.items():
        if not isinstance(node, ToolNode) or node.server is not None:
            continue
        if node.tool not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise PipelineSpecError(
                f"tool '{node.tool}' is not registered (loaded tools: {known})",
                file=spec.source,
                node=node_id,
                fix="define it with @task in tools.py beside the pipeline, or pass --tools MODULE",
            )
        params = list(inspect.signature(by_name[node.tool][0].fn).parameters.values())
        names = [p.name for p in params]
        unknown = sorted(set(node.arguments) - set(names))
        if unknown:
            raise PipelineSpecError(
                f"tool '{node.tool}' has no argument(s) {unknown}; it takes {names}",
                file=spec.source,
                node=node_id,
                fix="rename the argument(s) under 'arguments:'",
            )
        required = sum(1 for p in params if p.default is inspect.Parameter.empty)
        signatures[node.tool] = ToolSignature(params=names, required=required)
    return signatures
