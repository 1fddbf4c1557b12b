"""``jamjet a2a serve`` (a workflow or pipeline as an A2A agent) and ``jamjet a2a keygen``."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from temporalio.worker import Worker

from jamjet_temporal.cli._client import cli_connect
from jamjet_temporal.cli._format import fail, say
from jamjet_temporal.cli._options import (
    AddressOption,
    ApprovalsOption,
    AuditStoreOption,
    PolicyOption,
)
from jamjet_temporal.cli._runtime import Governance, runtime
from jamjet_temporal.cli._tools import (
    activities_of,
    agent_specs,
    default_tool_modules,
    load_tools,
    tool_signatures,
)
from jamjet_temporal.errors import ConfigError, JamJetError
from jamjet_temporal.plugin._config import DEFAULT_AUDIT_STORE, JamJetConfig
from jamjet_temporal.plugin._plugin import JamJetPlugin

DEFAULT_PORT = 9100


class _Target:
    """One thing served: its skill, the workflow class a worker registers, its tools."""

    def __init__(self, skill: Any, workflow: type | None, tools: list[Callable[..., Any]]):
        self.skill = skill
        self.workflow = workflow
        self.tools = tools


def _import_module(name: str) -> Any:
    if name.endswith(".py"):
        path = Path(name).resolve()
        if not path.exists():
            raise ConfigError(f"{name} does not exist")
        # Imported by its name, from its folder: Temporal's sandbox imports the workflow's
        # module again by that name.
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        name = path.stem
    elif os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ConfigError(f"cannot import {name}: {err}") from None


def load_target(spec: str, tools: list[str] | None) -> _Target:
    """``MODULE:WORKFLOW`` (MODULE dotted or a .py file) or a pipeline file."""
    from jamjet_temporal.a2a._skills import pipeline_skill, workflow_skill

    if spec.endswith((".yaml", ".yml")) and ":" not in spec:
        from jamjet_temporal.pipeline import load_pipeline

        path = Path(spec)
        pipeline = load_pipeline(path)
        modules = tools if tools is not None else default_tool_modules(path, pipeline)
        loaded = load_tools(modules)
        skill = pipeline_skill(
            pipeline,
            tool_params=tool_signatures(pipeline, loaded),
            agents=agent_specs(pipeline, loaded),
        )
        return _Target(skill, None, loaded)
    module_name, colon, attr = spec.rpartition(":")
    if not colon or not module_name or not attr:
        raise ConfigError(
            f"{spec!r}: give MODULE:WORKFLOW (e.g. myagents.research:research, or "
            "agents.py:research) or a pipeline .yaml file"
        )
    module = _import_module(module_name)
    target = getattr(module, attr, None)
    if not isinstance(target, type):
        raise ConfigError(
            f"{module_name} has no workflow {attr!r} (a @workflow function or a "
            "@workflow.defn class)"
        )
    loaded = load_tools([module.__name__])
    loaded += load_tools(tools or [])
    return _Target(workflow_skill(target), target, loaded)


def _trusted(trust: list[str], file: Path | None) -> dict[str, str] | None:
    callers: dict[str, str] = {}
    if file is not None:
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"{file}: cannot read trusted callers: {err}") from None
        if isinstance(data, dict) and isinstance(data.get("callers"), dict):
            data = data["callers"]
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ConfigError(
                f"{file}: trusted callers are a mapping of caller name to public key, e.g. "
                "callers: {coordinator: 'ed25519:...'}"
            )
        callers.update({str(name): value for name, value in data.items()})
    for entry in trust:
        name, equals, key = entry.partition("=")
        if not equals or not name or not key:
            raise ConfigError(f"--trust {entry!r}: give NAME=PUBLIC_KEY (ed25519:... or a file)")
        if not key.startswith("ed25519:") and Path(key).expanduser().is_file():
            key = Path(key).expanduser().read_text(encoding="utf-8").strip()
        callers[name] = key
    return callers or None


def a2a_serve(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="What to serve, each a skill: MODULE:WORKFLOW (a @workflow function or a "
            "@workflow.defn class; MODULE dotted or a .py file) or a pipeline .yaml file."
        ),
    ],
    port: Annotated[int, typer.Option(help="HTTP port.")] = DEFAULT_PORT,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    url: Annotated[
        str | None,
        typer.Option(
            help="The agent's public URL (default http://HOST:PORT): its card points there, "
            "and callers' tokens must be for it."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="The agent's name on its card.")] = None,
    description: Annotated[
        str | None, typer.Option(help="The agent's description on its card.")
    ] = None,
    trust: Annotated[
        list[str] | None,
        typer.Option(
            "--trust",
            help="A caller this agent serves: NAME=PUBLIC_KEY (ed25519:..., or a file holding "
            "it; `jamjet a2a keygen NAME` prints it). Repeatable.",
        ),
    ] = None,
    trusted_callers: Annotated[
        Path | None,
        typer.Option(help="YAML file: callers: {NAME: PUBLIC_KEY, ...}."),
    ] = None,
    anonymous: Annotated[
        bool,
        typer.Option(
            "--anonymous",
            help="Serve without caller identity: anyone who reaches the URL may start tasks.",
        ),
    ] = False,
    max_cost: Annotated[
        float | None,
        typer.Option(help="Most one task may spend, in USD, whatever its caller's slice says."),
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Most tokens one task may use.")] = None,
    task_queue: Annotated[
        str | None,
        typer.Option(help="Task queue of the tasks' workflows (default jamjet-a2a-<name>)."),
    ] = None,
    worker: Annotated[
        bool,
        typer.Option(help="Run a worker for the tasks in this process (else: your own)."),
    ] = True,
    tools: Annotated[
        list[str] | None,
        typer.Option(
            "--tools",
            help="Module or .py file with @task tools (repeatable); default: the workflow's "
            "module, and tools.py beside a pipeline.",
        ),
    ] = None,
    signer: Annotated[
        Path | None,
        typer.Option(
            help="Key of a client the approvals config trusts to say whom runs act for: each "
            "task's run then acts for the user its caller's token names."
        ),
    ] = None,
    address: AddressOption = None,
    policy: PolicyOption = None,
    audit_store: AuditStoreOption = DEFAULT_AUDIT_STORE,
    approvals: ApprovalsOption = None,
) -> None:
    """Serve workflows or pipelines as an A2A agent: each task a durable Temporal workflow."""
    from jamjet_temporal.approvals._identity import load_identity

    try:
        loaded = [load_target(target, tools) for target in targets]
        callers = _trusted(trust or [], trusted_callers)
        if callers is None and not anonymous:
            raise fail(
                "whom does this agent serve? give --trust NAME=PUBLIC_KEY (or "
                "--trusted-callers FILE); --anonymous serves anyone who reaches the URL"
            )
        pipelines = tuple(t for t in targets if t.endswith((".yaml", ".yml")) and ":" not in t)
        config = Governance(policy, audit_store, approvals, pipelines).config()
        identity = load_identity(signer) if signer is not None else None
    except JamJetError as err:
        raise fail(str(err)) from None
    logging.getLogger("temporalio").setLevel(logging.ERROR)
    public = (url or f"http://{host}:{port}").rstrip("/")
    try:
        asyncio.run(
            _serve(
                loaded,
                config,
                public,
                host=host,
                port=port,
                name=name,
                description=description,
                callers=callers,
                max_cost=max_cost,
                max_tokens=max_tokens,
                task_queue=task_queue,
                with_worker=worker,
                address=address,
                signer=identity,
            )
        )
    except JamJetError as err:
        raise fail(str(err)) from None
    except typer.Exit:
        raise  # already said (a click Exit is a RuntimeError too)
    except RuntimeError as err:
        raise fail(f"cannot connect to Temporal: {err}") from None


async def _serve(
    targets: list[_Target],
    config: JamJetConfig,
    url: str,
    *,
    host: str,
    port: int,
    name: str | None,
    description: str | None,
    callers: dict[str, str] | None,
    max_cost: float | None,
    max_tokens: int | None,
    task_queue: str | None,
    with_worker: bool,
    address: str | None,
    signer: Any,
) -> None:
    from jamjet_temporal.a2a._server import A2AServer
    from jamjet_temporal.authoring._task import task_definition

    tools: dict[str, Callable[..., Any]] = {}
    for target in targets:
        for tool in activities_of(target.tools):
            defn = task_definition(tool)
            tools.setdefault(defn.name if defn is not None else repr(tool), tool)
    async with runtime(address) as env:
        client = await cli_connect(
            env.address, plugins=[JamJetPlugin(config, tasks=list(tools.values()))]
        )
        server = A2AServer(
            client,
            [target.skill for target in targets],
            url=url,
            task_queue=task_queue or "jamjet-a2a",
            name=name,
            description=description,
            trusted_callers=callers,
            allow_anonymous=callers is None,
            max_cost=max_cost,
            max_tokens=max_tokens,
            audit_store=config.audit.store,
            audit_key=str(config.audit.key) if config.audit.key else None,
            signer=signer,
        )
        if task_queue is None:
            server.task_queue = f"jamjet-a2a-{server.name}"
        async with contextlib.AsyncExitStack() as stack:
            if with_worker:
                workflows = [t.workflow for t in targets if t.workflow is not None]
                await stack.enter_async_context(
                    Worker(
                        client,
                        task_queue=server.task_queue,
                        workflows=workflows,
                        # After a restart, a run's next task waits this long for the old
                        # process's cache before this one takes it.
                        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
                    )
                )
            skills = ", ".join(server.skills)
            who = f"callers {', '.join(server.trusted.names)}" if server.trusted else "anyone"
            say(f"▸ A2A agent '{server.name}' at {url} · skills: {skills} · serves {who}")
            say(f"▸ Tasks run as workflows on task queue '{server.task_queue}'")
            await server.serve(host=host, port=port)


def a2a_keygen(
    agent: Annotated[str, typer.Argument(help="The calling agent's name (the tokens' subject).")],
    out: Annotated[
        Path | None,
        typer.Option(help="Key file to write (default ~/.jamjet/keys/AGENT.a2a.key)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing key file.")] = False,
) -> None:
    """Make a caller key for delegating to agents that check identity; print its public key."""
    from jamjet_temporal.a2a._token import generate_caller_key
    from jamjet_temporal.approvals._identity import default_keys_dir

    path = out or default_keys_dir() / f"{agent}.a2a.key"
    try:
        identity = generate_caller_key(agent, path, overwrite=overwrite)
    except JamJetError as err:
        raise fail(str(err)) from None
    say(f"▸ Caller key for '{agent}' written to {path} (mode 600)")
    say(f"  public key: {identity.public_key}")
    say(f"  callees trust it with: jamjet a2a serve ... --trust {agent}={identity.public_key}")
    say(f"  workers sign with it:  auth: {{type: signed, key_file: {path}}}")
