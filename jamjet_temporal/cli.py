"""The ``jamjet`` command line (client side): run pipelines and workers, the dev stack, runs."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Literal

import typer
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.service import RPCError
from temporalio.worker import Worker

from ._config import DEFAULT_AUDIT_STORE, JamJetConfig
from ._connect import connect, connect_config
from ._devserver import DEFAULT_UI_PORT, DevServer, is_listening, split_address
from ._history import read_history
from ._plugin import JamJetPlugin
from ._progress import CrashPlan, closing_lines, fmt_ms, follow
from ._storeurl import absolute_store_url
from ._task import task_definition
from .approvals._client import find_pending, sign, submit, survey_pending
from .approvals._identity import generate_identity, load_identity
from .approvals._workflow import DECIDE_SIGNAL
from .audit import (
    AuditEvent,
    ChainVerdict,
    PostgresAuditStore,
    open_store,
    read_bundle,
    verify_bundle,
)
from .audit import export as export_audit
from .audit._export import CATEGORIES
from .audit._keys import (
    checkpoint_marks_path,
    default_key_path,
    fingerprint,
    load_or_create_signing_key,
    load_trusted_keys,
    public_key_pem,
)
from .errors import JamJetError, PipelineSpecError
from .pipeline import PIPELINE_WORKFLOW, PipelineResult, PipelineRun, PipelineSpec, load_pipeline
from .pipeline._spec import ToolNode
from .pipeline._workflow import ToolSignature
from .policy import load_policy

app = typer.Typer(
    help="jamjet: crash-proof, governable AI agents on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_TASK_QUEUE = "jamjet"
STATE_DIR = Path(".jamjet")


def say(line: str) -> None:
    """Print one progress line immediately (the demo is watched live)."""
    print(line, flush=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``✗ message`` on stderr and return the exit to raise."""
    print(f"✗ {message}", file=sys.stderr, flush=True)
    return typer.Exit(code)


# --------------------------------------------------------------------------- tools


def load_tools(specs: list[str]) -> list[Callable[..., Any]]:
    """Import tool modules (dotted names or .py paths) and collect their ``@task`` functions."""
    tools: dict[str, Callable[..., Any]] = {}
    for spec in specs:
        module = _import(spec)
        for value in vars(module).values():
            defn = task_definition(value)
            if defn is not None:
                tools.setdefault(defn.name, value)
    return list(tools.values())


def _import(spec: str) -> ModuleType:
    path = Path(spec)
    if spec.endswith(".py"):
        if not path.exists():
            raise JamJetError(f"tool module {spec} does not exist")
        name = f"jamjet_tools_{path.stem}"
        if name in sys.modules:
            return sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module
    return importlib.import_module(spec)


def default_tool_modules(pipeline: Path, spec: PipelineSpec) -> list[str]:
    """``tools.py`` beside the pipeline file, when there is one and the pipeline calls tools."""
    candidate = pipeline.parent / "tools.py"
    calls_tools = any(isinstance(node, ToolNode) for node in spec.nodes.values())
    return [str(candidate)] if calls_tools and candidate.exists() else []


def tool_signatures(
    spec: PipelineSpec, tools: list[Callable[..., Any]]
) -> dict[str, ToolSignature]:
    """Check every tool node names a loaded tool; return how each tool takes its arguments."""
    by_name = {d.name: (d, t) for t in tools if (d := task_definition(t)) is not None}
    signatures: dict[str, ToolSignature] = {}
    for node_id, node in spec.nodes.items():
        if not isinstance(node, ToolNode):
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


# --------------------------------------------------------------------------- runtime


@dataclass
class Runtime:
    """Where Temporal lives for this command."""

    address: str


@contextlib.asynccontextmanager
async def runtime(
    address: str | None, *, embedded: bool = True, model: bool = True, model_latency_ms: int = 0
) -> AsyncIterator[Runtime]:
    """Reach Temporal (starting an embedded dev server if none answers locally) and a model.

    The local model server starts when neither ``OPENAI_API_KEY`` nor ``OPENAI_BASE_URL`` is
    set; its URL is exported as ``OPENAI_BASE_URL`` so workers started from here use it.
    """
    target = str(connect_config(address)["target_host"])
    server: DevServer | None = None
    model_server: Any = None
    try:
        if not is_listening(target):
            host, port = split_address(target)
            if not embedded or host not in ("127.0.0.1", "localhost"):
                raise fail(
                    f"no Temporal server answers at {target}; start one with ./dev-server.sh "
                    "or 'jamjet dev', or set TEMPORAL_ADDRESS"
                )
            ui = DEFAULT_UI_PORT if not is_listening(f"127.0.0.1:{DEFAULT_UI_PORT}") else None
            server = DevServer(
                port=port,
                db_file=STATE_DIR / "temporal.db",
                ui_port=ui,
                log_file=STATE_DIR / "temporal.log",
            )
            await server.astart()
            ui_text = f" · Web UI http://127.0.0.1:{ui}" if ui else ""
            say(f"▸ Started embedded Temporal dev server on {target}{ui_text}")
        base_url = os.environ.get("OPENAI_BASE_URL")
        if model and not os.environ.get("OPENAI_API_KEY") and not base_url:
            from .modelserver import ModelServer

            model_server = ModelServer(latency_ms=model_latency_ms)
            await model_server.start()
            base_url = str(model_server.base_url)
            os.environ["OPENAI_BASE_URL"] = base_url
            say(f"▸ Local model server at {base_url} (no OPENAI_API_KEY set)")
        yield Runtime(address=target)
    finally:
        if model_server is not None:
            await model_server.stop()
            os.environ.pop("OPENAI_BASE_URL", None)
        if server is not None:
            await server.astop()


def _worker_cmd(
    tools: list[str], task_queue: str, identity: str, governance: Governance
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "jamjet_temporal",
        "worker",
        "--task-queue",
        task_queue,
        "--identity",
        identity,
    ]
    for module in tools:
        cmd += ["--tools", module]
    if governance.policy:
        cmd += ["--policy", governance.policy]
    cmd += ["--audit-store", governance.audit_store]
    return cmd


@dataclass(frozen=True)
class Governance:
    """The policy file and audit store the command's workers use."""

    policy: str | None
    audit_store: str

    def config(self) -> JamJetConfig:
        """The plugin config (loads and validates the policy file).

        The audit store is the one ``--audit-store`` names (its default documented there),
        made absolute so every worker of the command writes to the same file.
        """
        policy = load_policy(self.policy) if self.policy else None
        store = None
        if self.audit_store:
            store = absolute_store_url(
                self.audit_store, what="audit store", fix="give --audit-store sqlite:///PATH"
            )
        return JamJetConfig(policy=policy, audit_store=store)


PolicyOption = Annotated[
    str | None,
    typer.Option("--policy", help="Tool policy file (YAML) for every run on this worker."),
]
AuditOption = Annotated[
    str,
    typer.Option(
        "--audit-store",
        envvar="JAMJET_AUDIT_STORE",
        help="Audit trail: sqlite:///path or postgresql://...; '' turns it off.",
    ),
]


@contextlib.contextmanager
def _child(cmd: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


# --------------------------------------------------------------------------- commands


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Pipeline YAML file.")],
    input: Annotated[str, typer.Option("--input", help="Initial state as a JSON object.")] = "{}",
    tools: Annotated[
        list[str] | None,
        typer.Option(
            "--tools",
            help="Module or .py file with @task tools (repeatable); "
            "default: tools.py beside the pipeline.",
        ),
    ] = None,
    task_queue: Annotated[
        str | None,
        typer.Option(
            help="Task queue. Default: one of the run's own (jamjet-run-<id>) when this command "
            "starts the worker, so no other run's worker (another policy, another audit store) "
            f"can pick it up; '{DEFAULT_TASK_QUEUE}' with --no-worker."
        ),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--id", help="Workflow id (default exec_…).")
    ] = None,
    worker: Annotated[bool, typer.Option(help="Start a worker in this process.")] = True,
    crash_at: Annotated[
        str | None,
        typer.Option(
            help="Demo: run on a separate worker process, SIGKILL it while this node "
            "runs, and let a second worker take over after the heartbeat timeout."
        ),
    ] = None,
    address: Annotated[str | None, typer.Option(help="Temporal address (host:port).")] = None,
    model_latency_ms: Annotated[
        int, typer.Option(help="Latency of the local model server, when it is started.")
    ] = 400,
    policy: PolicyOption = None,
    audit_store: AuditOption = DEFAULT_AUDIT_STORE,
) -> None:
    """Run a YAML pipeline and stream its progress."""
    governance = Governance(policy, audit_store)
    try:
        config = governance.config()
        spec = load_pipeline(file)
        state = json.loads(input)
        if not isinstance(state, dict):
            raise fail('--input must be a JSON object, e.g. \'{"topic": "x"}\'')
        if crash_at is not None and not any(
            crash_at.lower() in (node_id.lower(), (n.label or "").lower())
            for node_id, n in spec.nodes.items()
        ):
            raise fail(f"--crash-at {crash_at}: the pipeline has no such node")
        # Importing tools runs code: only once everything else checked out, only when the
        # pipeline calls tools, and saying which file it runs.
        modules = tools if tools is not None else default_tool_modules(file, spec)
        if tools is None and modules:
            print(
                f"tools: {modules[0]} (beside the pipeline; --tools MODULE to choose others)",
                file=sys.stderr,
                flush=True,
            )
        loaded = load_tools(modules)
        signatures = tool_signatures(spec, loaded)
    except json.JSONDecodeError as err:
        raise fail(f"--input is not valid JSON: {err}") from None
    except JamJetError as err:
        raise fail(str(err)) from None
    # The run's own progress lines report task failures readably; the worker's warning log
    # would add a stack trace per failed attempt to the same terminal.
    logging.getLogger("temporalio").setLevel(logging.ERROR)
    code = asyncio.run(
        _run(
            spec,
            state,
            loaded,
            modules,
            signatures,
            task_queue,
            run_id,
            worker,
            crash_at,
            address,
            model_latency_ms,
            governance,
            config,
        )
    )
    raise typer.Exit(code)


async def _run(
    spec: PipelineSpec,
    state: dict[str, Any],
    tools: list[Callable[..., Any]],
    modules: list[str],
    signatures: dict[str, ToolSignature],
    task_queue: str | None,
    run_id: str | None,
    with_worker: bool,
    crash_at: str | None,
    address: str | None,
    model_latency_ms: int,
    governance: Governance,
    config: JamJetConfig,
) -> int:
    async with runtime(address, model_latency_ms=model_latency_ms) as env:
        plugin = JamJetPlugin(config, tasks=tools)
        client = await connect(address=env.address, plugins=[plugin])
        run_id = run_id or f"exec_{uuid.uuid4().hex[:8]}"
        if task_queue is None:
            # The run's own queue: only the workers this command starts, with its policy and
            # audit store, ever take its tasks (a shared queue let one run's worker decide
            # another run's calls).
            own = with_worker or crash_at is not None
            task_queue = f"jamjet-run-{run_id}" if own else DEFAULT_TASK_QUEUE
        stack = contextlib.AsyncExitStack()
        async with stack:
            crash: CrashPlan | None = None
            if crash_at is not None:
                child_env = dict(os.environ, TEMPORAL_ADDRESS=env.address)
                victim = stack.enter_context(
                    _child(_worker_cmd(modules, task_queue, "worker-1", governance), child_env)
                )

                def kill() -> str:
                    os.kill(victim.pid, signal.SIGKILL)
                    victim.wait()
                    return f"worker-1, pid {victim.pid}"

                async def replace() -> None:
                    await stack.enter_async_context(
                        Worker(client, task_queue=task_queue, identity="worker-2")
                    )

                crash = CrashPlan(crash_at, kill, replace)
            elif with_worker:
                await stack.enter_async_context(
                    Worker(client, task_queue=task_queue, identity="worker-1")
                )
            say(f"▸ Starting execution {run_id}...")
            handle: WorkflowHandle[Any, PipelineResult] = await client.start_workflow(
                PIPELINE_WORKFLOW,
                PipelineRun(spec=spec, input=state, tool_params=signatures),
                id=run_id,
                task_queue=task_queue,
                result_type=PipelineResult,
            )
            report = await follow(handle, say, crash=crash)
            if crash is not None and not crash.done:
                say(
                    f"▸ --crash-at {crash_at}: the step finished before it could be killed; "
                    "nothing crashed (use a slower step)"
                )
        for line in closing_lines(run_id, report):
            if line:
                say(line)
        return 0 if report.status == "completed" else 1


@app.command("worker")
def worker_cmd(
    tools: Annotated[list[str] | None, typer.Option("--tools", help="Tool modules.")] = None,
    task_queue: Annotated[str, typer.Option(help="Task queue.")] = DEFAULT_TASK_QUEUE,
    identity: Annotated[str | None, typer.Option(help="Worker identity.")] = None,
    address: Annotated[str | None, typer.Option(help="Temporal address (host:port).")] = None,
    sticky_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a workflow task waits for this worker's cache before any "
            "other worker may take it (after a crash, the run pauses this long)."
        ),
    ] = 3.0,
    policy: PolicyOption = None,
    audit_store: AuditOption = DEFAULT_AUDIT_STORE,
) -> None:
    """Run a worker for pipelines, the built-in activities and the given tools."""
    try:
        loaded = load_tools(tools or [])
        config = Governance(policy, audit_store).config()
    except JamJetError as err:
        raise fail(str(err)) from None

    async def serve() -> None:
        client = await connect(
            address=address, plugins=[JamJetPlugin(config, tasks=loaded)], identity=identity
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with Worker(
            client,
            task_queue=task_queue,
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=sticky_timeout),
        ):
            say(f"▸ Worker {identity or client.identity} polling task queue '{task_queue}'")
            await stop.wait()

    try:
        asyncio.run(serve())
    except RuntimeError as err:
        raise fail(f"cannot connect to Temporal: {err}") from None


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Temporal frontend port.")] = 7233,
    model_port: Annotated[int, typer.Option(help="Local model server port.")] = 8765,
) -> None:
    """Run the local stack in the foreground: Temporal dev server (with Web UI) + model server."""

    async def serve() -> None:
        from .modelserver import ModelServer

        server = None
        if not is_listening(f"127.0.0.1:{port}"):
            server = DevServer(
                port=port,
                db_file=STATE_DIR / "temporal.db",
                ui_port=DEFAULT_UI_PORT,
                log_file=STATE_DIR / "temporal.log",
            )
            await server.astart()
        say(f"▸ Temporal on 127.0.0.1:{port} · Web UI http://127.0.0.1:{DEFAULT_UI_PORT}")
        model_server = ModelServer(port=model_port)
        await model_server.start()
        say(f"▸ Local model server: export OPENAI_BASE_URL={model_server.base_url}")
        say("▸ Ctrl-C to stop")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await model_server.stop()
            if server is not None:
                await server.astop()

    asyncio.run(serve())


async def _fetch_history(run_id: str, address: str | None) -> WorkflowHistory:
    client = await connect(address=address, plugins=[JamJetPlugin()])
    try:
        return await client.get_workflow_handle(run_id).fetch_history()
    except RPCError as err:
        raise fail(f"run {run_id}: {err.message}") from None


@app.command()
def status(
    run_id: Annotated[str, typer.Argument(help="Workflow id, e.g. exec_7f3a2b1c.")],
    address: Annotated[str | None, typer.Option(help="Temporal address (host:port).")] = None,
) -> None:
    """Show a run's status and its steps (attempts, durations, workers), read from history."""

    async def show() -> int:
        async with runtime(address, model=False):
            report = read_history(await _fetch_history(run_id, address))
            say(f"{run_id} · {report.status} · {report.event_count} events")
            for step in report.steps:
                after = f" · after: {step.previous_failure}" if step.previous_failure else ""
                say(
                    f"  [{step.label}] {step.outcome or 'running'} · attempt {step.attempt or '-'}"
                    f" · {fmt_ms(step.duration_ms)} · {step.worker or '-'}{after}"
                )
            for line in closing_lines(run_id, report):
                if line and report.status != "running":
                    say(line)
            return 0

    raise typer.Exit(asyncio.run(show()))


@app.command()
def history(
    run_id: Annotated[str, typer.Argument(help="Workflow id.")],
    address: Annotated[str | None, typer.Option(help="Temporal address (host:port).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the raw history JSON.")] = False,
) -> None:
    """Print a run's Temporal history, event by event."""

    async def show() -> int:
        async with runtime(address, model=False):
            hist = await _fetch_history(run_id, address)
            if json_out:
                print(hist.to_json())
                return 0
            from temporalio.api.enums.v1 import EventType

            for event in hist.events:
                name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
                when = event.event_time.ToDatetime().strftime("%H:%M:%S.%f")[:-3]
                say(f"{event.event_id:>4} {when} {name}")
            return 0

    raise typer.Exit(asyncio.run(show()))


audit_app = typer.Typer(help="The audit trail: what the gate decided and every tool call.")
app.add_typer(audit_app, name="audit")


def describe_event(event: AuditEvent) -> str:
    """One line saying what an audit event records."""
    data, actor = event.data, event.actor
    if event.kind.startswith("policy."):
        rule = f"rule '{data['rule']}'" if data.get("rule") else "no rule"
        who = ", ".join(f"{k} {v}" for k, v in actor.items() if v and k != "workflow_type")
        text = f"{data['subject']} {data['decision']} · {data['reason']}"
        return text + f" ({rule}, scope {data['scope']})" + (f" · {who}" if who else "")
    if event.kind in ("tool.call", "model.call"):
        outcome = data.get("outcome")
        return (
            f"{data['tool']} {outcome} · {data['latency_ms']}ms · attempt {data['attempt']}"
            f" · {actor.get('worker') or '-'} · key {data['idempotency_key']}"
        )
    return json.dumps(data, sort_keys=True)


CheckpointKeyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--trusted-key",
        help="A key trusted to sign the store's checkpoints: fingerprint (sha256:...) or PEM "
        "public key file. Repeatable. Default: the local signing key ($JAMJET_AUDIT_KEY or "
        "~/.jamjet/audit-signing.key).",
    ),
]
CheckpointKeysOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--trusted-keys",
        help="File of keys trusted to sign the store's checkpoints (as for `audit verify`). "
        "Repeatable.",
    ),
]


def _checkpoint_trust(keys: list[str] | None, files: list[Path] | None) -> dict[str, str]:
    """Whose checkpoints count, and why.

    The keys pinned (flags, else $JAMJET_TRUSTED_KEYS); without any, the local signing key,
    the one this host's workers sign with (read if it exists, never created here).
    """
    trusted = load_trusted_keys(keys=keys or (), files=files or ())
    if trusted:
        return trusted
    path = default_key_path()
    if not path.exists():
        return {}
    return {fingerprint(load_or_create_signing_key(path)): f"the local signing key {path}"}


def _checkpoint_lines(verdict: ChainVerdict, trusted: dict[str, str]) -> list[str]:
    """Who signed the store's checkpoints, whether they are trusted, and what they cover."""
    lines = [f"signed checkpoints: {verdict.checkpoints} match the chain"]
    for signer, is_trusted in verdict.signers.items():
        if is_trusted:
            lines.append(f"  signer {signer}: trusted ({trusted[signer]})")
        elif trusted:
            lines.append(
                f"  signer {signer}: NOT TRUSTED (not one of the {len(trusted)} trusted key(s); "
                "if it is your workers' key, pin it with --trusted-key)"
            )
        else:
            lines.append(
                f"  signer {signer}: NOT TRUSTED (no trusted key: no local signing key at "
                f"{default_key_path()}; pin your workers' key with --trusted-key)"
            )
    if not verdict.ok:
        return lines
    if verdict.covered == verdict.count:
        lines.append(f"signed checkpoints cover all {verdict.count} events in the store")
    else:
        lines.append(
            f"events after seq {verdict.covered} are not yet covered by a signed checkpoint of "
            f"a trusted key ({verdict.count - verdict.covered} events): whoever can write the "
            "store could rewrite them unnoticed"
        )
    return lines


@audit_app.command("show")
def audit_show(
    run_id: Annotated[str, typer.Argument(help="Workflow id of the run.")],
    audit_store: AuditOption = DEFAULT_AUDIT_STORE,
    trusted_key: CheckpointKeyOption = None,
    trusted_keys: CheckpointKeysOption = None,
) -> None:
    """Print a run's audit trail, oldest first, and verify the store's chain and checkpoints.

    The hash chain is recomputed and every signed checkpoint of it checked: a rewrite of
    events under a checkpoint is named. The run is covered when a checkpoint signed by a
    trusted key is at or after its last event (each run's run.closed event brings one).

    Exit code: 0 verified and covered; 1 no events for the run; 2 the store or a trusted key
    cannot be used; 3 the chain is broken or contradicts a checkpoint (rewritten); 4 intact,
    but some of the run's events are not under a trusted checkpoint, or a checkpoint's
    signer is not trusted.
    """

    async def show() -> int:
        try:
            trusted = _checkpoint_trust(trusted_key, trusted_keys)
            store = open_store(audit_store)
            try:
                events = await store.events(run_id)
                verdict = await store.verify(trusted_keys=trusted, marks=checkpoint_marks_path())
            finally:
                await store.close()
        except JamJetError as err:
            raise fail(str(err)) from None
        if not events:
            raise fail(f"no audit events for run {run_id} in {audit_store}", code=1)
        for stored in events:
            event = stored.event
            when = event.at.strftime("%H:%M:%S.%f")[:-3]
            say(f"{event.id} {when} {event.kind:<22} {describe_event(event)}")
        chain = (
            f"verified ({verdict.count} events in the store)"
            if verdict.ok
            else f"BROKEN: {verdict.detail}"
        )
        say(f"{len(events)} events · hash chain {chain}")
        for line in _checkpoint_lines(verdict, trusted):
            say(line)
        if not verdict.ok:
            return 3
        last = events[-1].seq
        if last > verdict.covered:
            say(
                f"NOT COVERED: this run's events after seq {verdict.covered} (up to seq {last}) "
                "are not under a trusted signed checkpoint (a run still going gets one with "
                "its run.closed event)"
            )
            return 4
        if not all(verdict.signers.values()):
            say("NOT TRUSTED: a checkpoint's signer is not trusted (see above)")
            return 4
        say(f"this run's events are covered by signed checkpoints (up to seq {last})")
        return 0

    raise typer.Exit(asyncio.run(show()))


@audit_app.command("verify-store")
def audit_verify_store(
    audit_store: AuditOption = DEFAULT_AUDIT_STORE,
    trusted_key: CheckpointKeyOption = None,
    trusted_keys: CheckpointKeysOption = None,
) -> None:
    """Verify a whole audit store: recompute its hash chain and check every signed checkpoint.

    Exit code: 0 intact and every event under a checkpoint signed by a trusted key; 2 the
    store or a trusted key cannot be used; 3 the chain is broken or contradicts a checkpoint
    (rewritten); 4 intact, but events after the last trusted checkpoint are not covered (a
    live store's newest events until the next checkpoint; every event, if the checkpoints
    were removed), or a checkpoint's signer is not trusted.
    """

    async def check() -> int:
        try:
            trusted = _checkpoint_trust(trusted_key, trusted_keys)
            store = open_store(audit_store)
            try:
                verdict = await store.verify(trusted_keys=trusted, marks=checkpoint_marks_path())
            finally:
                await store.close()
        except JamJetError as err:
            raise fail(str(err)) from None
        chain = (
            f"verified ({verdict.count} events in the store)"
            if verdict.ok
            else f"BROKEN: {verdict.detail}"
        )
        say(f"hash chain {chain}")
        if verdict.ok:
            say(f"chain head: seq {verdict.count} {verdict.head}")
        for line in _checkpoint_lines(verdict, trusted):
            say(line)
        if not verdict.ok:
            return 3
        return 0 if verdict.covered_all else 4

    raise typer.Exit(asyncio.run(check()))


@audit_app.command("init-db")
def audit_init_db(
    dsn: Annotated[
        str,
        typer.Option(
            "--dsn", help="The admin's connection string or postgresql:// URL (owns the schema)."
        ),
    ],
    worker_role: Annotated[
        str, typer.Option("--worker-role", help="The existing role workers connect as.")
    ],
    schema: Annotated[str, typer.Option("--schema", help="Schema of the tables.")] = "jamjet",
) -> None:
    """Set up a PostgreSQL audit store once, as an admin; workers then may only append.

    Creates the schema, its tables, the trigger function and the append-only triggers,
    owned by the admin role of --dsn (taking over a schema an older version let the worker
    own), and grants the worker role only USAGE on the schema and SELECT, INSERT on the
    tables. Running it again changes nothing. Exit code: 0 done; 2 refused (the message says
    why).
    """
    try:
        store_id = asyncio.run(
            PostgresAuditStore.init_db(dsn, schema=schema, worker_role=worker_role)
        )
    except JamJetError as err:
        raise fail(str(err)) from None
    say(
        f"▸ Schema {schema} ready (store id {store_id}): audit_events, audit_checkpoints, "
        "audit_store_id, their append-only triggers and trigger function, owned by the admin"
    )
    say(
        f"▸ Role {worker_role}: USAGE on {schema}; SELECT, INSERT on audit_events and "
        "audit_checkpoints; SELECT on audit_store_id; nothing else"
    )
    say(f"▸ Workers: --audit-store 'postgresql://{worker_role}@HOST/DB?schema={schema}'")


@audit_app.command("export")
def audit_export(
    run_id: Annotated[str, typer.Argument(help="Workflow id of the run.")],
    format: Annotated[str, typer.Option("--format", help="json or pdf.")] = "json",
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="NAME.json, or NAME.pdf with --format pdf (NAME.json beside it); "
            "NAME.intoto.jsonl is written beside the JSON.",
        ),
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option("--include", help="events, tools, policy, approvals, budget."),
    ] = None,
    redact: Annotated[list[str] | None, typer.Option("--redact", help="Field to mask.")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="Signing key file.")] = None,
    audit_store: AuditOption = DEFAULT_AUDIT_STORE,
    address: Annotated[str | None, typer.Option(help="Temporal address (host:port).")] = None,
) -> None:
    """Build the run's signed evidence bundle (JSON, and a PDF report with --format pdf).

    Beside the JSON bundle goes NAME.intoto.jsonl: its statement as an
    in-toto attestation (a DSSE envelope) signed by the same key.
    """
    if format not in ("json", "pdf"):
        raise fail("--format must be json or pdf")
    kind: Literal["json", "pdf"] = "pdf" if format == "pdf" else "json"

    async def go() -> int:
        say(f"▸ Building evidence package for {run_id}...")
        try:
            result = await export_audit(
                run_id,
                format=kind,
                include=include or CATEGORIES,
                store=audit_store,
                output=output,
                redact=redact or (),
                key=key,
                address=address,
            )
        except JamJetError as err:
            raise fail(str(err), code=1) from None
        summary = result.bundle["summary"]
        policy = summary["policy"]
        say(f"▸ Events: {summary['events']} (signed, immutable)")
        say(f"▸ Tool calls: {summary['tool_calls']} (args, results, latency)")
        say(
            f"▸ Policy: {policy['evaluated']} ({policy['allowed']} allowed, "
            f"{policy['blocked']} blocked, {policy['evaluated']} evaluated)"
        )
        decided = [a for a in summary["approvals"] if a["kind"] == "approval.decision"]
        who = ", ".join(f"{a['approver']}, {str(a['time'])[11:16]}" for a in decided)
        say(f"▸ Approvals: {len(decided)}" + (f" ({who})" if who else ""))
        if not result.history_included:
            say("▸ Temporal history: not available (past retention?); bundle has the audit trail")
        signer = result.bundle["statement"]["public_key_fingerprint"]
        say(f"▸ Signing key: {signer} (verifiers pin it with --trusted-key)")
        say(f"▸ Attestation: {result.attestation_path} (in-toto, DSSE)")
        size = result.path.stat().st_size
        shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} KB"
        say(f"▸ Output: {result.path} · {shown}")
        return 0

    raise typer.Exit(asyncio.run(go()))


@audit_app.command("verify")
def audit_verify(
    bundle: Annotated[Path, typer.Argument(help="The JSON bundle.")],
    trusted_key: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-key",
            help="A trusted signer: fingerprint (sha256:...) or PEM public key file. Repeatable.",
        ),
    ] = None,
    trusted_keys: Annotated[
        list[Path] | None,
        typer.Option(
            "--trusted-keys",
            help="File of trusted signers: one fingerprint or PEM public key per entry, "
            "# comments. Repeatable.",
        ),
    ] = None,
) -> None:
    """Verify a bundle offline: integrity, signer trust and completeness.

    The signer is trusted only when pinned: by --trusted-key, --trusted-keys
    or, when neither is given, JAMJET_TRUSTED_KEYS (comma-separated
    fingerprints and trusted-keys files).

    Exit code: 0 ok; otherwise the sum of 1 (integrity failed),
    2 (completeness failed) and 4 (signer not trusted);
    8 when the bundle or a trusted key cannot be read.
    """
    try:
        trusted = load_trusted_keys(keys=trusted_key or (), files=trusted_keys or ())
        verdict = verify_bundle(read_bundle(bundle), trusted_keys=trusted)
    except JamJetError as err:
        raise fail(str(err), code=8) from None
    integrity = "ok" if verdict.integrity_ok else "FAILED"
    completeness = {True: "ok", False: "FAILED", None: "not checked (no history)"}[
        verdict.completeness_ok
    ]
    say(f"integrity: {integrity}")
    if not verdict.attested:
        say("attestation: none (a bundle exported before in-toto attestations)")
    signer = verdict.signer or "unknown (no readable public key)"
    if verdict.trusted:
        say(f"signer: {signer} (trusted: {trusted[verdict.signer]})")
    elif trusted:
        say(
            f"signer: {signer} NOT TRUSTED: not one of the {len(trusted)} trusted key(s) configured"
        )
    else:
        say(
            f"signer: {signer} NOT TRUSTED: no trusted key configured (pin the signer you "
            "expect with --trusted-key, a trusted-keys file or JAMJET_TRUSTED_KEYS)"
        )
    say(f"completeness: {completeness}")
    for problem in [*verdict.integrity_problems, *verdict.completeness_problems]:
        say(f"  ✗ {problem}")
    raise typer.Exit(verdict.exit_code)


@audit_app.command("key")
def audit_key(
    key: Annotated[Path | None, typer.Option("--key", help="Signing key file.")] = None,
) -> None:
    """Print the bundle signing key's fingerprint and public key (created on first use).

    Publish the fingerprint to whoever verifies your bundles: they pin it with
    `jamjet audit verify --trusted-key FINGERPRINT` (or a trusted-keys file).
    """
    try:
        private = load_or_create_signing_key(key)
    except JamJetError as err:
        raise fail(str(err)) from None
    say(f"fingerprint: {fingerprint(private.public_key())}")
    print(public_key_pem(private), end="")


approvals_app = typer.Typer(help="Human approvals: what waits, keys for approvers.")
app.add_typer(approvals_app, name="approvals")


def _plain(value: object) -> object:
    """``75000.0`` → ``75000``: whole floats read as the amounts people typed."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _age(when: datetime) -> str:
    seconds = int((datetime.now(UTC) - when).total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@approvals_app.command("list")
def approvals_list(
    address: Annotated[str | None, typer.Option(help="Temporal address (host:port).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Pending approvals across runs (found through Temporal visibility)."""

    async def show() -> int:
        client = await connect(address=address, plugins=[JamJetPlugin()])
        listing = await survey_pending(client)
        if json_out:
            requests = [p.model_dump(mode="json") for p in listing.requests]
            print(json.dumps({"requests": requests, "unanswered": listing.unanswered}, indent=2))
            return 0
        if not listing.requests and not listing.unanswered:
            say("no pending approvals")
        for p in listing.requests:
            args = ", ".join(f"{k}={_plain(v)}" for k, v in p.args.items())
            say(
                f"{p.run_id} {p.approval_id} {p.action}({args}) · requested by "
                f"{p.requester or '-'} {_age(p.requested_at)} ago · needs {p.required} of "
                f"{', '.join(p.eligible)} · approved by {', '.join(p.approved_by) or 'nobody yet'}"
                f" · {p.digest}"
            )
        for run_id in listing.unanswered:
            say(f"{run_id} did not answer (no worker?): its requests cannot be shown")
        return 0

    raise typer.Exit(asyncio.run(show()))


@approvals_app.command("keygen")
def approvals_keygen(
    approver: Annotated[str, typer.Argument(help="Approver id, e.g. an e-mail address.")],
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Key folder (default $JAMJET_KEYS_DIR or ~/.jamjet/keys)."),
    ] = None,
) -> None:
    """Create an approver's signing key (kept outside the repository) and print its public key."""
    try:
        identity, path = generate_identity(approver, directory)
    except JamJetError as err:
        raise fail(str(err)) from None
    say(f"private key: {path} (keep it on the approver's machine)")
    say("add to the approvals config:")
    say(f"  - {{id: {identity.approver}, public_key: {identity.public_key}}}")


@app.command()
def approve(
    run_id: Annotated[str, typer.Argument(help="The waiting run's workflow id.")],
    key: Annotated[Path, typer.Option("--key", help="The approver's private key file.")],
    decision: Annotated[
        str, typer.Option(help="approved or rejected.", case_sensitive=False)
    ] = "approved",
    comment: Annotated[str, typer.Option(help="Comment recorded with the decision.")] = "",
    approval: Annotated[
        str | None, typer.Option("--approval", help="Approval id, when the run has several.")
    ] = None,
    digest: Annotated[
        str | None,
        typer.Option(
            "--digest",
            help="The digest of the request you checked (`jamjet approvals list`): sign only "
            "if the run still asks for exactly that. Required when stdin is not a terminal.",
        ),
    ] = None,
    print_signal: Annotated[
        bool,
        typer.Option(
            "--print-signal",
            help="Print the `temporal workflow signal` command "
            "(for the Temporal CLI or Web UI) instead of sending.",
        ),
    ] = False,
    address: Annotated[str | None, typer.Option(help="Temporal address (host:port).")] = None,
) -> None:
    """Show the request, then sign a decision about exactly it and submit it (update).

    The request is confirmed on the terminal, or by ``--digest``; nothing is signed otherwise.
    """
    if decision not in ("approved", "rejected"):
        raise fail("--decision must be 'approved' or 'rejected'")

    async def go() -> int:
        try:
            identity = load_identity(key)
            client = await connect(address=address, plugins=[JamJetPlugin()])
            request = await find_pending(client, run_id, approval)
        except JamJetError as err:
            raise fail(str(err)) from None
        args = ", ".join(
            f"{k}={json.dumps(_plain(v), ensure_ascii=False)}" for k, v in request.args.items()
        )
        print(
            f"To sign as {identity.approver}: {decision}\n"
            f"  action     {request.action}\n"
            f"  arguments  {args or '-'}\n"
            f"  requester  {request.requester or '-'}\n"
            f"  run        {request.run_id} {request.approval_id} "
            f"(Temporal run {request.workflow_run_id})\n"
            f"  digest     {request.digest}",
            file=sys.stderr,
            flush=True,
        )
        if digest is not None:
            if digest != request.digest:
                raise fail(
                    f"the run's request has digest {request.digest}, not the --digest given: it "
                    "is not the request you checked (it changed, or is another one); nothing "
                    "was signed"
                )
        elif not sys.stdin.isatty():
            raise fail(
                "stdin is not a terminal, so nobody confirms the request shown: pass --digest "
                "(from `jamjet approvals list`) to sign only that request; nothing was signed"
            )
        else:
            # Asked on stderr: stdout carries only the result (or --print-signal's command).
            print(
                f"Sign '{decision}' for this request? [y/N] ", end="", file=sys.stderr, flush=True
            )
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                raise fail("not confirmed; nothing was signed", code=1)
        signed = sign(identity, request, decision, comment)  # type: ignore[arg-type]
        if print_signal:
            payload = signed.model_dump_json()
            print(
                f"temporal workflow signal --workflow-id {run_id} --name {DECIDE_SIGNAL} "
                f"--input '{payload}'"
            )
            return 0
        result = await submit(client, signed)
        mark = "✓" if result.accepted else "✗"
        audit = f"[audit {result.event_id}]"
        say(f"{mark} {request.action} {request.approval_id}: {result.reason} {audit}")
        return 0 if result.accepted else 1

    raise typer.Exit(asyncio.run(go()))


@app.command()
def ui(
    key: Annotated[Path, typer.Option("--key", help="Your approver key file (signs decisions).")],
    port: Annotated[int, typer.Option(help="Port of the page (on 127.0.0.1).")] = 8080,
    address: Annotated[str | None, typer.Option(help="Temporal address (host:port).")] = None,
) -> None:
    """The approvals page for one approver: pending requests, approve or reject with a comment."""
    from .approvals._ui import serve_ui

    async def go() -> None:
        try:
            identity = load_identity(key)
        except JamJetError as err:
            raise fail(str(err)) from None
        client = await connect(address=address, plugins=[JamJetPlugin()])

        def listening(url: str) -> None:
            say(f"▸ Approvals page for {identity.approver}: {url} (Ctrl-C to stop)")
            say("  Open that URL; keep it private: whoever has it decides as you.")

        await serve_ui(client, identity, port=port, on_listening=listening)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(go())


def main() -> None:
    """Entry point of the ``jamjet`` script."""
    try:
        app()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal client's Rust threads can abort the interpreter while it finalizes
    # (temporalio/sdk-python#300); everything is flushed and closed, so skip the teardown.
    os._exit(code)
