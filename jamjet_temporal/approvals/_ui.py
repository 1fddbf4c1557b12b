"""The approvals web page (``jamjet ui``): one approver's pending requests, approve or reject.

Client side. The page is served to ONE approver, on their own machine: the server holds their
:class:`~jamjet_temporal.approvals._identity.SigningIdentity` and signs decisions with it; the
private key never reaches the browser. It binds to 127.0.0.1 by default.

Routes:

- ``GET /``: the page (plain HTML, inline CSS, ``/app.js``; nothing from a CDN).
- ``GET /api/pending``: ``{requests, unanswered}``: the open requests across runs
  (:func:`survey_pending`), each a :class:`PendingApproval` as JSON plus what this approver may
  do (``eligible_for_me``, ``can_approve``, ``can_reject``, ``why_not``), and the workflow ids
  of waiting runs that did not answer (no worker?).
- ``POST /api/decide``: ``{run_id, approval_id, workflow_run_id, nonce, digest, decision,
  comment}``: the request as the page showed it. The run's current request is fetched again
  (:func:`find_pending`); only if it still has that Temporal run, nonce and digest is the
  decision signed and submitted, and the run's :class:`SubmitResult` returned (a refused
  decision is a 200 with ``accepted: false``: the run recorded it). A request that changed
  since it was shown (the run restarted, or asks for something else) is a 409 and nothing is
  signed. Bad input is a 400 naming the field, an unknown run or request a 404.

Who may use it: whoever holds the launch token (random per app, printed by ``jamjet ui`` in
the page's URL, like Jupyter's). ``GET /?token=...`` sets it as an HttpOnly, SameSite=Strict
cookie and redirects to the URL without it; every other request needs that cookie or
``Authorization: Bearer <token>``, else 403. Another account on the machine can reach the port,
not the token.

Cross-site protection: a POST needs ``Content-Type: application/json`` and the header
``X-JamJet-CSRF`` carrying the CSRF token embedded in the page (random per app), else 403.
Every request must name an allowed ``Host`` (loopback names by default), else 400: a
DNS-rebinding page cannot read either token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import ipaddress
import json
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable, Collection, Generator, Mapping
from importlib import resources
from typing import Final, Literal, TypeVar
from urllib.parse import urlencode

from pydantic import JsonValue
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from jamjet_temporal._shared._extras import missing_extra

try:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Route
    from starlette.types import ASGIApp, Receive, Scope, Send
except ImportError as _missing:  # the extra is not installed
    raise missing_extra("ui", _missing) from _missing

from jamjet_temporal.approvals._client import find_pending, sign, submit, survey_pending
from jamjet_temporal.approvals._identity import SigningIdentity
from jamjet_temporal.approvals._workflow import PendingApproval
from jamjet_temporal.errors import JamJetError

__all__ = ["CSRF_HEADER", "TOKEN_COOKIE", "create_ui_app", "serve_ui"]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

#: The header a POST must carry, with the CSRF token embedded in the page.
CSRF_HEADER: Final = "X-JamJet-CSRF"
#: The cookie that carries the launch token once the page's URL was opened.
TOKEN_COOKIE: Final = "jamjet_ui"
#: ``Host`` names accepted by default (any port).
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
#: How long one Temporal call of a page request may take before the page is told.
TEMPORAL_TIMEOUT_SECONDS: Final = 15.0
MAX_COMMENT: Final = 2000
_MAX_BODY: Final = 16 * 1024
_FIELD_MAX: Final = 1000
#: What a decision names of the request the page showed; all must still hold to sign.
_SHOWN: Final = ("run_id", "approval_id", "workflow_run_id", "nonce", "digest")

_PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
}
_API_HEADERS: Final = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _static(name: str) -> str:
    return (resources.files(__package__) / "ui_static" / name).read_text(encoding="utf-8")


class _HttpError(Exception):
    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.field = field

    def response(self) -> JSONResponse:
        body: dict[str, str] = {"error": self.error}
        if self.field is not None:
            body["field"] = self.field
        return JSONResponse(body, status_code=self.status, headers=_API_HEADERS)


class _AllowedHosts:
    """Refuses requests whose ``Host`` header is not an allowed name (DNS rebinding)."""

    def __init__(self, app: ASGIApp, hosts: Collection[str]) -> None:
        self.app = app
        self.any = "*" in hosts
        self.hosts = frozenset(_bare_host(host) for host in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.any:
            host = ""
            for name, value in scope["headers"]:
                if name == b"host":
                    host = value.decode("latin-1")
                    break
            if _bare_host(_strip_port(host)) not in self.hosts:
                response = PlainTextResponse("Invalid host header", status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _LaunchToken:
    """Refuses requests that do not prove they hold the launch token (another local account)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        offered = request.query_params.get("token")
        response: Response
        if offered is not None and request.method in ("GET", "HEAD"):
            if not self._holds(offered):
                response = _no_token(request.url.path)
            else:
                # The token leaves the address bar at once (copied links, screen shares).
                rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
                response = RedirectResponse(target, status_code=303, headers=_API_HEADERS)
                response.set_cookie(
                    TOKEN_COOKIE, self.token, path="/", httponly=True, samesite="strict"
                )
        elif self._holds(request.cookies.get(TOKEN_COOKIE, "")) or self._holds(_bearer(request)):
            await self.app(scope, receive, send)
            return
        else:
            response = _no_token(request.url.path)
        await response(scope, receive, send)

    def _holds(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self.token.encode())


def _bearer(request: Request) -> str:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def _no_token(path: str) -> Response:
    error = (
        "Not signed in to this approvals page: open the URL printed by `jamjet ui` (it carries "
        "this launch's token), or send Authorization: Bearer <token>."
    )
    if path.startswith("/api/"):
        return JSONResponse({"error": error}, status_code=403, headers=_API_HEADERS)
    return PlainTextResponse(error, status_code=403, headers=_API_HEADERS)


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _bare_host(host: str) -> str:
    return host.strip().lower().removeprefix("[").removesuffix("]")


def _view(item: PendingApproval, approver: str) -> dict[str, JsonValue]:
    eligible = approver in item.eligible
    why_not: str | None = None
    if not eligible:
        who = ", ".join(item.eligible) or "nobody"
        why_not = f"You are not an approver for {item.action} (may approve: {who})."
    elif approver == item.requester:
        why_not = "You requested this action: someone else must approve it (four-eyes)."
    elif approver in item.approved_by:
        why_not = "You have already approved; another approver is needed."
    view: dict[str, JsonValue] = item.model_dump(mode="json")
    view.update(
        eligible_for_me=eligible,
        can_approve=eligible and why_not is None,
        can_reject=eligible,
        why_not=why_not,
    )
    return view


def _text_field(body: Mapping[str, object], name: str, *, required: bool) -> str:
    value = body.get(name, None if required else "")
    if value is None and required:
        raise _HttpError(400, f"'{name}' is missing", name)
    if not isinstance(value, str):
        raise _HttpError(400, f"'{name}' must be text", name)
    limit = MAX_COMMENT if name == "comment" else _FIELD_MAX
    if len(value) > limit:
        raise _HttpError(400, f"'{name}' is longer than {limit} characters", name)
    if required and not value.strip():
        raise _HttpError(400, f"'{name}' must not be empty", name)
    return value


def _is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND


def _temporal_error(exc: Exception, run_id: str | None = None) -> _HttpError:
    if run_id is not None and _is_not_found(exc):
        return _HttpError(404, f"no run '{run_id}'", "run_id")
    if run_id is not None and isinstance(exc, WorkflowQueryFailedError):
        # The run exists but answers no approval query (not a JamJet run, or a bad one).
        return _HttpError(404, f"run '{run_id}' has no approval requests ({exc})", "run_id")
    if isinstance(exc, TimeoutError):
        return _HttpError(504, "Temporal did not answer in time (is a worker running?)")
    return _HttpError(502, f"Temporal call failed: {exc}")


async def _within_timeout(work: Awaitable[_T]) -> _T:
    async with asyncio.timeout(TEMPORAL_TIMEOUT_SECONDS):
        return await work


def create_ui_app(
    client: Client,
    identity: SigningIdentity,
    *,
    allowed_hosts: Collection[str] | None = None,
) -> Starlette:
    """Builds the approvals page for one approver.

    Args:
        client: A connected Temporal client (with or without ``JamJetPlugin``).
        identity: The approver the page acts for; decisions are signed with its key, on the
            server.
        allowed_hosts: Host names the ``Host`` header may carry (any port); ``"*"`` allows any.
            Defaults to the loopback names ``127.0.0.1``, ``localhost`` and ``::1``.

    Returns:
        The ASGI app. Its launch token (``app.state.launch_token``), which every request must
        prove it holds, and its CSRF token (``app.state.csrf_token``) are random per app.
    """
    launch_token = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    page = (
        _static("index.html")
        .replace("__JAMJET_CSRF__", csrf_token)
        .replace("__JAMJET_APPROVER__", html.escape(identity.approver, quote=True))
    )
    script = _static("app.js")

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    async def app_js(request: Request) -> Response:
        return Response(script, media_type="text/javascript; charset=utf-8", headers=_PAGE_HEADERS)

    async def pending(request: Request) -> Response:
        try:
            listing = await _within_timeout(survey_pending(client))
        except Exception as exc:  # reported to the page, which retries
            logger.warning("listing pending approvals failed: %s", exc)
            return _temporal_error(exc).response()
        views: list[JsonValue] = [_view(item, identity.approver) for item in listing.requests]
        unanswered: list[JsonValue] = list(listing.unanswered)
        return JSONResponse({"requests": views, "unanswered": unanswered}, headers=_API_HEADERS)

    async def decide(request: Request) -> Response:
        try:
            return await _decide(request)
        except _HttpError as exc:
            return exc.response()

    async def _decide(request: Request) -> Response:
        _check_csrf(request, csrf_token)
        raw = await _read_body(request)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _HttpError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _HttpError(400, "the body must be a JSON object")
        unknown = sorted(set(body) - {*_SHOWN, "decision", "comment"})
        if unknown:
            raise _HttpError(400, f"unknown field '{unknown[0]}'", unknown[0])
        shown = {name: _text_field(body, name, required=True) for name in _SHOWN}
        run_id, approval_id = shown["run_id"], shown["approval_id"]
        choice = body.get("decision")
        decision: Literal["approved", "rejected"]
        if choice == "approved":
            decision = "approved"
        elif choice == "rejected":
            decision = "rejected"
        else:
            raise _HttpError(400, "'decision' must be 'approved' or 'rejected'", "decision")
        comment = _text_field(body, "comment", required=False)
        try:
            current = await _within_timeout(find_pending(client, run_id, approval_id))
        except JamJetError:
            raise _HttpError(
                404, f"run '{run_id}' has no open approval request '{approval_id}'", "approval_id"
            ) from None
        except Exception as exc:
            raise _temporal_error(exc, run_id) from exc
        # Sign what the approver saw, or nothing: the run may have been restarted under the
        # same workflow id, asking for something else, since the page showed it.
        if any(getattr(current, name) != shown[name] for name in _SHOWN):
            raise _HttpError(
                409,
                f"run '{run_id}' request '{approval_id}' changed since the page showed it (the "
                "run was restarted or asks for something else); nothing was signed: reload the "
                "page and check the request again",
            )
        signed = sign(identity, current, decision, comment)
        try:
            result = await _within_timeout(submit(client, signed))
        except WorkflowUpdateFailedError as exc:
            raise _HttpError(409, f"the run refused the decision: {exc.cause or exc}") from exc
        except Exception as exc:
            raise _temporal_error(exc, run_id) from exc
        logger.info(
            "%s %s/%s as %s: %s",
            decision,
            run_id,
            approval_id,
            identity.approver,
            "accepted" if result.accepted else f"refused ({result.reason})",
        )
        return JSONResponse(result.model_dump(mode="json"), headers=_API_HEADERS)

    hosts = LOOPBACK_HOSTS if allowed_hosts is None else frozenset(allowed_hosts)
    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/app.js", app_js, methods=["GET"]),
            Route("/api/pending", pending, methods=["GET"]),
            Route("/api/decide", decide, methods=["POST"]),
        ],
        middleware=[
            Middleware(_AllowedHosts, hosts=hosts),
            Middleware(_LaunchToken, token=launch_token),
        ],
    )
    app.state.launch_token = launch_token
    app.state.csrf_token = csrf_token
    app.state.approver = identity.approver
    return app


def _check_csrf(request: Request, token: str) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise _HttpError(403, "a decision must be sent as Content-Type: application/json")
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), token.encode()):
        raise _HttpError(403, f"missing or wrong {CSRF_HEADER} header: reload the page")


async def _read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_BODY:
            raise _HttpError(413, f"the body is larger than {_MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _Server(uvicorn.Server):
    """uvicorn, without taking over the process's signal handlers (the caller owns those)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _hosts_for(host: str) -> Collection[str]:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return {*LOOPBACK_HOSTS, host}  # a name, e.g. "localhost" or the machine's name
    if address.is_unspecified:
        return {"*"}  # listening on every interface was asked for explicitly
    return {*LOOPBACK_HOSTS, str(address)}


async def serve_ui(
    client: Client,
    identity: SigningIdentity,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    ready: asyncio.Event | None = None,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serves the approvals page in the current event loop until cancelled.

    Args:
        client: A connected Temporal client.
        identity: The approver the page acts for (see :func:`create_ui_app`).
        host: Address to listen on; keep the default 127.0.0.1 unless others must reach the
            page (plain HTTP: anyone who can reach it and sees the URL decides as
            ``identity``).
        port: TCP port; 0 picks a free one (see ``on_listening``).
        ready: Set once the server accepts connections.
        on_listening: Called with the page's URL, launch token included, once the server
            accepts connections; whoever opens it decides as ``identity``.

    Raises:
        OSError: The address cannot be bound (e.g. the port is taken).
    """
    sock = _bind(host, port)
    bound_port = int(sock.getsockname()[1])
    url_host = f"[{host}]" if ":" in host else host
    app = create_ui_app(client, identity, allowed_hosts=_hosts_for(host))
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=3,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="jamjet-ui")
    try:
        while not server.started:
            if task.done():
                break
            await asyncio.sleep(0.01)
        if server.started:
            if ready is not None:
                ready.set()
            if on_listening is not None:
                token = urlencode({"token": app.state.launch_token})
                on_listening(f"http://{url_host}:{bound_port}/?{token}")
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)
        raise
    finally:
        if not task.done():
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        sock.close()
