"""The approvals page (`jamjet ui`) in a real browser, and its HTTP API's refusals.

A Temporal dev server of this module's own (so no run left waiting by another test, whose
worker is gone, is in the list), an in-process worker enforcing an approvals config, and the
page served by ``serve_ui`` for alice; headless Debian Chromium is driven with Playwright.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin, acting_as
from jamjet_temporal._devserver import DevServer, free_port
from jamjet_temporal.approvals._client import find_pending
from jamjet_temporal.approvals._config import parse_approvals
from jamjet_temporal.approvals._identity import SigningIdentity, generate_identity
from jamjet_temporal.approvals._ui import CSRF_HEADER, serve_ui
from jamjet_temporal.approvals._workflow import PendingApproval
from jamjet_temporal.audit import AuditEvent, open_store
from tests.identities import PORTAL
from workflows.transfer.bank import send
from workflows.transfer.transfer import transfer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
APPROVALS = """\
approvers:
  - {{id: alice@example.com, public_key: "{alice}"}}
  - {{id: bob@example.com, public_key: "{bob}"}}
clients:
  - {{id: portal, public_key: "{portal}", acts_for: ["*@example.com"]}}
rules:
  - action: wire_transfer
    approvers: [alice@example.com, bob@example.com]
    thresholds: [{{field: amount, above: 100000, required: 2}}]
    timeout_seconds: 86400
"""


@dataclass
class Page:
    """The served page and what is behind it."""

    url: str
    client: Client
    task_queue: str
    audit_url: str
    alice: SigningIdentity


@pytest.fixture(scope="module")
def ui_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = DevServer(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def page_server(
    ui_temporal: DevServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Page]:
    root = tmp_path_factory.mktemp("ui")
    alice, _ = generate_identity("alice@example.com", root / "keys")
    bob, _ = generate_identity("bob@example.com", root / "keys")
    config = parse_approvals(
        APPROVALS.format(alice=alice.public_key, bob=bob.public_key, portal=PORTAL.public_key)
    )
    audit_url = f"sqlite:///{root / 'audit.db'}"
    task_queue = f"ui-{uuid.uuid4().hex[:8]}"
    client = await Client.connect(
        ui_temporal.address,
        plugins=[JamJetPlugin(JamJetConfig(approvals=config, audit_store=audit_url))],
    )
    port = free_port()
    ready = asyncio.Event()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JAMJET_BANK_LEDGER", str(root / "bank.db"))
        async with Worker(client, task_queue=task_queue, workflows=[transfer], activities=[send]):
            served = asyncio.create_task(serve_ui(client, alice, port=port, ready=ready))
            try:
                await asyncio.wait_for(ready.wait(), timeout=15)
                yield Page(f"http://127.0.0.1:{port}/", client, task_queue, audit_url, alice)
            finally:
                served.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await served


async def start_transfer(page: Page, amount: float, requester: str) -> WorkflowHandle[object, str]:
    with acting_as(requester, signer=PORTAL):
        return await page.client.start_workflow(
            transfer.run,
            args=[amount, "ACME GmbH"],
            id=f"exec_{uuid.uuid4().hex[:8]}",
            task_queue=page.task_queue,
        )


async def wait_pending(page: Page, run_id: str) -> PendingApproval:
    for _ in range(150):
        try:
            return await find_pending(page.client, run_id, None)
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{run_id} never asked for approval")


async def audit_of(page: Page, run_id: str) -> list[AuditEvent]:
    store = open_store(page.audit_url)
    try:
        return [stored.event for stored in await store.events(run_id)]
    finally:
        await store.close()


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)",
)
async def test_approve_in_the_browser(page_server: Page, tmp_path: Path) -> None:
    comment = "invoice INV-2291 checked"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            view = await browser.new_page(viewport={"width": 1440, "height": 700})
            try:
                # The page is open BEFORE the run starts: the row must come by itself.
                await view.goto(page_server.url)
                await expect(view.get_by_role("heading", name="Pending approvals")).to_be_visible()
                await expect(view.get_by_text("Signed in as alice@example.com")).to_be_visible()
                await expect(view.get_by_text("No pending approvals.")).to_be_visible()

                handle = await start_transfer(page_server, 50_000, "carol@example.com")
                row = view.locator(f'tr[data-run-id="{handle.id}"]')
                await expect(row).to_be_visible(timeout=30_000)
                await expect(row).to_contain_text("$50,000")
                await expect(row).to_contain_text("carol@example.com")
                await expect(row).to_contain_text("wire_transfer")
                await expect(row).to_contain_text("ACME GmbH")
                await expect(row).to_contain_text("0 of 1 approved")
                await row.get_by_label("Comment").fill(comment)
                await view.screenshot(path=str(tmp_path / "ui.png"), full_page=True)

                await row.get_by_role("button", name="Approve").click()
                status = view.get_by_role("status")
                await expect(status).to_contain_text("Accepted", timeout=30_000)
                await expect(status).to_contain_text("Audit event evt_")
                outcome = await status.text_content() or ""
                await expect(row).to_have_count(0, timeout=10_000)
                await view.screenshot(path=str(tmp_path / "ui-after.png"), full_page=True)
            except BaseException:
                await view.screenshot(path=str(tmp_path / "ui-failed.png"), full_page=True)
                raise
        finally:
            await browser.close()

    txn = await asyncio.wait_for(handle.result(), timeout=60)
    assert txn.startswith("txn_")
    decisions = [e for e in await audit_of(page_server, handle.id) if e.kind == "approval.decision"]
    assert len(decisions) == 1
    assert decisions[0].data["approver"] == "alice@example.com"
    assert decisions[0].data["comment"] == comment
    assert decisions[0].data["decision"] == "approved"
    assert f"Audit event {decisions[0].id}." in outcome, outcome


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)",
)
async def test_buttons_disabled_for_who_may_not_decide(page_server: Page, tmp_path: Path) -> None:
    """Served for someone the rule does not name: the row shows, its buttons do not work."""
    port = free_port()
    ready = asyncio.Event()
    mallory = SigningIdentity.generate("mallory@example.com")
    served = asyncio.create_task(serve_ui(page_server.client, mallory, port=port, ready=ready))
    handle = await start_transfer(page_server, 250_000, "carol@example.com")
    try:
        await asyncio.wait_for(ready.wait(), timeout=15)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                view = await browser.new_page(viewport={"width": 1440, "height": 500})
                await view.goto(f"http://127.0.0.1:{port}/")
                row = view.locator(f'tr[data-run-id="{handle.id}"]')
                await expect(row).to_be_visible(timeout=30_000)
                await expect(row).to_contain_text("$250,000")
                await expect(row).to_contain_text("0 of 2 approved")
                await expect(row.get_by_role("button", name="Approve")).to_be_disabled()
                await expect(row.get_by_role("button", name="Reject")).to_be_disabled()
                await expect(row).to_contain_text("You are not an approver for wire_transfer")
                await view.screenshot(path=str(tmp_path / "ui-not-eligible.png"), full_page=True)
            finally:
                await browser.close()
    finally:
        await handle.terminate("test over")
        served.cancel()
        with pytest.raises(asyncio.CancelledError):
            await served


def lowered(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items}


def http(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, str, Mapping[str, str]]:
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(), lowered(response.headers.items())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), lowered(error.headers.items())


async def post_decide(
    page: Page, payload: object, *, token: str | None, content_type: str = "application/json"
) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers[CSRF_HEADER] = token
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, text, _ = await asyncio.to_thread(
        http, page.url + "api/decide", method="POST", body=raw, headers=headers
    )
    return status, json.loads(text)


async def csrf_token(page: Page) -> str:
    status, text, headers = await asyncio.to_thread(http, page.url)
    assert status == 200
    assert "Signed in as" in text and "alice@example.com" in text
    assert "script-src 'self'" in headers["content-security-policy"]
    marker = '<meta name="jamjet-csrf" content="'
    start = text.index(marker) + len(marker)
    return text[start : text.index('"', start)]


async def test_decide_api_refusals(page_server: Page) -> None:
    token = await csrf_token(page_server)
    good = {"run_id": "exec_nope", "approval_id": "apr_1", "decision": "approved", "comment": ""}

    # Cross-site protection: the token header and a JSON content type are both required.
    status, body = await post_decide(page_server, good, token=None)
    assert status == 403, body
    status, body = await post_decide(page_server, good, token="forged")
    assert status == 403, body
    status, body = await post_decide(page_server, good, token=token, content_type="text/plain")
    assert status == 403, body

    # Bad input names the field.
    status, body = await post_decide(page_server, {**good, "decision": "maybe"}, token=token)
    assert (status, body["field"]) == (400, "decision"), body
    status, body = await post_decide(page_server, {**good, "run_id": ""}, token=token)
    assert (status, body["field"]) == (400, "run_id"), body
    status, body = await post_decide(page_server, {**good, "comment": 7}, token=token)
    assert (status, body["field"]) == (400, "comment"), body
    missing = {k: v for k, v in good.items() if k != "approval_id"}
    status, body = await post_decide(page_server, missing, token=token)
    assert (status, body["field"]) == (400, "approval_id"), body
    status, body = await post_decide(page_server, b"{not json", token=token)
    assert status == 400, body

    # Unknown run → 404.
    status, body = await post_decide(page_server, good, token=token)
    assert status == 404, body
    assert "exec_nope" in str(body["error"])

    # A page served under another host name (DNS rebinding) is refused.
    status, _, _ = await asyncio.to_thread(
        http, page_server.url + "api/pending", headers={"Host": "evil.example:80"}
    )
    assert status == 400


async def test_refused_decision_is_a_200_and_reject_closes(page_server: Page) -> None:
    """Alice asks, so she may not approve (four-eyes): the run refuses; she may reject."""
    token = await csrf_token(page_server)
    handle = await start_transfer(page_server, 1_250.5, "alice@example.com")
    request = await wait_pending(page_server, handle.id)

    for _ in range(100):  # visibility is eventually consistent
        status, text, _ = await asyncio.to_thread(http, page_server.url + "api/pending")
        assert status == 200, text
        mine = [item for item in json.loads(text) if item["run_id"] == handle.id]
        if mine:
            break
        await asyncio.sleep(0.1)
    assert len(mine) == 1
    assert mine[0]["eligible_for_me"] is True
    assert mine[0]["can_approve"] is False and mine[0]["can_reject"] is True
    assert "four-eyes" in mine[0]["why_not"]
    assert mine[0]["digest"] == request.digest

    ids = {"run_id": handle.id, "approval_id": request.approval_id}
    status, body = await post_decide(
        page_server, {**ids, "decision": "approved", "comment": "mine"}, token=token
    )
    assert status == 200, body
    assert body["accepted"] is False and body["complete"] is False
    assert "four-eyes" in str(body["reason"])
    assert str(body["event_id"])

    status, body = await post_decide(
        page_server, {**ids, "decision": "rejected", "comment": "wrong account"}, token=token
    )
    assert status == 200, body
    assert body["accepted"] is True and body["complete"] is True
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), timeout=60)

    # Closed now: the same request is no longer open.
    status, body = await post_decide(
        page_server, {**ids, "decision": "rejected", "comment": ""}, token=token
    )
    assert status == 404, body
    kinds = [(e.kind, e.data.get("accepted")) for e in await audit_of(page_server, handle.id)]
    assert ("approval.refused", False) in kinds
    assert ("approval.decision", True) in kinds
