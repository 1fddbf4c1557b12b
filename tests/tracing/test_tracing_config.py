"""Configured the standard way (environment, or a provider passed in), refused clearly when it
cannot work, and nothing at all when off."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from temporalio.contrib.opentelemetry import create_tracer_provider

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.errors import TracingConfigError
from jamjet_temporal.plugin import AuditConfig, TracingConfig
from tests.tracing.conftest import Otel

ROOT = Path(__file__).resolve().parent.parent.parent


def python(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_the_environment_turns_tracing_on_the_standard_way() -> None:
    assert TracingConfig.from_env({}) is None
    assert TracingConfig.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert TracingConfig.from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:4318/v1"})
    assert TracingConfig.from_env({"OTEL_TRACES_EXPORTER": "console"})
    assert TracingConfig.from_env({"OTEL_TRACES_EXPORTER": "none"}) is None
    off = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}
    assert TracingConfig.from_env(off) is None


def test_content_is_captured_only_when_asked_for() -> None:
    env = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
    assert not TracingConfig().captures_content({})
    assert not TracingConfig().captures_content({env: "false"})
    assert not TracingConfig().captures_content({env: "NO_CONTENT"})
    assert TracingConfig().captures_content({env: "true"})
    assert TracingConfig().captures_content({env: "SPAN_ONLY"})
    assert not TracingConfig(capture_content=False).captures_content({env: "true"})
    assert TracingConfig(capture_content=True).captures_content({})


def test_a_provider_that_is_not_replay_safe_is_refused_with_the_fix() -> None:
    config = JamJetConfig(
        audit=AuditConfig(store=None), tracing=TracingConfig(tracer_provider=TracerProvider())
    )
    with pytest.raises(TracingConfigError, match="create_tracer_provider"):
        JamJetPlugin(config)


def test_a_second_global_provider_is_refused(otel: Otel) -> None:
    other = create_tracer_provider()
    config = JamJetConfig(
        audit=AuditConfig(store=None), tracing=TracingConfig(tracer_provider=other)
    )
    with pytest.raises(TracingConfigError, match="already has a global tracer provider"):
        JamJetPlugin(config)
    # The global one itself is welcome, as often as asked.
    JamJetPlugin(
        JamJetConfig(
            audit=AuditConfig(store=None), tracing=TracingConfig(tracer_provider=otel.provider)
        )
    )
    JamJetPlugin(JamJetConfig(audit=AuditConfig(store=None), tracing=TracingConfig(metrics=False)))


MADE = (
    "import json\n"
    "from opentelemetry import trace\n"
    "from jamjet_temporal import JamJetConfig, JamJetPlugin\n"
    "from jamjet_temporal.plugin import AuditConfig, TracingConfig\n"
    "JamJetPlugin(JamJetConfig(audit=AuditConfig(store=None), tracing=TracingConfig()))\n"
    "JamJetPlugin(JamJetConfig(audit=AuditConfig(store=None), tracing=TracingConfig()))\n"
    "p = trace.get_tracer_provider()\n"
    "inner = p._tracer_provider\n"
    "procs = inner._active_span_processor._span_processors\n"
    "print(json.dumps({'type': type(p).__name__,\n"
    "  'service': inner.resource.attributes['service.name'],\n"
    "  'exporters': [type(x.span_exporter).__name__ for x in procs]}))\n"
)


def test_without_a_provider_one_is_made_from_the_environment(tmp_path: Path) -> None:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    made = json.loads(python(MADE, {**base, "OTEL_SERVICE_NAME": "billing-agents"}))
    assert made == {
        "type": "ReplaySafeTracerProvider",
        "service": "billing-agents",
        "exporters": ["OTLPSpanExporter"],
    }
    made = json.loads(python(MADE, {**base, "OTEL_TRACES_EXPORTER": "console,otlp"}))
    assert made["service"] == "jamjet"
    assert made["exporters"] == ["ConsoleSpanExporter", "OTLPSpanExporter"]
    bad = subprocess.run(
        [sys.executable, "-c", MADE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, "OTEL_TRACES_EXPORTER": "zipkin"},
        timeout=120,
        check=False,
    )
    assert "TracingConfigError" in bad.stderr and "'zipkin'" in bad.stderr


OFF = """
import asyncio, json, sys, uuid
from temporalio.client import Client
from temporalio.worker import Worker
from bench._workload import five_steps, step
from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.plugin import AuditConfig

async def main() -> None:
    plugin = JamJetPlugin(JamJetConfig(audit=AuditConfig(store=None)))
    client = await Client.connect(sys.argv[1], plugins=[plugin])
    queue = f"off-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[five_steps], activities=[step]):
        result = await client.execute_workflow(
            five_steps.run, 1, id=f"off-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
    loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
    print(json.dumps({"result": result, "opentelemetry": loaded}))

asyncio.run(main())
"""


def test_off_imports_no_opentelemetry_at_all(temporal_server: DevServer) -> None:
    done = subprocess.run(
        [sys.executable, "-c", OFF, temporal_server.address],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"result": 1 + len("planresearchanalyzereviewsynthesize"), "opentelemetry": []}
