"""Tracing configuration (pure: no OpenTelemetry import, so a config can be written without the
``[otel]`` extra; the plugin imports OpenTelemetry only when it is given one)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The GenAI conventions' switch for prompt and completion content in telemetry.
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
#: Values of it that put content on spans (the newer conventions' modes, and plain booleans).
_CAPTURE_ON = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})
#: Environment variables that say where traces go; one of them set turns ``jamjet`` tracing on.
_ENDPOINT_ENV = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@dataclass(frozen=True, kw_only=True)
class TracingConfig:
    """OpenTelemetry traces and metrics (``JamJetConfig.tracing``; needs the ``[otel]`` extra).

    One trace follows a run from the client's start through the workflow to every activity on
    any worker (Temporal's ``OpenTelemetryInterceptor``, which the plugin adds), with GenAI
    spans for model calls, tools and agents, gate decisions and budget halts as span events,
    approval waits and Engram context as spans (docs/observability.md).

    Configured the standard way: with no provider given, the plugin makes Temporal's
    replay-safe tracer provider (``create_tracer_provider``), exporting as
    ``OTEL_TRACES_EXPORTER`` says (``otlp`` by default, to ``OTEL_EXPORTER_OTLP_ENDPOINT``;
    ``console``; ``none``), naming the service ``OTEL_SERVICE_NAME`` (else ``service_name``,
    else ``jamjet``), and sets it as the process's global provider; metrics likewise
    (``OTEL_METRICS_EXPORTER``). A global provider set before is used as it is.

    Attributes:
        tracer_provider: The provider to use: Temporal's replay-safe one
            (``temporalio.contrib.opentelemetry.create_tracer_provider()``), with your
            processors. Temporal's interceptor reads the global provider, so this one becomes
            the process's global provider (there can be only one).
        meter_provider: The meter provider for the GenAI metrics; None: the global one (made
            from the environment when none is set).
        capture_content: Put prompts, completions, tool arguments and results on spans. None:
            as ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` says (``true`` or
            ``SPAN_ONLY``); off unless asked for.
        temporal_spans: Temporal's own spans (``StartWorkflow``, ``RunWorkflow``,
            ``StartActivity``, ``RunActivity``), which carry the trace from the client through
            the workflow to each activity attempt. Without them a trace starts only where
            your code has a span current.
        metrics: Record ``gen_ai.client.token.usage``, ``gen_ai.client.operation.duration`` and
            the cost counter.
        service_name: The service name when ``OTEL_SERVICE_NAME`` does not set one (only for
            a provider the plugin makes).
        provider_name: ``gen_ai.provider.name`` of model calls (the model client speaks
            OpenAI's API: ``openai`` unless you know better, e.g. ``ollama`` behind it).
    """

    tracer_provider: Any = None
    meter_provider: Any = None
    capture_content: bool | None = None
    temporal_spans: bool = True
    metrics: bool = True
    service_name: str | None = None
    provider_name: str = "openai"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TracingConfig | None:
        """Tracing as the environment asks for it, or None when it does not.

        On when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set, or
        ``OTEL_TRACES_EXPORTER`` names an exporter; off when ``OTEL_SDK_DISABLED`` is true.
        What the ``jamjet`` command uses.
        """
        env = os.environ if env is None else env
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return None
        exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
        if any(env.get(name) for name in _ENDPOINT_ENV) or exporter not in ("", "none"):
            return cls()
        return None

    def captures_content(self, env: Mapping[str, str] | None = None) -> bool:
        """Whether prompts, completions, tool arguments and results go on spans."""
        if self.capture_content is not None:
            return self.capture_content
        env = os.environ if env is None else env
        return env.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _CAPTURE_ON
