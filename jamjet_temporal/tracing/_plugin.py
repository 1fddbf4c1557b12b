"""Tracing, wiring: the providers, Temporal's OpenTelemetry interceptor and ours, the sandbox
passthrough, and flushing when a worker stops (client and worker side; imported by
``JamJetPlugin`` only when ``JamJetConfig.tracing`` is set)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import temporalio.worker
from temporalio.worker import WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from jamjet_temporal._shared._extras import missing_extra
from jamjet_temporal.budget._prices import PriceTable
from jamjet_temporal.errors import TracingConfigError
from jamjet_temporal.tracing import _names as names
from jamjet_temporal.tracing._config import TracingConfig

try:
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    from temporalio.contrib.opentelemetry import (
        OpenTelemetryInterceptor,
        ReplaySafeTracerProvider,
        create_tracer_provider,
    )

    from jamjet_temporal.tracing._activities import Telemetry, TracingActivityInbound
    from jamjet_temporal.tracing._workflow import Settings, SpanNotes, workflow_interceptor_class
except ImportError as err:
    raise missing_extra("otel", err) from err

_RunContext = Callable[[], AbstractAsyncContextManager[None]]
_Runner = Callable[[WorkflowRunner | None], WorkflowRunner]


class TracingInterceptor(temporalio.worker.Interceptor):
    """Our spans and span events on workers (Temporal's interceptor makes its own)."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        notes = SpanNotes(telemetry.settings, telemetry.tracer)
        self._workflow_class = workflow_interceptor_class(notes)

    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        return TracingActivityInbound(next, self._telemetry)

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[temporalio.worker.WorkflowInboundInterceptor]:
        return self._workflow_class


class Tracing:
    """What ``JamJetConfig.tracing`` adds to a plugin.

    Args:
        config: The tracing config.
        prices: The plugin's price table (the cost of each model call).

    Raises:
        TracingConfigError: The tracer provider given (or already global) is not Temporal's
            replay-safe one, or another global provider is already set; an exporter named by
            the environment is unknown or not installed.
    """

    def __init__(self, config: TracingConfig, prices: PriceTable) -> None:
        self.tracer_provider = _tracer_provider(config)
        self.meter_provider = _meter_provider(config) if config.metrics else None
        settings = Settings(
            capture_content=config.captures_content(), provider_name=config.provider_name
        )
        tracer = self.tracer_provider.get_tracer(names.SCOPE)
        telemetry = Telemetry(settings, tracer, prices, self.meter_provider)
        #: Temporal's interceptor first (outermost): its trace context is current in the rest
        #: (ours works inside or outside the gate's: workers put the client's interceptors
        #: first, replayers keep this order).
        self.interceptors: list[Any] = [
            OpenTelemetryInterceptor(add_temporal_spans=config.temporal_spans),
            TracingInterceptor(telemetry),
        ]

    def runner(self, inner: _Runner) -> _Runner:
        """``inner``'s workflow runner, with OpenTelemetry passed through the sandbox (as
        Temporal's ``OpenTelemetryPlugin`` does: spans made inside workflows and outside them
        must be of one OpenTelemetry)."""

        def configure(existing: WorkflowRunner | None) -> WorkflowRunner:
            runner = inner(existing)
            if isinstance(runner, SandboxedWorkflowRunner):
                restrictions = runner.restrictions.with_passthrough_modules("opentelemetry")
                return dataclasses.replace(runner, restrictions=restrictions)
            return runner

        return configure

    def run_context(self, inner: _RunContext | None) -> _RunContext:
        """Around a worker (and ``inner``): flush spans and metrics when it stops, so a
        process that exits at once (the ``jamjet`` command) loses none."""

        @contextlib.asynccontextmanager
        async def context() -> AsyncIterator[None]:
            try:
                if inner is None:
                    yield
                else:
                    async with inner():
                        yield
            finally:
                await asyncio.to_thread(self.flush)

        return context

    def flush(self) -> None:
        """Export what is buffered now."""
        self.tracer_provider.force_flush()
        flush = getattr(self.meter_provider, "force_flush", None)
        if flush is not None:
            flush()


def _is_unset(provider: object) -> bool:
    return isinstance(provider, trace.ProxyTracerProvider)


def _tracer_provider(config: TracingConfig) -> ReplaySafeTracerProvider:
    """The replay-safe provider to use, made the process's global one."""
    current = trace.get_tracer_provider()
    wanted = config.tracer_provider
    if wanted is not None:
        if not isinstance(wanted, ReplaySafeTracerProvider):
            raise TracingConfigError(
                f"JamJetConfig.tracing.tracer_provider is a {type(wanted).__name__}: workflows "
                "need Temporal's replay-safe provider, made with "
                "temporalio.contrib.opentelemetry.create_tracer_provider() (add your span "
                "processors to it)"
            )
        if current is not wanted:
            if not _is_unset(current):
                raise TracingConfigError(
                    "this process already has a global tracer provider "
                    f"({type(current).__name__}), and OpenTelemetry allows one: Temporal's "
                    "interceptor uses the global provider; give that one as "
                    "TracingConfig(tracer_provider=...) or none"
                )
            trace.set_tracer_provider(wanted)
        return wanted
    if isinstance(current, ReplaySafeTracerProvider):
        return current
    if not _is_unset(current):
        raise TracingConfigError(
            f"this process's global tracer provider is a {type(current).__name__}: workflows "
            "need Temporal's replay-safe provider; set one made with "
            "temporalio.contrib.opentelemetry.create_tracer_provider() instead"
        )
    provider = create_tracer_provider(resource=_resource(config))
    for exporter in _span_exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def _resource(config: TracingConfig) -> Resource:
    """``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``, else ``service_name``, else jamjet."""
    resource = Resource.create()
    named = str(resource.attributes.get(SERVICE_NAME, ""))
    if named and not named.startswith("unknown_service"):
        return resource
    return resource.merge(Resource({SERVICE_NAME: config.service_name or "jamjet"}))


def _exporter_names(variable: str) -> list[str]:
    value = os.environ.get(variable, "otlp")
    return [name.strip().lower() for name in value.split(",") if name.strip()]


def _protocol(signal: str) -> str:
    return (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()


def _span_exporters() -> list[SpanExporter]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names (``otlp`` over HTTP by default)."""
    found: list[SpanExporter] = []
    for name in _exporter_names("OTEL_TRACES_EXPORTER"):
        if name == "none":
            continue
        if name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            found.append(ConsoleSpanExporter())
        elif name == "otlp":
            protocol = _protocol("TRACES")
            if protocol == "grpc":
                try:
                    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                        OTLPSpanExporter as GrpcSpanExporter,
                    )
                except ImportError:
                    raise TracingConfigError(
                        "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs "
                        "pip install opentelemetry-exporter-otlp-proto-grpc (the [otel] extra "
                        "exports OTLP over HTTP: http/protobuf)"
                    ) from None
                found.append(GrpcSpanExporter())
            elif protocol == "http/protobuf":
                try:
                    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                        OTLPSpanExporter,
                    )
                except ImportError as err:
                    raise missing_extra("otel", err) from err
                found.append(OTLPSpanExporter())
            else:
                raise TracingConfigError(
                    f"OTLP protocol {protocol!r} is not supported: use http/protobuf (or grpc "
                    "with opentelemetry-exporter-otlp-proto-grpc installed)"
                )
        else:
            raise TracingConfigError(
                f"OTEL_TRACES_EXPORTER={name!r} is not an exporter jamjet can make: use otlp, "
                "console or none (or set your own tracer provider)"
            )
    return found


def _meter_provider(config: TracingConfig) -> MeterProvider:
    """The meter provider given, else the global one (made from the environment if unset)."""
    if config.meter_provider is not None:
        provider: MeterProvider = config.meter_provider
        return provider
    current = metrics.get_meter_provider()
    # Until one is set, the global meter provider is the API's proxy (a private class).
    if type(current).__name__ != "_ProxyMeterProvider":
        return current
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader

    readers: list[MetricReader] = []
    for name in _exporter_names("OTEL_METRICS_EXPORTER"):
        if name == "none":
            continue
        if name == "console":
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
        elif name == "otlp" and _protocol("METRICS") == "http/protobuf":
            try:
                from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                    OTLPMetricExporter,
                )
            except ImportError as err:
                raise missing_extra("otel", err) from err
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        else:
            raise TracingConfigError(
                f"OTEL_METRICS_EXPORTER={name!r} (protocol {_protocol('METRICS')!r}) is not "
                "one jamjet can make: use otlp over http/protobuf, console or none (or give "
                "TracingConfig(meter_provider=...))"
            )
    made = SdkMeterProvider(resource=_resource(config), metric_readers=readers)
    metrics.set_meter_provider(made)
    return metrics.get_meter_provider()
