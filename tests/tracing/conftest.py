"""The tracing tests' telemetry: the process's replay-safe tracer provider exporting to memory,
a meter provider read in memory, and traced workers on their own queues."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider, create_tracer_provider
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.plugin import AuditConfig, TracingConfig


@dataclass
class Otel:
    """The session's telemetry, read back in memory."""

    provider: ReplaySafeTracerProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    meter_provider: MeterProvider

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def trace_of(self, workflow_id: str) -> list[ReadableSpan]:
        """Every span of the trace the run ``workflow_id`` belongs to (its start's trace;
        queries, signals and updates sent to it later are traces of their own)."""
        ids = {
            span.context.trace_id
            for span in self.spans()
            if span.context is not None
            and span.name.startswith("RunWorkflow:")
            and span.attributes is not None
            and span.attributes.get("temporalWorkflowID") == workflow_id
        }
        assert len(ids) == 1, f"{workflow_id}: traces {ids}"
        (trace_id,) = ids
        return [s for s in self.spans() if s.context is not None and s.context.trace_id == trace_id]

    def metric_points(self, name: str) -> list[Any]:
        """The data points of metric ``name`` collected now."""
        data = self.reader.get_metrics_data()
        points: list[Any] = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        points += list(metric.data.data_points)
        return points


@pytest.fixture(scope="session")
def otel() -> Otel:
    current = trace.get_tracer_provider()
    if isinstance(current, ReplaySafeTracerProvider):
        provider = current
    else:
        provider = create_tracer_provider()
        trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    return Otel(provider, exporter, reader, MeterProvider(metric_readers=[reader]))


def tracing(otel: Otel, *, capture: bool = False) -> TracingConfig:
    return TracingConfig(
        tracer_provider=otel.provider, meter_provider=otel.meter_provider, capture_content=capture
    )


@dataclass
class Traced:
    """A client with a traced plugin and a worker on its own queue."""

    client: Client
    queue: str
    plugin: JamJetPlugin
    audit_url: str


Make = Callable[..., Any]


@pytest.fixture
async def traced(
    temporal_server: DevServer,
    jamjet_config: JamJetConfig,
    otel: Otel,
    tmp_path: Path,
    task_queue: str,
) -> AsyncIterator[Make]:
    """Starts traced workers for the test (stopped at its end)."""
    workers: list[Worker] = []

    async def make(
        workflows: Sequence[Any],
        activities: Sequence[Any] = (),
        *,
        capture: bool = False,
        max_cached_workflows: int = 1000,
        **config: Any,
    ) -> Traced:
        url = f"sqlite:///{tmp_path / f'audit-{len(workers)}.db'}"
        settings = dataclasses.replace(
            jamjet_config,
            audit=AuditConfig(store=url),
            tracing=tracing(otel, capture=capture),
            **config,
        )
        plugin = JamJetPlugin(settings)
        client = await Client.connect(temporal_server.address, plugins=[plugin])
        queue = f"{task_queue}-{len(workers)}"
        worker = Worker(
            client,
            task_queue=queue,
            workflows=list(workflows),
            activities=list(activities),
            max_cached_workflows=max_cached_workflows,
        )
        workers.append(worker)
        await worker.__aenter__()
        return Traced(client, queue, plugin, url)

    try:
        yield make
    finally:
        for worker in reversed(workers):
            await worker.__aexit__(None, None, None)


def by_name(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = by_name(spans, name)
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def parent_of(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    for other in spans:
        if other.context is not None and other.context.span_id == span.parent.span_id:
            return other
    return None


def ancestors(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> list[str]:
    """The names of the span's ancestors, nearest first (as far as they were exported)."""
    names: list[str] = []
    current = parent_of(span, spans)
    while current is not None:
        names.append(current.name)
        current = parent_of(current, spans)
    return names


def events(span: ReadableSpan, name: str) -> list[dict[str, Any]]:
    return [dict(event.attributes or {}) for event in span.events if event.name == name]
