"""``jamjet run`` (check a pipeline, start it, follow it) and ``jamjet worker``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import signal
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

from jamjet_temporal._shared._wire import PIPELINE_NODES_QUERY
from jamjet_temporal.approvals._identity import SigningIdentity, load_identity
from jamjet_temporal.cli._client import cli_connect
from jamjet_temporal.cli._crash import check_crash_node, crash_plan, report_missed
from jamjet_temporal.cli._format import fail, say, value_lines
from jamjet_temporal.cli._history import RunReport, read_history
from jamjet_temporal.cli._options import (
    AddressOption,
    ApprovalsOption,
    AuditStoreOption,
    PolicyOption,
)
from jamjet_temporal.cli._progress import CrashPlan, closing_lines, follow
from jamjet_temporal.cli._runtime import Governance, runtime, stop_on_signals
from jamjet_temporal.cli._tools import (
    activities_of,
    agent_specs,
    default_tool_modules,
    load_tools,
    tool_signatures,
)
from jamjet_temporal.errors import JamJetError
from jamjet_temporal.pipeline import (
    PIPELINE_WORKFLOW,
    PipelineResult,
    PipelineRun,
    PipelineSpec,
    load_pipeline,
)
from jamjet_temporal.pipeline._spec import check_input
from jamjet_temporal.pipeline._workflow import AgentSpec, NodeRecord, ToolSignature
from jamjet_temporal.plugin._config import DEFAULT_AUDIT_STORE, JamJetConfig
from jamjet_temporal.plugin._interceptor import acting_as
from jamjet_temporal.plugin._plugin import JamJetPlugin
from jamjet_temporal.tracing._client import run_trace_id

DEFAULT_TASK_QUEUE = "jamjet"


def run(
    file: Annotated[Path, typer.Argument(help="Pipeline YAML file.")],
    input: Annotated[
        str,
        typer.Option(
            "--input",
            help="Initial state as a JSON object (the state schema's defaults fill the rest).",
        ),
    ] = "{}",
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
    address: AddressOption = None,
    model_latency_ms: Annotated[
        int, typer.Option(help="Latency of the local model server, when it is started.")
    ] = 400,
    policy: PolicyOption = None,
    audit_store: AuditStoreOption = DEFAULT_AUDIT_STORE,
    approvals: ApprovalsOption = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="The user the run acts for (its requester for four-eyes), proven by --signer.",
        ),
    ] = None,
    signer: Annotated[
        Path | None,
        typer.Option(
            "--signer",
            help="Key file of the client the approvals config trusts to say whom runs act "
            "for (or an approver's own key, acting for themselves).",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the run's outcome as JSON to this file (run id, status, output, final "
            "state, or the failure).",
        ),
    ] = None,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print only the run's outcome as JSON on stdout (progress goes to stderr).",
        ),
    ] = False,
    cancel_on_interrupt: Annotated[
        bool,
        typer.Option(
            "--cancel-on-interrupt",
            help="On Ctrl-C, cancel the run (default: leave it running in Temporal and say how "
            "to finish it).",
        ),
    ] = False,
) -> None:
    """Run a YAML pipeline, stream its progress and show its output.

    Ctrl-C stops following (exit 130): the run itself stays in Temporal, and the command says
    how to finish it (or cancels it with --cancel-on-interrupt).
    """
    try:
        identity = _identity(user, signer)
        spec = load_pipeline(file)
        governance = Governance(policy, audit_store, approvals, (str(file),))
        config = governance.config()
        given = json.loads(input)
        if not isinstance(given, dict):
            raise fail('--input must be a JSON object, e.g. \'{"topic": "x"}\'')
        state = check_input(spec, given)
        if crash_at is not None:
            check_crash_node(spec, crash_at)
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
        agents = agent_specs(spec, loaded)
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
            agents,
            task_queue,
            run_id,
            worker,
            crash_at,
            address,
            model_latency_ms,
            governance,
            config,
            identity,
            Outcome(output, json_out, cancel_on_interrupt),
        )
    )
    raise typer.Exit(code)


def _identity(user: str | None, signer: Path | None) -> tuple[str, SigningIdentity] | None:
    if user is None and signer is None:
        return None
    if signer is None:
        raise fail("--as needs --signer: the key of a client the approvals config trusts")
    key = load_identity(signer)
    return (user or key.approver, key)


async def _run(
    spec: PipelineSpec,
    state: dict[str, Any],
    tools: list[Callable[..., Any]],
    modules: list[str],
    signatures: dict[str, ToolSignature],
    agents: dict[str, AgentSpec],
    task_queue: str | None,
    run_id: str | None,
    with_worker: bool,
    crash_at: str | None,
    address: str | None,
    model_latency_ms: int,
    governance: Governance,
    config: JamJetConfig,
    identity: tuple[str, SigningIdentity] | None = None,
    outcome: Outcome | None = None,
) -> int:
    outcome = outcome or Outcome()
    out = outcome.printer
    notice = ""
    async with runtime(address, model_latency_ms=model_latency_ms) as env:
        plugin = JamJetPlugin(config, tasks=activities_of(tools))
        client = await cli_connect(env.address, plugins=[plugin])
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
                crash = crash_plan(
                    stack, crash_at, client, env.address, modules, task_queue, governance
                )
            elif with_worker:
                await stack.enter_async_context(
                    Worker(client, task_queue=task_queue, identity="worker-1")
                )
            out(f"▸ Starting execution {run_id}...")
            meta = spec.workflow
            acting = (
                acting_as(identity[0], signer=identity[1])
                if identity is not None
                else contextlib.nullcontext()
            )
            with acting:
                handle: WorkflowHandle[Any, PipelineResult] = await client.start_workflow(
                    PIPELINE_WORKFLOW,
                    PipelineRun(spec=spec, input=state, tool_params=signatures, agents=agents),
                    id=run_id,
                    task_queue=task_queue,
                    result_type=PipelineResult,
                    execution_timeout=_seconds(spec.timeouts.workflow_timeout),
                    # What Temporal's Web UI says the run is (its static summary and details).
                    static_summary=f"pipeline {meta.id} {meta.version} ({spec.source})",
                    static_details=meta.description or meta.name,
                )
            if config.tracing is not None:
                out(f"▸ Trace {await run_trace_id(handle) or '(not traced)'} (OpenTelemetry)")
            report = await _follow_until_interrupted(handle, out, crash)
            if report is None:
                notice = await _interrupted(
                    handle, outcome, task_queue, modules, governance, with_worker or bool(crash)
                )
            else:
                if crash is not None:
                    report_missed(crash)
                counts = await _node_counts(handle) if with_worker or crash else None
                result = await handle.result() if report.status == "completed" else None
        if report is not None:
            outcome.show(run_id, report.status, result, report.failure)
            for line in closing_lines(run_id, report, counts):
                if line:
                    out(line)
    if notice:
        # Said last, once the worker and servers this command started have stopped.
        print(notice, file=sys.stderr, flush=True)
        return 130
    return 0 if report is not None and report.status == "completed" else 1


@dataclass(frozen=True)
class Outcome:
    """What ``jamjet run`` does with the run's outcome, and on Ctrl-C."""

    file: Path | None = None
    json: bool = False
    cancel_on_interrupt: bool = False

    def printer(self, line: str) -> None:
        """Progress lines: stdout, or stderr when stdout carries the JSON outcome."""
        if self.json:
            print(line, file=sys.stderr, flush=True)
        else:
            say(line)

    def show(
        self, run_id: str, status: str, result: PipelineResult | None, failure: str = ""
    ) -> None:
        """The output on the terminal (or as JSON), and in ``--output FILE``."""
        doc: dict[str, Any] = {"run_id": run_id, "status": status}
        if result is not None:
            doc |= {"output": result.output, "state": result.state}
        if failure:
            doc["failure"] = failure
        text = json.dumps(doc, indent=2, ensure_ascii=False, default=str)
        if self.file is not None:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self.file.write_text(text + "\n")
            self.printer(f"▸ Outcome written to {self.file}")
        if self.json:
            print(text, flush=True)
        elif result is not None:
            for line in value_lines("Output", result.output):
                say(line)


async def _follow_until_interrupted(
    handle: WorkflowHandle[Any, PipelineResult], out: Callable[[str], None], crash: CrashPlan | None
) -> RunReport | None:
    """Follow the run to its end; None when Ctrl-C (SIGINT) or SIGTERM came first."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    following = asyncio.ensure_future(follow(handle, out, crash=crash))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({following, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        stopping.cancel()
    if following.done():
        return following.result()
    following.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await following
    return None


async def _interrupted(
    handle: WorkflowHandle[Any, PipelineResult],
    outcome: Outcome,
    task_queue: str,
    modules: list[str],
    governance: Governance,
    own_worker: bool,
) -> str:
    """Ctrl-C: what to tell the user about the run (still running, or canceled)."""
    run_id = handle.id
    if outcome.cancel_on_interrupt:
        await handle.cancel()
        # The worker is still up: let it carry the cancellation to the run's steps.
        closed = None
        with contextlib.suppress(Exception):
            async with asyncio.timeout(15):
                await handle.result()
        with contextlib.suppress(Exception):
            closed = read_history(await handle.fetch_history()).status
        outcome.show(run_id, closed or "cancel requested", None)
        return f"✗ interrupted: {run_id} " + (
            "canceled"
            if closed == "canceled"
            else f"{closed or 'cancel requested'} (a worker of its queue completes the cancel)"
        )
    pending = ""
    with contextlib.suppress(Exception):
        report = read_history(await handle.fetch_history())
        if report.status != "running":  # it closed as we were interrupted
            outcome.show(run_id, report.status, None, report.failure)
            return f"✗ interrupted: {run_id} {report.status} meanwhile (`jamjet status {run_id}`)"
        waiting = [s.label for s in report.steps if s.outcome is None]
        if waiting:
            pending = f" ({', '.join(waiting)} pending)"
    worker = ["jamjet", "worker", "--task-queue", task_queue]
    for module in modules:
        worker += ["--tools", module]
    worker += governance.worker_args()
    finish = shlex.join(worker) if own_worker else f"a worker of task queue '{task_queue}'"
    outcome.show(run_id, "running", None)
    return (
        f"✗ interrupted: {run_id} is still running in Temporal{pending}; nothing is lost.\n"
        f"  finish it:  {finish}\n"
        f"  watch it:   jamjet status {run_id}\n"
        f"  cancel it:  temporal workflow cancel --workflow-id {run_id}"
        " (or run with --cancel-on-interrupt)"
    )


async def _node_counts(handle: WorkflowHandle[Any, PipelineResult]) -> tuple[int, int] | None:
    """(completed, visited) nodes, as the run counts them; None when it cannot be asked."""
    try:
        records = await handle.query(
            PIPELINE_NODES_QUERY, result_type=list[NodeRecord], rpc_timeout=timedelta(seconds=10)
        )
    except Exception:  # an old run, or no worker to answer: the history's count stands
        return None
    visited = {r.node for r in records if r.type != "end"}
    done = {r.node for r in records if r.type != "end" and r.outcome != "failed"}
    return len(done), len(visited)


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def worker_cmd(
    tools: Annotated[list[str] | None, typer.Option("--tools", help="Tool modules.")] = None,
    task_queue: Annotated[str, typer.Option(help="Task queue.")] = DEFAULT_TASK_QUEUE,
    identity: Annotated[str | None, typer.Option(help="Worker identity.")] = None,
    address: AddressOption = None,
    sticky_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a workflow task waits for this worker's cache before any "
            "other worker may take it (after a crash, the run pauses this long)."
        ),
    ] = 3.0,
    policy: PolicyOption = None,
    audit_store: AuditStoreOption = DEFAULT_AUDIT_STORE,
    approvals: ApprovalsOption = None,
    pipelines: Annotated[
        list[str] | None,
        typer.Option(
            "--pipeline",
            help="Pipeline file whose MCP servers (mcp: block, jamjet.toml beside it) this "
            "worker serves (repeatable).",
        ),
    ] = None,
    embedded: Annotated[
        bool,
        typer.Option(
            help="Start the local dev server (persistent, under .jamjet/) when no Temporal "
            "server answers at a local address.",
        ),
    ] = True,
) -> None:
    """Run a worker for pipelines, the built-in activities and the given tools."""
    try:
        loaded = load_tools(tools or [])
        config = Governance(policy, audit_store, approvals, tuple(pipelines or ())).config()
    except JamJetError as err:
        raise fail(str(err)) from None

    async def serve() -> None:
        # Like `jamjet run`: the local dev server (on its persistent database under .jamjet/)
        # and the local model server start when none is there, so a run left behind by an
        # interrupted `jamjet run` is finished by this one command.
        async with runtime(address, embedded=embedded) as env:
            client = await cli_connect(
                env.address,
                plugins=[JamJetPlugin(config, tasks=activities_of(loaded))],
                identity=identity,
            )
            stop = stop_on_signals()
            async with Worker(
                client,
                task_queue=task_queue,
                sticky_queue_schedule_to_start_timeout=timedelta(seconds=sticky_timeout),
            ):
                say(f"▸ Worker {identity or client.identity} polling task queue '{task_queue}'")
                await stop.wait()

    asyncio.run(serve())
