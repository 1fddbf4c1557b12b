"""Adding ``JamJetPlugin()`` changes nothing a plain Temporal team can observe.

Every sample of tests/plain_temporal_samples.py (Temporal's hello samples: activities, local
activities, child workflows, signals, queries, updates, continue-as-new, cancellation, patching,
search attributes, async activity completion...) runs once on a client without the plugin and
once on a client with ``JamJetPlugin()`` (so on workers with it), and both runs must show the
same: results, query and update answers, failures, search attributes, and the history of what
the workflow code did (the plugin's own bookkeeping left out: its governance marker and its
``jamjet.*`` local activities).
"""

from __future__ import annotations

import ast
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from jamjet_temporal import JamJetPlugin
from jamjet_temporal.cli._devserver import DevServer
from tests.plain_temporal_samples import KEYWORD, NUMBER, SAMPLES, Observed

# How an activity ran: where several run at once, these come in any order.
_RACING = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
}
# Bookkeeping that is not the workflow code's doing, with or without the plugin.
_SKIPPED = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
}


def _marker(event: HistoryEvent) -> str | None:
    """A marker as the workflow code's act: its local activity or its patch; None for the
    plugin's own (its governance pin, its ``jamjet.*`` bookkeeping)."""
    attributes = event.marker_recorded_event_attributes
    details = attributes.details
    if "data" in details:  # a local activity
        name = str(json.loads(details["data"].payloads[0].data)["activity_type"])
    elif "patch-data" in details:
        name = str(json.loads(details["patch-data"].payloads[0].data)["id"])
    else:
        name = attributes.marker_name
    if name.startswith("jamjet."):
        return None
    return f"{attributes.marker_name}:{name}"


def _upsert(event: HistoryEvent) -> str | None:
    """An upsert as the workflow code's act. The SDK adds each patch to the run's
    ``TemporalChangeVersion`` search attribute, so the plugin's governance pin shows there too:
    it is left out like its marker."""
    fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
    shown: dict[str, object] = {}
    for name, payload in fields.indexed_fields.items():
        value = json.loads(payload.data) if payload.data else None
        if name == "TemporalChangeVersion" and isinstance(value, list):
            value = [v for v in value if not str(v).startswith("jamjet.")]
            if not value:
                continue
        shown[name] = value
    return json.dumps(shown, sort_keys=True) if shown else None


def _summary(events: list[HistoryEvent]) -> list[str]:
    """What the workflow code did, in order, as its history shows it.

    Activities that run at the same time start and finish in any order: a stretch of such
    events is compared as a set (sorted).
    """
    shown: list[str] = []
    scheduled: dict[int, str] = {}
    racing: list[str] = []
    for event in events:
        if event.event_type in _SKIPPED:
            continue
        kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        attributes = getattr(event, event.WhichOneof("attributes") or "")
        if event.event_type in _RACING:
            racing.append(f"{kind} {scheduled[attributes.scheduled_event_id]}")
            continue
        shown.extend(sorted(racing))
        racing.clear()
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = _marker(event)
            if marker is not None:
                shown.append(f"{kind} {marker}")
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            upsert = _upsert(event)
            if upsert is not None:
                shown.append(f"{kind} {upsert}")
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = attributes.activity_type.name
            shown.append(f"{kind} {attributes.activity_type.name}")
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED:
            shown.append(f"{kind} {scheduled[attributes.scheduled_event_id]}")
        elif event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            shown.append(f"{kind} {attributes.workflow_type.name}")
        else:
            shown.append(kind)
    return [*shown, *sorted(racing)]


async def _history(client: Client, workflow_id: str) -> list[str]:
    """What a workflow did across all its runs (continue-as-new), oldest run first."""
    runs: list[list[str]] = []
    run_id: str | None = None
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        events = [event async for event in handle.fetch_history_events()]
        runs.insert(0, _summary(events))
        started = events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return [kind for run in runs for kind in run]
        run_id = started.continued_execution_run_id


async def _observe(client: Client, sample: str) -> dict[str, Any]:
    """Runs one sample on ``client``; what it showed, and what its workflows' histories say."""
    tag = uuid.uuid4().hex[:8]
    observed: Observed = await SAMPLES[sample](client, f"parity-{tag}", f"{sample}-{tag}")
    histories = [await _history(client, workflow_id) for workflow_id in observed.workflow_ids]
    return {"observed": observed.values, "histories": histories}


@pytest.fixture(scope="module")
async def search_attributes(temporal_server: DevServer) -> None:
    """The samples' custom search attributes, registered as a team registers its own."""
    client = await Client.connect(temporal_server.address)
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={
                    KEYWORD.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
                    NUMBER.name: IndexedValueType.INDEXED_VALUE_TYPE_INT,
                },
            )
        )
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> JamJetPlugin:
    """``JamJetPlugin()`` exactly as a team adds it (its default audit store, in the working
    directory it was made in: a temporary one, not the checkout)."""
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("team"))
    try:
        return JamJetPlugin()
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("sample", sorted(SAMPLES))
async def test_the_plugin_changes_nothing_a_plain_temporal_team_sees(
    temporal_server: DevServer, search_attributes: None, plugin: JamJetPlugin, sample: str
) -> None:
    plain = await Client.connect(temporal_server.address)
    governed = await Client.connect(temporal_server.address, plugins=[plugin])
    without = await _observe(plain, sample)
    with_plugin = await _observe(governed, sample)
    assert with_plugin == without


def test_every_hello_sample_the_parity_test_promises_is_there() -> None:
    assert {
        "activity",
        "local_activity",
        "child_workflow",
        "signal",
        "query",
        "update",
        "continue_as_new",
        "cancel_activity",
        "cancel_workflow",
        "patch",
        "search_attributes",
        "async_activity_completion",
    } <= set(SAMPLES)


def test_the_samples_are_plain_temporal_code() -> None:
    tree = ast.parse((Path(__file__).parent / "plain_temporal_samples.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported <= {
        "__future__",
        "asyncio",
        "collections",
        "concurrent",
        "dataclasses",
        "datetime",
        "typing",
        "temporalio",
    }
