"""Replay never duplicates telemetry: replaying a history emits no span, and a worker that
replays every task from the start (no cache) exports each span once, as a cached one does."""

from __future__ import annotations

import uuid
from collections import Counter

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor
from temporalio.worker import Replayer

from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule, ScriptToolCall
from tests.tracing.conftest import Make, Otel, by_name, events, one
from tests.tracing.traced_workflows import ask, lookup


def script(model_server: ModelServer, marker: str) -> None:
    model_server.add_rules(
        [
            ScriptRule(
                id=marker,
                marker=marker,
                responses=[
                    ScriptResponse(
                        tool_calls=[ScriptToolCall(name="tracing.lookup", arguments={"term": "a"})]
                    ),
                    ScriptResponse(
                        tool_calls=[ScriptToolCall(name="tracing.lookup", arguments={"term": "b"})]
                    ),
                    ScriptResponse(content="done"),
                ],
            )
        ]
    )


async def test_replaying_a_fresh_history_emits_no_spans(
    traced: Make, otel: Otel, model_server: ModelServer
) -> None:
    marker = uuid.uuid4().hex[:8]
    script(model_server, marker)
    run = await traced([ask], [lookup])
    workflow_id = f"traced-replay-{marker}"
    await run.client.execute_workflow(
        ask.run, f"look two things up {marker}", id=workflow_id, task_queue=run.queue
    )
    assert len(otel.trace_of(workflow_id)) > 10
    history = await run.client.get_workflow_handle(workflow_id).fetch_history()
    exported = len(otel.spans())
    started = Started()
    otel.provider.add_span_processor(started)
    try:
        replayer = Replayer(workflows=[ask], plugins=[run.plugin])
        result = await replayer.replay_workflow(history)
    finally:
        started.names = None  # processors cannot be removed: this one stops counting
    assert result.replay_failure is None
    # The replay ran the workflow, interceptors and our observer again (spans were started
    # with the same ids) and exported nothing.
    assert started.seen >= {"RunWorkflow:tracing.ask", "invoke_agent researcher"}
    assert otel.spans()[exported:] == []


class Started(SpanProcessor):
    """Counts the spans started while ``names`` is a set."""

    def __init__(self) -> None:
        self.names: set[str] | None = set()
        self.seen: set[str] = set()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.names is not None:
            self.seen.add(span.name)


async def test_a_worker_without_a_cache_exports_each_span_once_like_a_cached_one(
    traced: Make, otel: Otel, model_server: ModelServer
) -> None:
    shapes = []
    for cache in (1000, 0):  # 0: every workflow task replays the run from its start
        marker = uuid.uuid4().hex[:8]
        script(model_server, marker)
        run = await traced([ask], [lookup], max_cached_workflows=cache)
        workflow_id = f"traced-cache{cache}-{marker}"
        await run.client.execute_workflow(
            ask.run, f"look two things up {marker}", id=workflow_id, task_queue=run.queue
        )
        spans = otel.trace_of(workflow_id)
        span_ids = Counter(span.context.span_id for span in spans if span.context is not None)
        assert max(span_ids.values()) == 1, "a span was exported twice"
        agent = one(spans, "invoke_agent researcher")
        decisions = [d["jamjet.gate.subject"] for d in events(agent, "jamjet.gate.decision")]
        shapes.append(
            (
                sorted(span.name for span in spans),
                decisions,
                len(by_name(spans, "execute_tool tracing.lookup")),
            )
        )
    cached, uncached = shapes
    assert uncached == cached
    assert cached[1] == ["gpt-4o-mini", "tracing.lookup"] * 2 + ["gpt-4o-mini"]
