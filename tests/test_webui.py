"""Temporal's Web UI tells the story: a run's current details, summaries and static summary.

A Temporal dev server of this module's own, WITH its Web UI, and an in-process worker enforcing
an approvals config. The browser test opens a run waiting for a $50,000 approval in the real
Web UI (headless Debian Chromium, driven with Playwright), screenshots it, and checks the page
says what the run waits for; the others check the same through the API (the UI's own query),
that summaries are metadata a replay does not compare, and what ``jamjet run`` names.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer, Worker

from activities.bank import send
from activities.notes import search
from jamjet_temporal import JamJetConfig, JamJetPlugin, acting_as
from jamjet_temporal._shared._wire import PIPELINE_EVENT_SIGNAL
from jamjet_temporal.approvals._client import find_pending, sign, submit
from jamjet_temporal.approvals._identity import SigningIdentity, generate_identity
from jamjet_temporal.approvals._load import parse_approvals
from jamjet_temporal.approvals._workflow import PendingApproval
from jamjet_temporal.cli._devserver import DevServer, free_port, is_listening
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule, ScriptToolCall
from jamjet_temporal.pipeline._workflow import PipelineEvent
from jamjet_temporal.plugin import AuditConfig, LLMConfig
from tests.browser import APPROVALS, CHROMIUM, CHROMIUM_ARGS
from tests.identities import PORTAL
from tests.webui_workflows import research_then_pay

#: The query the Web UI asks a running workflow for its current details.
METADATA_QUERY = "__temporal_workflow_metadata"


@dataclass
class WebUI:
    """The dev server with its Web UI, and a worker behind it."""

    temporal: DevServer
    url: str
    client: Client
    config: JamJetConfig
    task_queue: str
    bob: SigningIdentity


@pytest.fixture(scope="module")
def webui_temporal() -> Iterator[DevServer]:
    server = DevServer(port=free_port(), ui_port=free_port())
    server.start()
    try:
        ui = f"127.0.0.1:{server.ui_port}"
        deadline = time.monotonic() + 30
        while not is_listening(ui):
            assert time.monotonic() < deadline, f"the Web UI never listened on {ui}"
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def webui(
    webui_temporal: DevServer, model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WebUI]:
    root = tmp_path_factory.mktemp("webui")
    alice, _ = generate_identity("alice@example.com", root / "keys")
    bob, _ = generate_identity("bob@example.com", root / "keys")
    approvals = parse_approvals(
        APPROVALS.format(alice=alice.public_key, bob=bob.public_key, portal=PORTAL.public_key)
    )
    config = JamJetConfig(
        llm=LLMConfig(base_url=model_server.base_url),
        approvals=approvals,
        audit=AuditConfig(store=f"sqlite:///{root / 'audit.db'}"),
    )
    client = await Client.connect(webui_temporal.address, plugins=[JamJetPlugin(config)])
    task_queue = f"webui-{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JAMJET_BANK_LEDGER", str(root / "bank.db"))
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[research_then_pay],
            activities=[send, search],
        ):
            yield WebUI(
                webui_temporal,
                f"http://127.0.0.1:{webui_temporal.ui_port}",
                client,
                config,
                task_queue,
                bob,
            )


async def start_run(
    ui: WebUI, model_server: ModelServer, amount: float
) -> tuple[WorkflowHandle[object, str], PendingApproval]:
    """A run whose agent looks something up, then waits for a wire's approval."""
    marker = uuid.uuid4().hex
    model_server.add_rules(
        [
            ScriptRule(
                marker=marker,
                responses=[
                    ScriptResponse(
                        tool_calls=[ScriptToolCall(name="search", arguments={"query": "v2.3"})]
                    ),
                    ScriptResponse(content="v2.3 ships the policy violations panel"),
                ],
            )
        ]
    )
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    with acting_as("carol@example.com", signer=PORTAL):
        handle: WorkflowHandle[object, str] = await ui.client.start_workflow(
            research_then_pay.run,
            args=[f"what ships in v2.3? ({marker})", amount, "ACME GmbH"],
            id=run_id,
            task_queue=ui.task_queue,
            # What a team starting its own @workflow runs sets: the run's static summary.
            static_summary=f"wire ${amount:,.0f} to ACME GmbH",
            static_details="requested by carol@example.com through the portal",
        )
    for _ in range(300):
        try:
            return handle, await find_pending(ui.client, run_id, None)
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{run_id} never asked for approval")


async def current_details(handle: WorkflowHandle[object, str]) -> str:
    """What the Web UI shows as the run's current details (it asks the same query)."""
    metadata = await handle.query(METADATA_QUERY, result_type=WorkflowMetadata)
    return metadata.current_details


def summaries(history: WorkflowHistory) -> set[str]:
    """The summaries recorded in history (activities, local activities, timers)."""
    convert = DataConverter.default.payload_converter
    return {
        str(convert.from_payload(event.user_metadata.summary, str))
        for event in history.events
        if event.HasField("user_metadata")
        and event.user_metadata.HasField("summary")
        and event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    }


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)",
)
async def test_the_web_ui_says_what_a_run_waits_for(
    webui: WebUI, model_server: ModelServer, tmp_path: Path
) -> None:
    handle, request = await start_run(webui, model_server, 50_000)
    waiting = (
        "waiting for approval of wire_transfer $50,000 (to: ACME GmbH) · needs 1 of "
        "alice@example.com, bob@example.com · times out "
    )
    command = f"`jamjet approve {handle.id} --key KEY`"
    details_text = await current_details(handle)
    assert details_text.startswith(waiting), details_text
    assert details_text.endswith(f" UTC · {command}"), details_text

    timeline = tmp_path / "webui-timeline.png"
    shot = tmp_path / "webui-current-details.png"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            view = await browser.new_page(viewport={"width": 1440, "height": 900})
            await view.goto(f"{webui.url}/namespaces/default/workflows/{handle.id}")
            try:
                # The timeline names the steps by their summaries ("jamjet.llm.chat • chat
                # gpt-4o-mini", "search • tool search") and the approval's timer by its own.
                for label in ("chat gpt-4o-mini", "tool search", "approval timeout"):
                    await expect(
                        view.get_by_text(label).first,
                        f"the timeline does not show '{label}'; see {timeline}",
                    ).to_be_visible(timeout=30_000)
            finally:
                await view.screenshot(path=str(timeline), full_page=True)

            await view.get_by_text("User Metadata", exact=True).first.click()
            # The UI renders each text (markdown) in a frame of its own.
            details = view.frame_locator("#user-metadata-current-details").locator("body")
            summary = view.frame_locator("#user-metadata-summary").locator("body")
            try:
                await expect(
                    details.get_by_text("waiting for approval of wire_transfer $50,000"),
                    f"the run's current details are not shown; see {shot}",
                ).to_be_visible(timeout=30_000)
                await expect(
                    details.locator("code"),
                    f"the approve command is not shown as code; see {shot}",
                ).to_have_text(command.strip("`"))
                await expect(
                    summary, f"the run's static summary is not shown; see {shot}"
                ).to_contain_text("wire $50,000 to ACME GmbH")
            finally:
                await view.screenshot(path=str(shot), full_page=True)
            shown = " ".join((await details.inner_text()).split())
            assert shown == " ".join(details_text.replace("`", "").split()), f"see {shot}"
        finally:
            await browser.close()

    # Decided: the run goes on, and its details no longer say it waits.
    decided = await submit(webui.client, sign(webui.bob, request, "approved", "checked"))
    assert decided.accepted and decided.complete, decided.reason
    assert (await asyncio.wait_for(handle.result(), timeout=60)).startswith("txn_")
    assert await current_details(handle) == ""


async def test_summaries_are_metadata_a_replay_does_not_compare(
    webui: WebUI, model_server: ModelServer
) -> None:
    """Summaries are recorded in history with their commands; a history recorded before they
    were added (the same commands, no summaries) replays with the code that adds them."""
    handle, request = await start_run(webui, model_server, 1_250.5)
    details = await current_details(handle)
    assert details.startswith("waiting for approval of wire_transfer $1,250.50 (to: ACME GmbH)")
    decided = await submit(webui.client, sign(webui.bob, request, "approved"))
    assert decided.accepted and decided.complete, decided.reason
    await asyncio.wait_for(handle.result(), timeout=60)

    history = await handle.fetch_history()
    assert {
        "chat gpt-4o-mini",
        "tool search",
        "approval timeout",
        "audit: approval.requested",
        "audit: approval.decision",
    } <= summaries(history)
    replayer = Replayer(workflows=[research_then_pay], plugins=[JamJetPlugin(webui.config)])
    assert (await replayer.replay_workflow(history)).replay_failure is None

    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            event.ClearField("user_metadata")
    assert summaries(history) == set()
    assert (await replayer.replay_workflow(history)).replay_failure is None


async def test_jamjet_run_names_the_pipeline_and_what_its_wait_node_waits_for(
    webui: WebUI, model_server: ModelServer, tmp_path: Path
) -> None:
    pipeline = tmp_path / "wait.yaml"
    pipeline.write_text(
        "workflow: {id: review-flow, version: 1.2.0, description: A draft waits for review}\n"
        "nodes:\n"
        "  ask: {type: wait, event: reviewed, timeout_hours: 1, next: publish}\n"
        "  publish: {type: wait, event: published}\n"
    )
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    queue = f"webui-run-{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TEMPORAL_"))},
        "TEMPORAL_ADDRESS": webui.temporal.address,
        "OPENAI_BASE_URL": model_server.base_url,
    }
    command = [sys.executable, "-m", "jamjet_temporal", "run", "wait.yaml"]
    runner = await asyncio.create_subprocess_exec(
        *command,
        "--id",
        run_id,
        "--task-queue",
        queue,
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        handle: WorkflowHandle[object, str] = webui.client.get_workflow_handle(run_id)

        async def details_saying(text: str) -> str:
            for _ in range(300):
                try:
                    shown = await current_details(handle)
                except Exception:
                    shown = ""
                if text in shown:
                    return shown
                await asyncio.sleep(0.1)
            raise AssertionError(f"{run_id}'s current details never said {text!r}")

        first = await details_saying("waiting for event 'reviewed'")
        assert first.startswith("waiting for event 'reviewed' (node ask) · times out "), first
        assert first.endswith(
            f" UTC · `jamjet resume {run_id} --event reviewed --data '{{...}}'`"
        ), first
        described = await handle.describe()
        assert await described.static_summary() == "pipeline review-flow 1.2.0 (wait.yaml)"
        assert await described.static_details() == "A draft waits for review"

        await handle.signal(PIPELINE_EVENT_SIGNAL, PipelineEvent(event="reviewed", data={}))
        second = await details_saying("waiting for event 'published'")
        assert second == (
            f"waiting for event 'published' (node publish) · "
            f"`jamjet resume {run_id} --event published --data '{{...}}'`"
        ), "the first wait's line must be gone once it moved on"
        await handle.signal(PIPELINE_EVENT_SIGNAL, PipelineEvent(event="published", data={}))
        out, err = await asyncio.wait_for(runner.communicate(), timeout=120)
    finally:
        if runner.returncode is None:
            runner.kill()
            await runner.wait()
    assert runner.returncode == 0, (out + err).decode()


def test_the_approval_line_follows_the_request() -> None:
    """Pure text from what the pending query shows: stage, approvals so far, several requests."""
    from datetime import UTC, datetime

    from jamjet_temporal.approvals._details import approval_line

    request = PendingApproval(
        run_id="wire-50k",
        workflow_run_id="r1",
        nonce="n1",
        workflow_type="transfer",
        approval_id="apr_2",
        action="wire_transfer",
        args={"amount": 250_000.0, "to": "ACME GmbH"},
        digest="sha256:x",
        requester="carol@example.com",
        requested_at=datetime(2026, 6, 1, 9, 0, tzinfo=UTC),
        stage="primary",
        eligible=["alice@example.com", "bob@example.com"],
        required=2,
        approved_by=["alice@example.com"],
        deadline=datetime(2026, 6, 2, 9, 0, tzinfo=UTC),
    )
    assert approval_line(request, several=False) == (
        "waiting for approval of wire_transfer $250,000 (to: ACME GmbH) · needs 2 of "
        "alice@example.com, bob@example.com · approved so far by alice@example.com · "
        "times out 2026-06-02 09:00 UTC · `jamjet approve wire-50k --key KEY`"
    )
    escalated = request.model_copy(
        update={
            "stage": "escalated",
            "eligible": ["dave@example.com"],
            "required": 1,
            "approved_by": [],
            "deadline": None,
            "action": "publish",
            "args": {"description": "post `v2.3` notes", "channel": "#all", "n": [1, 2]},
        }
    )
    assert approval_line(escalated, several=True) == (
        "waiting for approval of publish (description: post 'v2.3' notes, channel: #all, "
        "n: [1, 2]) · escalated: needs 1 of dave@example.com · "
        "`jamjet approve wire-50k --approval apr_2 --key KEY`"
    )


def test_arguments_read_as_people_typed_them() -> None:
    from jamjet_temporal._shared._details import args_text, people

    assert args_text({"amount": 1250.5}) == "$1,250.50"
    assert args_text({"amount": True, "to": "x"}) == "(amount: true, to: x)"
    assert args_text({"args": ["a" * 60]}) == '(args: ["' + "a" * 37 + "…)"  # 40 characters
    assert args_text({f"k{i}": i for i in range(6)}) == "(k0: 0, k1: 1, k2: 2, k3: 3, +2 more)"
    assert args_text({}) == ""
    assert people([f"p{i}" for i in range(7)]) == "p0, p1, p2, p3, p4 +2 more"
