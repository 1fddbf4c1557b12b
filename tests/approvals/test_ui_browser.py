"""The approvals page (`jamjet ui`) in a real browser, and its HTTP API's refusals.

A Temporal dev server of this module's own (so no run left waiting by another test, whose
worker is gone, is in the list), an in-process worker enforcing an approvals config, and the
page served by ``serve_ui`` for alice; headless Debian Chromium is driven with Playwright.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Route, async_playwright, expect
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.worker import Worker

from activities.bank import send
from jamjet_temporal import JamJetConfig, JamJetPlugin, acting_as
from jamjet_temporal.approvals._client import find_pending
from jamjet_temporal.approvals._identity import SigningIdentity, generate_identity
from jamjet_temporal.approvals._load import parse_approvals
from jamjet_temporal.approvals._ui import CSRF_HEADER, TOKEN_COOKIE, serve_ui
from jamjet_temporal.approvals._workflow import PendingApproval
from jamjet_temporal.audit import AuditEvent, open_store
from jamjet_temporal.cli._devserver import DevServer, free_port
from jamjet_temporal.plugin import AuditConfig
from tests.browser import APPROVALS, CHROMIUM, CHROMIUM_ARGS
from tests.identities import PORTAL
from workflows.transfer import transfer


@dataclass
class Page:
    """The served page and what is behind it."""

    url: str
    token: str
    client: Client
    task_queue: str
    audit_url: str
    alice: SigningIdentity
    alice_key: Path
    temporal: DevServer

    @property
    def url_with_token(self) -> str:
        """What ``jamjet ui`` prints: the page's URL carrying the launch token."""
        return f"{self.url}?token={self.token}"

    @property
    def bearer(self) -> dict[str, str]:
        """How a script proves it holds the launch token."""
        return {"Authorization": f"Bearer {self.token}"}


def split_launch_url(url: str) -> tuple[str, str]:
    """``http://host:port/?token=T`` → (``http://host:port/``, ``T``)."""
    parts = urlsplit(url)
    return parts._replace(query="").geturl(), parse_qs(parts.query)["token"][0]


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
    alice, alice_key = generate_identity("alice@example.com", root / "keys")
    bob, _ = generate_identity("bob@example.com", root / "keys")
    config = parse_approvals(
        APPROVALS.format(alice=alice.public_key, bob=bob.public_key, portal=PORTAL.public_key)
    )
    audit_url = f"sqlite:///{root / 'audit.db'}"
    task_queue = f"ui-{uuid.uuid4().hex[:8]}"
    client = await Client.connect(
        ui_temporal.address,
        plugins=[JamJetPlugin(JamJetConfig(approvals=config, audit=AuditConfig(store=audit_url)))],
    )
    port = free_port()
    ready = asyncio.Event()
    printed: list[str] = []
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JAMJET_BANK_LEDGER", str(root / "bank.db"))
        async with Worker(client, task_queue=task_queue, workflows=[transfer], activities=[send]):
            served = asyncio.create_task(
                serve_ui(client, alice, port=port, ready=ready, on_listening=printed.append)
            )
            try:
                await asyncio.wait_for(ready.wait(), timeout=15)
                url, token = split_launch_url(printed[0])
                assert url == f"http://127.0.0.1:{port}/"
                yield Page(url, token, client, task_queue, audit_url, alice, alice_key, ui_temporal)
            finally:
                served.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await served


async def start_transfer(
    page: Page,
    amount: float,
    requester: str,
    *,
    run_id: str | None = None,
    task_queue: str | None = None,
) -> WorkflowHandle[object, str]:
    with acting_as(requester, signer=PORTAL):
        return await page.client.start_workflow(
            transfer.run,
            args=[amount, "ACME GmbH"],
            id=run_id or f"exec_{uuid.uuid4().hex[:8]}",
            task_queue=task_queue or page.task_queue,
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
                await view.goto(page_server.url_with_token)
                assert view.url == page_server.url, "the token must leave the address bar"
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
    printed: list[str] = []
    mallory = SigningIdentity.generate("mallory@example.com")
    served = asyncio.create_task(
        serve_ui(page_server.client, mallory, port=port, ready=ready, on_listening=printed.append)
    )
    handle = await start_transfer(page_server, 250_000, "carol@example.com")
    try:
        await asyncio.wait_for(ready.wait(), timeout=15)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                view = await browser.new_page(viewport={"width": 1440, "height": 500})
                await view.goto(printed[0])
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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Shows a redirect as it is (its Location and Set-Cookie) instead of following it."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, str, Mapping[str, str]]:
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with _OPENER.open(request, timeout=30) as response:
            return response.status, response.read().decode(), lowered(response.headers.items())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), lowered(error.headers.items())


async def post_decide(
    page: Page,
    payload: object,
    *,
    token: str | None,
    content_type: str = "application/json",
    signed_in: bool = True,
) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": content_type, **(page.bearer if signed_in else {})}
    if token is not None:
        headers[CSRF_HEADER] = token
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, text, _ = await asyncio.to_thread(
        http, page.url + "api/decide", method="POST", body=raw, headers=headers
    )
    return status, json.loads(text)


async def csrf_token(page: Page) -> str:
    status, text, headers = await asyncio.to_thread(http, page.url, headers=page.bearer)
    assert status == 200
    assert "Signed in as" in text and "alice@example.com" in text
    assert "script-src 'self'" in headers["content-security-policy"]
    marker = '<meta name="jamjet-csrf" content="'
    start = text.index(marker) + len(marker)
    return text[start : text.index('"', start)]


def shown(request: PendingApproval) -> dict[str, str]:
    """What the page posts back about the request it showed."""
    return {
        "run_id": request.run_id,
        "approval_id": request.approval_id,
        "workflow_run_id": request.workflow_run_id,
        "nonce": request.nonce,
        "digest": request.digest,
    }


async def listed(page: Page, run_id: str) -> list[dict[str, object]]:
    """The page's listing of ``run_id`` once visibility shows it (eventually consistent)."""
    for _ in range(100):
        status, text, _ = await asyncio.to_thread(
            http, page.url + "api/pending", headers=page.bearer
        )
        assert status == 200, text
        mine = [item for item in json.loads(text)["requests"] if item["run_id"] == run_id]
        if mine:
            return mine
        await asyncio.sleep(0.1)
    raise AssertionError(f"{run_id} never listed")


async def decisions_of(page: Page, run_id: str) -> list[AuditEvent]:
    return [
        e
        for e in await audit_of(page, run_id)
        if e.kind in ("approval.decision", "approval.refused")
    ]


async def test_without_the_launch_token_nothing_is_served(page_server: Page) -> None:
    """Another account on the machine reaches the port, never the page, its CSRF token or a
    decision; the URL `jamjet ui` prints opens it once and leaves a strict, HttpOnly cookie."""
    csrf = await csrf_token(page_server)
    handle = await start_transfer(page_server, 5, "carol@example.com")
    try:
        request = await wait_pending(page_server, handle.id)
        strangers: list[dict[str, str]] = [
            {},
            {"Authorization": "Bearer forged"},
            {"Authorization": page_server.token},  # no scheme
            {"Cookie": f"{TOKEN_COOKIE}=forged"},
        ]
        for headers in strangers:
            for path in ("", "app.js", "api/pending", "?token=forged"):
                status, text, _ = await asyncio.to_thread(
                    http, page_server.url + path, headers=headers
                )
                assert status == 403, (path, headers, status, text)
                assert "open the URL printed by `jamjet ui`" in text
                assert csrf not in text and page_server.token not in text
            # Even with the CSRF token (scraped no longer possible), no launch token, no decision.
            status, body = await post_decide(
                page_server,
                {**shown(request), "decision": "approved", "comment": "as alice"},
                token=csrf,
                content_type="application/json",
                signed_in=False,
            )
            assert status == 403, body
        assert await decisions_of(page_server, handle.id) == []
        assert (await find_pending(page_server.client, handle.id, None)).approved_by == []

        # The URL printed: the token becomes a cookie and leaves the address bar.
        status, _, headers = await asyncio.to_thread(http, page_server.url_with_token)
        assert status == 303
        assert headers["location"] == "/"
        cookie = headers["set-cookie"]
        assert cookie.startswith(f"{TOKEN_COOKIE}={page_server.token};")
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        status, text, _ = await asyncio.to_thread(
            http, page_server.url, headers={"Cookie": f"{TOKEN_COOKIE}={page_server.token}"}
        )
        assert status == 200 and csrf in text
    finally:
        await handle.terminate("test over")


async def test_decide_api_refusals(page_server: Page) -> None:
    token = await csrf_token(page_server)
    good = {
        "run_id": "exec_nope",
        "approval_id": "apr_1",
        "workflow_run_id": "0000",
        "nonce": "n",
        "digest": "sha256:00",
        "decision": "approved",
        "comment": "",
    }

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
    for name in ("approval_id", "workflow_run_id", "nonce", "digest"):
        missing = {k: v for k, v in good.items() if k != name}
        status, body = await post_decide(page_server, missing, token=token)
        assert (status, body["field"]) == (400, name), body
    status, body = await post_decide(page_server, b"{not json", token=token)
    assert status == 400, body

    # Unknown run → 404.
    status, body = await post_decide(page_server, good, token=token)
    assert status == 404, body
    assert "exec_nope" in str(body["error"])

    # A page served under another host name (DNS rebinding) is refused.
    status, _, _ = await asyncio.to_thread(
        http,
        page_server.url + "api/pending",
        headers={"Host": "evil.example:80", **page_server.bearer},
    )
    assert status == 400


async def test_refused_decision_is_a_200_and_reject_closes(page_server: Page) -> None:
    """Alice asks, so she may not approve (four-eyes): the run refuses; she may reject."""
    token = await csrf_token(page_server)
    handle = await start_transfer(page_server, 1_250.5, "alice@example.com")
    request = await wait_pending(page_server, handle.id)

    mine = await listed(page_server, handle.id)
    assert len(mine) == 1
    assert mine[0]["eligible_for_me"] is True
    assert mine[0]["can_approve"] is False and mine[0]["can_reject"] is True
    assert "four-eyes" in str(mine[0]["why_not"])
    assert mine[0]["digest"] == request.digest

    ids = shown(request)
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


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)",
)
async def test_request_replaced_under_the_page_is_not_signed(
    page_server: Page, tmp_path: Path
) -> None:
    """The page shows $5; the run is replaced, under the same workflow id, by one asking for
    $50,000; the approver clicks Approve on the $5 they read: nothing is signed."""
    handle = await start_transfer(page_server, 5, "carol@example.com")
    small = await wait_pending(page_server, handle.id)
    replaced: WorkflowHandle[object, str] | None = None
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                view = await browser.new_page(viewport={"width": 1440, "height": 600})
                await view.goto(page_server.url_with_token)
                row = view.locator(f'tr[data-run-id="{handle.id}"]')
                await expect(row).to_be_visible(timeout=30_000)
                await expect(row.locator("td.amount")).to_have_text("$5")

                # The approver is between two refreshes: the page still shows what they read.
                async def no_refresh(route: Route) -> None:
                    await route.abort()

                await view.route("**/api/pending", no_refresh)
                await handle.terminate("replaced")
                replaced = await start_transfer(
                    page_server, 50_000, "carol@example.com", run_id=handle.id
                )
                big = await wait_pending(page_server, handle.id)
                assert big.workflow_run_id != small.workflow_run_id

                await expect(row.locator("td.amount")).to_have_text("$5")
                await row.get_by_role("button", name="Approve").click()
                status = view.get_by_role("status")
                await expect(status).to_contain_text("changed since the page showed it")
                await expect(status).to_contain_text("nothing was signed")
                await expect(status).to_contain_text("reload the page")
                await view.screenshot(path=str(tmp_path / "ui-changed.png"), full_page=True)

                # Refreshed, the new request is a new row to read, not the old one changed.
                await view.unroute("**/api/pending", no_refresh)
                await expect(row.locator("td.amount")).to_have_text("$50,000", timeout=30_000)
                await expect(row).to_contain_text("0 of 1 approved")
            finally:
                await browser.close()

        # Any one of the three differing is enough to refuse.
        token = await csrf_token(page_server)
        for name in ("workflow_run_id", "nonce", "digest"):
            stale = {**shown(big), name: shown(small)[name], "decision": "approved"}
            status, body = await post_decide(page_server, stale, token=token)
            assert status == 409, (name, body)
        assert await decisions_of(page_server, handle.id) == []
        assert (await find_pending(page_server.client, handle.id, None)).approved_by == []
    finally:
        await (replaced or handle).terminate("test over")


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)",
)
async def test_runs_without_a_worker_are_reported(page_server: Page) -> None:
    """Runs whose worker is gone cannot answer: the page, its API and `jamjet approvals list`
    still show the answering run's request, and name the runs that did not answer."""
    gone_queue = f"ui-gone-{uuid.uuid4().hex[:8]}"
    gone: list[WorkflowHandle[object, str]] = []
    async with Worker(
        page_server.client, task_queue=gone_queue, workflows=[transfer], activities=[send]
    ):
        for _ in range(4):
            gone.append(
                await start_transfer(page_server, 10, "carol@example.com", task_queue=gone_queue)
            )
        for handle in gone:
            await wait_pending(page_server, handle.id)
    live = await start_transfer(page_server, 20, "carol@example.com")
    try:
        await wait_pending(page_server, live.id)
        gone_ids = {handle.id for handle in gone}
        for _ in range(30):  # visibility is eventually consistent
            status, text, _ = await asyncio.to_thread(
                http, page_server.url + "api/pending", headers=page_server.bearer
            )
            assert status == 200, text
            body = json.loads(text)
            answered = {item["run_id"] for item in body["requests"]}
            if live.id in answered and gone_ids <= set(body["unanswered"]):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"never listed {live.id} with {gone_ids} unanswered: {body}")
        assert not gone_ids & answered

        command = [sys.executable, "-m", "jamjet_temporal", "approvals", "list"]
        env = {**os.environ, "TEMPORAL_ADDRESS": page_server.temporal.address}
        # In a thread: this test's event loop runs the worker that answers the CLI's query.
        result = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert any(line.startswith(f"{live.id} apr_1 wire_transfer") for line in lines), lines
        for run_id in gone_ids:
            assert f"{run_id} did not answer (no worker?): its requests cannot be shown" in lines

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                view = await browser.new_page(viewport={"width": 1440, "height": 600})
                await view.goto(page_server.url_with_token)
                await expect(view.locator(f'tr[data-run-id="{live.id}"]')).to_be_visible(
                    timeout=30_000
                )
                await expect(view.get_by_text("4 runs did not answer (no worker?)")).to_be_visible()
            finally:
                await browser.close()
    finally:
        for handle in [*gone, live]:
            await handle.terminate("test over")


async def test_jamjet_ui_prints_the_url_with_its_token(page_server: Page) -> None:
    port = free_port()
    command = [
        sys.executable, "-m", "jamjet_temporal", "ui",
        "--key", str(page_server.alice_key), "--port", str(port),
    ]  # fmt: skip
    env = {**os.environ, "TEMPORAL_ADDRESS": page_server.temporal.address}
    proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode()
        assert first.startswith("▸ Approvals page for alice@example.com: "), first
        url, token = split_launch_url(first.split(": ", 1)[1].split(" ", 1)[0])
        assert url == f"http://127.0.0.1:{port}/" and len(token) >= 32

        status, _, _ = await asyncio.to_thread(http, url)
        assert status == 403
        status, _, headers = await asyncio.to_thread(http, f"{url}?token={token}")
        assert status == 303 and headers["set-cookie"].startswith(f"{TOKEN_COOKIE}={token};")
        status, text, _ = await asyncio.to_thread(
            http, url + "api/pending", headers={"Authorization": f"Bearer {token}"}
        )
        assert status == 200 and "requests" in json.loads(text)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=30)
