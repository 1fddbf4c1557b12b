"""Through the real OTLP/HTTP exporter to a receiver on 127.0.0.1, decoded: ``jamjet run`` with
tracing on (the standard environment variables) prints its trace id and sends that trace; a run
whose worker is SIGKILLed mid-step is still one trace, with the retried attempt in it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from temporalio.client import Client

from bench._otlp_receiver import OtlpReceiver, ReceivedSpan
from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.modelserver import ModelServer
from jamjet_temporal.pipeline import PIPELINE_WORKFLOW, PipelineResult, PipelineRun
from jamjet_temporal.pipeline._spec import parse_pipeline
from jamjet_temporal.pipeline._workflow import ToolSignature
from jamjet_temporal.plugin import AuditConfig
from tests.chaos_tools import init_ledger
from tests.tracing.conftest import Otel, tracing

ROOT = Path(__file__).resolve().parent.parent.parent
RESEARCH = ROOT / "workflows" / "research-pipeline.yaml"
CHAOS_TOOLS = ROOT / "tests" / "chaos_tools.py"


def otel_env(receiver: OtlpReceiver, **more: str) -> dict[str, str]:
    """A user's environment with tracing on the standard way, exporting to ``receiver``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TEMPORAL_"))}
    return {
        **base,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        **more,
    }


async def arrived(
    receiver: OtlpReceiver, done: Callable[[list[ReceivedSpan]], bool], seconds: float = 30
) -> list[ReceivedSpan]:
    """The receiver's spans once ``done`` says enough arrived."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        spans = receiver.spans()
        if done(spans):
            return spans
        await asyncio.sleep(0.1)
    raise AssertionError(f"spans did not arrive: {sorted({s.name for s in receiver.spans()})}")


def test_jamjet_run_prints_its_trace_id_and_exports_the_trace_over_otlp_http(
    temporal_server: DevServer, model_server: ModelServer, task_queue: str, tmp_path: Path
) -> None:
    with OtlpReceiver() as receiver:
        env = otel_env(
            receiver,
            TEMPORAL_ADDRESS=temporal_server.address,
            OPENAI_BASE_URL=model_server.base_url,
            OTEL_SERVICE_NAME="research-cli",
        )
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "jamjet_temporal",
                "run",
                str(RESEARCH),
                "--task-queue",
                task_queue,
                "--id",
                f"exec_{task_queue}",
                "--audit-store",
                f"sqlite:///{tmp_path / 'audit.db'}",
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        printed = re.search(r"^▸ Trace ([0-9a-f]{32}) \(OpenTelemetry\)$", proc.stdout, re.M)
        assert printed, proc.stdout
        trace_id = printed.group(1)
        # The worker flushed when it stopped, before the command exited.
        spans = [s for s in receiver.spans() if s.trace_id == trace_id]
        metrics = receiver.received.metrics
    names = Counter(span.name for span in spans)
    assert names[f"StartWorkflow:{PIPELINE_WORKFLOW}"] == 1
    assert names[f"RunWorkflow:{PIPELINE_WORKFLOW}"] == 1
    assert names["chat gpt-4o-mini"] == 4
    assert names["execute_tool search"] == 1
    assert {span.resource["service.name"] for span in spans} == {"research-cli"}
    chat = next(span for span in spans if span.name == "chat gpt-4o-mini")
    assert chat.attributes["gen_ai.usage.output_tokens"] > 0
    assert chat.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    workflow = next(span for span in spans if span.name.startswith("RunWorkflow:"))
    decisions = [attrs for name, attrs in workflow.events if name == "jamjet.gate.decision"]
    assert len(decisions) == 5
    assert all(d["jamjet.audit.event_id"].startswith("evt_") for d in decisions)
    assert "gen_ai.client.token.usage" in metrics
    assert "gen_ai.client.operation.duration" in metrics
    assert "jamjet.gen_ai.client.cost" in metrics


ONE_STEP = """
workflow: {id: one-step, start: work, heartbeat_timeout_seconds: 2}
nodes:
  work: {type: tool, tool: effect, arguments: {step: work, value: 1}, output_key: w, next: done}
  done: {type: end, output: w}
"""


async def worker(
    address: str, queue: str, ledger: Path, name: str, env: dict[str, str]
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jamjet_temporal",
        "worker",
        "--tools",
        str(CHAOS_TOOLS),
        "--task-queue",
        queue,
        "--identity",
        name,
        "--address",
        address,
        "--sticky-timeout",
        "1",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**env, "CHAOS_LEDGER": str(ledger)},
        cwd=ledger.parent,
    )


async def test_a_worker_killed_mid_step_leaves_one_trace_with_the_second_attempt(
    temporal_server: DevServer, otel: Otel, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    init_ledger(ledger)
    queue = f"traced-crash-{uuid.uuid4().hex[:8]}"
    workflow_id = f"traced-crash-{uuid.uuid4().hex[:8]}"
    config = JamJetConfig(audit=AuditConfig(store=None), tracing=tracing(otel))
    client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
    with OtlpReceiver() as receiver:
        env = otel_env(receiver, OTEL_METRICS_EXPORTER="none")
        doomed = await worker(temporal_server.address, queue, ledger, "doomed", env)
        rescuer = None
        try:
            handle = await client.start_workflow(
                PIPELINE_WORKFLOW,
                PipelineRun(
                    spec=parse_pipeline(ONE_STEP, "one.yaml"),
                    tool_params={"effect": ToolSignature(params=["step", "value"], required=2)},
                ),
                id=workflow_id,
                task_queue=queue,
                result_type=PipelineResult,
            )
            for _ in range(600):  # the step's body is running on the doomed worker: kill it
                with sqlite3.connect(ledger, timeout=30) as db:
                    if db.execute("SELECT count(*) FROM executions").fetchone()[0]:
                        break
                await asyncio.sleep(0.05)
            doomed.send_signal(signal.SIGKILL)
            await doomed.wait()
            rescuer = await worker(temporal_server.address, queue, ledger, "rescuer", env)
            result = await asyncio.wait_for(handle.result(), 120)
            assert result.output == 2

            def complete(spans: list[ReceivedSpan]) -> bool:
                names = {s.name for s in spans}
                return {f"RunWorkflow:{PIPELINE_WORKFLOW}", "execute_tool effect"} <= names

            received = await arrived(receiver, complete)
        finally:
            for proc in (doomed, rescuer):
                if proc is not None and proc.returncode is None:
                    proc.send_signal(signal.SIGKILL)
                    await proc.wait()
    starts = [
        s
        for s in otel.spans()
        if s.name == f"StartWorkflow:{PIPELINE_WORKFLOW}"
        and (s.attributes or {}).get("temporalWorkflowID") == workflow_id
    ]
    assert len(starts) == 1 and starts[0].context is not None
    trace_id = f"{starts[0].context.trace_id:032x}"
    # Everything the workers exported for this run is in the client's trace, once.
    ours = [
        s
        for s in received
        if s.attributes.get("temporalWorkflowID") == workflow_id or s.name == "execute_tool effect"
    ]
    assert {s.trace_id for s in ours} == {trace_id}
    mine = [s for s in received if s.trace_id == trace_id]
    assert max(Counter(s.span_id for s in mine).values()) == 1, "a span was exported twice"
    run = [s for s in mine if s.name == f"RunWorkflow:{PIPELINE_WORKFLOW}"]
    assert len(run) == 1  # ended (and exported) only by the worker that finished the run
    # The killed attempt never exported; the rescuer's second attempt did, numbered.
    tools = [s for s in mine if s.name == "execute_tool effect"]
    assert [s.attributes["jamjet.activity.attempt"] for s in tools] == [2]
    attempt = [s for s in mine if s.name == "RunActivity:effect"]
    assert [s.attributes["jamjet.activity.attempt"] for s in attempt] == [2]
    assert tools[0].parent_span_id == attempt[0].span_id
