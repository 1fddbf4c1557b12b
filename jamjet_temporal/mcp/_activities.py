"""The MCP activities: list a server's tools, call one, through the official ``mcp`` client.

Runs on the worker. A call names its server by alias; the worker holds the servers' commands,
URLs and credentials, and fills their ``${VAR}`` references from its own environment when it
connects, so no secret reaches workflow history.

One connection per server and worker event loop is kept open and shared by the calls running
there (a stdio server is one process, not one per call). A connection that broke (its process
exited, its transport closed, a request timed out) is dropped and the next attempt connects
afresh; Temporal retries the attempt that saw it break. Connections close when the last worker
using them stops.

Before calling a tool, the worker lists the server's tools again and refuses the call
(``McpToolDriftError``) when the tool's input schema or annotations are not those the run
recorded when it listed them (carried by the call, ``McpCall.listed``). An attempt that gets no
answer before its ``start_to_close_timeout`` fails a moment before it, saying which server and
operation hung, and its connection is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any, Final, TextIO, TypeVar

from pydantic import JsonValue, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from jamjet_temporal._shared._activity import auto_heartbeat, idempotency_key
from jamjet_temporal._shared._canonical import digest
from jamjet_temporal._shared._extras import missing_extra
from jamjet_temporal._shared._wire import MCP_CALL_ACTIVITY, MCP_IDEMPOTENCY_META, MCP_LIST_ACTIVITY
from jamjet_temporal.errors import ConfigError, McpServerError, McpToolDriftError, McpToolError
from jamjet_temporal.mcp._config import McpServer, servers_from_config
from jamjet_temporal.mcp._types import McpCall, McpToolInfo

try:
    import httpx2
    from mcp import Client, MCPError, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.types import (
        CONNECTION_CLOSED,
        INVALID_PARAMS,
        INVALID_REQUEST,
        METHOD_NOT_FOUND,
        PARSE_ERROR,
        REQUEST_TIMEOUT,
        CallToolResult,
        TextContent,
        Tool,
    )
except ImportError as err:
    raise missing_extra("mcp", err) from err

__all__ = ["McpActivities"]

_logger = logging.getLogger("jamjet_temporal.mcp")
_T = TypeVar("_T")

#: JSON-RPC errors a retry of the same request cannot fix.
_FINAL_CODES: Final = frozenset({PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS})
#: JSON-RPC errors after which the connection is not used again.
_BROKEN_CODES: Final = frozenset({CONNECTION_CLOSED, REQUEST_TIMEOUT})
#: How long connecting (starting a stdio server, the protocol handshake) may take.
_CONNECT_TIMEOUT: Final = 60.0
#: How much of a stdio server's stderr is kept for error messages.
_STDERR_LINES: Final = 40


class _Stderr:
    """A stdio server's stderr: its last lines kept for errors, EOF seen as the process exiting.

    The server writes into a pipe; a thread reads it, keeps the tail and logs each line at
    debug level. When every writer has closed it (the server exited), ``closed`` turns true.
    """

    def __init__(self, alias: str) -> None:
        read_fd, write_fd = os.pipe()
        self.writer: TextIO = os.fdopen(write_fd, "w")
        self._reader = os.fdopen(read_fd, "rb")
        self._tail: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self.closed = False
        self._thread = threading.Thread(
            target=self._pump, args=(alias,), name=f"mcp-stderr-{alias}", daemon=True
        )
        self._thread.start()

    def _pump(self, alias: str) -> None:
        try:
            for raw in self._reader:
                line = raw.decode("utf-8", "replace").rstrip()
                self._tail.append(line[:500])
                _logger.debug("mcp server %s: %s", alias, line)
        finally:
            self.closed = True
            self._reader.close()

    def spawned(self) -> None:
        """The process has its copy of the pipe: close ours, so its exit ends the pipe."""
        with contextlib.suppress(OSError):
            self.writer.close()

    def tail(self, wait: float = 0.0) -> str:
        """The last lines the server wrote (after waiting up to ``wait`` s for it to finish)."""
        if wait:
            self._thread.join(wait)
        return "\n".join(self._tail)


class _Connection:
    """One open MCP client session, owned by one task for its whole life.

    The ``mcp`` client enters anyio task groups and cancel scopes that must be left by the
    task that entered them; activities run in tasks of their own, so a task of this object's
    enters the client, waits to be told to stop, and leaves it.
    """

    def __init__(self, alias: str, configured: McpServer, environ: Mapping[str, str]) -> None:
        self.alias = alias
        #: As configured (``${VAR}`` references kept): what error messages may show.
        self.configured = configured
        #: With references filled (raises ConfigError for a variable that is not set).
        self.server = configured.resolved(environ, alias=alias)
        # Values filled in from the environment, longest first: never shown in a message.
        values = {environ[name]: f"${{{name}}}" for name in configured.references()}
        self._secrets = sorted(
            ((value, ref) for value, ref in values.items() if len(value) >= 3),
            key=lambda item: -len(item[0]),
        )
        self.broken = False
        self._stderr: _Stderr | None = None
        loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[Client] = loop.create_future()
        self._stop = asyncio.Event()
        self._owner = asyncio.create_task(self._run(), name=f"mcp-connection-{alias}")

    @property
    def alive(self) -> bool:
        """Whether the connection may still be used."""
        if self.broken or self._owner.done():
            return False
        return not (self._stderr is not None and self._stderr.closed)

    def stderr(self, wait: float = 0.0) -> str:
        """What a stdio server wrote to stderr lately ("" for HTTP)."""
        return "" if self._stderr is None else self._stderr.tail(wait)

    def redact(self, text: str) -> str:
        """``text`` with every value filled in from the environment put back as ``${VAR}``:
        a failure's message goes into workflow history."""
        for value, reference in self._secrets:
            text = text.replace(value, reference)
        return text

    async def _run(self) -> None:
        try:
            async with AsyncExitStack() as stack:
                client = await self._open(stack)
                self._ready.set_result(client)
                await self._stop.wait()
        except BaseException as err:
            if not self._ready.done():
                self._ready.set_exception(err)
            else:
                self.broken = True
                _logger.debug("mcp server %s: connection ended: %r", self.alias, err)
            if isinstance(err, asyncio.CancelledError):
                raise
        finally:
            if self._stderr is not None:
                self._stderr.spawned()

    async def _open(self, stack: AsyncExitStack) -> Client:
        server = self.server
        timeout = server.timeout_seconds
        if server.transport == "stdio":
            assert server.command is not None
            self._stderr = _Stderr(self.alias)
            params = StdioServerParameters(
                command=server.command, args=server.args, env=server.env or None, cwd=server.cwd
            )
            transport = stdio_client(params, errlog=self._stderr.writer)
            try:
                return await stack.enter_async_context(
                    Client(transport, read_timeout_seconds=timeout)
                )
            finally:
                self._stderr.spawned()
        assert server.url is not None
        http = await stack.enter_async_context(
            httpx2.AsyncClient(
                headers=server.headers,
                timeout=httpx2.Timeout(timeout or 30.0, read=timeout or 300.0),
            )
        )
        return await stack.enter_async_context(
            Client(
                streamable_http_client(server.url, http_client=http),
                read_timeout_seconds=timeout,
            )
        )

    async def client(self) -> Client:
        """The connected client (raises what connecting raised)."""
        return await asyncio.wait_for(asyncio.shield(self._ready), _CONNECT_TIMEOUT)

    async def close(self) -> None:
        """Leave the client (ends a stdio server's process)."""
        self.broken = True
        self._stop.set()
        if not self._ready.done():
            self._owner.cancel()
        with contextlib.suppress(BaseException):
            await self._owner
        if self._ready.done() and not self._ready.cancelled():
            self._ready.exception()  # seen: a failed connect nobody waited for is not an error


class McpActivities:
    """The MCP activities of one plugin: ``jamjet.mcp.list_tools`` and ``jamjet.mcp.call_tool``.

    Args:
        servers: The servers this worker can reach, by alias (``McpServer`` or plain dicts).

    Raises:
        ConfigError: An alias or a server is invalid.
    """

    def __init__(self, servers: Mapping[str, McpServer | Mapping[str, object]]) -> None:
        self._servers = servers_from_config(servers, where="JamJetConfig.mcp_servers")
        self._connections: dict[tuple[asyncio.AbstractEventLoop, str], _Connection] = {}
        self._locks: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Lock] = {}
        self._workers: dict[asyncio.AbstractEventLoop, int] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def servers(self) -> dict[str, McpServer]:
        """The servers, by alias (as configured: ``${VAR}`` not filled)."""
        return dict(self._servers)

    @activity.defn(name=MCP_LIST_ACTIVITY)
    async def list_tools(self, server: str) -> list[McpToolInfo]:
        """Every tool ``server`` lists (all pages)."""

        async def operation(client: Client) -> list[McpToolInfo]:
            return await _list_all(client, server)

        async with auto_heartbeat():
            return await self._run(server, "list its tools", operation)

    @activity.defn(name=MCP_CALL_ACTIVITY)
    async def call_tool(self, call: McpCall) -> JsonValue:
        """Call one tool; an error result (``isError``) fails with ``McpToolError``, a tool
        that changed since the run listed it is refused (``McpToolDriftError``)."""
        meta: Any = {MCP_IDEMPOTENCY_META: call.idempotency_key or idempotency_key()}

        async def operation(client: Client) -> CallToolResult:
            refusal = _drift(call, await _list_all(client, call.server))
            if refusal is not None:
                raise refusal
            return await client.call_tool(call.tool, call.arguments, meta=meta)

        async with auto_heartbeat():
            result = await self._run(call.server, f"call tool '{call.tool}'", operation)
        if result.is_error:
            error = McpToolError(call.server, call.tool, _error_text(result))
            raise ApplicationError(str(error), type=McpToolError.__name__, non_retryable=True)
        return tool_value(result)

    async def _run(self, alias: str, what: str, operation: Callable[[Client], Awaitable[_T]]) -> _T:
        """One operation on ``alias``'s connection, failing a moment before the activity's
        start-to-close timeout would, with a message that says what hung."""
        left, allowed = _time_left()
        scope = asyncio.timeout(left)
        try:
            async with scope:
                return await self._attempt(alias, what, operation)
        except TimeoutError:
            if not scope.expired():
                raise
            connection = self._connections.get((asyncio.get_running_loop(), alias))
            if connection is not None:
                self._drop(connection)  # it may be stuck: the retry connects afresh
            stderr = "" if connection is None else connection.stderr()
            text = (
                f"MCP server '{alias}' did not answer in time: it was asked to {what} and gave "
                f"no answer within the activity's start_to_close_timeout ({allowed}), so the "
                "attempt timed out"
            )
            if stderr:
                text += f"; its stderr ends with:\n{stderr}\n"
            text = text if connection is None else connection.redact(text)
            raise ApplicationError(
                text + " (retried on a new connection, as the retry policy allows)",
                type=McpServerError.__name__,
            ) from None

    async def _attempt(
        self, alias: str, what: str, operation: Callable[[Client], Awaitable[_T]]
    ) -> _T:
        connection = await self._connection(alias)
        try:
            client = await connection.client()
        except asyncio.CancelledError:
            raise
        except BaseException as err:
            self._drop(connection)
            raise _connect_error(connection, err) from err
        try:
            return await operation(client)
        except (asyncio.CancelledError, ApplicationError):
            raise
        except MCPError as err:
            broken = err.code in _BROKEN_CODES
            if broken:
                self._drop(connection)
            again = "; retried on a new connection" if broken else ""
            message = f"MCP server '{alias}' could not {what}: {err.message} (JSON-RPC error "
            raise ApplicationError(
                connection.redact(f"{message}{err.code}{again})"),
                type=McpServerError.__name__,
                non_retryable=err.code in _FINAL_CODES,
            ) from err
        except ValidationError as err:
            raise ApplicationError(
                f"MCP server '{alias}' answered out of protocol when asked to {what}: "
                f"{err.error_count()} validation error(s), the first: "
                + connection.redact(str(err.errors()[0]["msg"])),
                type=McpServerError.__name__,
                non_retryable=True,
            ) from err
        except Exception as err:
            # The transport failed (a process that died, a closed stream, an HTTP error):
            # the next attempt connects afresh.
            self._drop(connection)
            stderr = connection.stderr(wait=0.2)
            text = f"MCP server '{alias}' failed to {what}: {_describe(err)}"
            if stderr:
                text += f"; its stderr ends with:\n{stderr}\n"
            raise ApplicationError(
                connection.redact(text) + " (retried on a new connection)",
                type=McpServerError.__name__,
            ) from err

    async def _connection(self, alias: str) -> _Connection:
        server = self._servers.get(alias)
        if server is None:
            known = ", ".join(sorted(self._servers)) or "none"
            raise ApplicationError(
                f"unknown MCP server '{alias}': this worker knows {known} (fix: declare it in "
                "JamJetConfig(mcp_servers={...}), the pipeline's mcp: block or jamjet.toml)",
                type=ConfigError.__name__,
                non_retryable=True,
            )
        key = (asyncio.get_running_loop(), alias)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            connection = self._connections.get(key)
            if connection is not None and connection.alive:
                return connection
            if connection is not None:
                self._drop(connection)
            try:
                connection = _Connection(alias, server, os.environ)
            except ConfigError as err:
                raise ApplicationError(
                    str(err), type=ConfigError.__name__, non_retryable=True
                ) from None
            self._connections[key] = connection
            return connection

    def _drop(self, connection: _Connection) -> None:
        """Stop using ``connection`` (calls still running on it go on) and close it."""
        key = (asyncio.get_running_loop(), connection.alias)
        if self._connections.get(key) is connection:
            del self._connections[key]
        connection.broken = True
        # Closed in the background: other calls may still be running on it.
        closing = asyncio.get_running_loop().create_task(connection.close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    @contextlib.asynccontextmanager
    async def run_context(self) -> AsyncIterator[None]:
        """Around a worker's run: its event loop's connections close when its last worker stops."""
        loop = asyncio.get_running_loop()
        self._workers[loop] = self._workers.get(loop, 0) + 1
        try:
            yield
        finally:
            self._workers[loop] -= 1
            if not self._workers[loop]:
                del self._workers[loop]
                await self.close()

    async def close(self) -> None:
        """Close this event loop's connections (ends stdio servers' processes)."""
        loop = asyncio.get_running_loop()
        mine = [key for key in self._connections if key[0] is loop]
        connections = [self._connections.pop(key) for key in mine]
        for key in mine:
            self._locks.pop(key, None)
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)


def _time_left() -> tuple[float | None, str]:
    """Seconds until a moment before this attempt's start-to-close timeout (None: no limit),
    and the timeout as written for a message."""
    if not activity.in_activity():
        return None, ""
    info = activity.info()
    allowed = info.start_to_close_timeout
    if not allowed:
        return None, ""
    total = allowed.total_seconds()
    margin = min(max(0.5, total * 0.05), 5.0)
    elapsed = (datetime.now(UTC) - info.started_time).total_seconds()
    return max(total - margin - elapsed, 0.05), f"{total:g} s"


def _tool_info(tool: Tool) -> McpToolInfo:
    annotations = tool.annotations
    return McpToolInfo(
        name=tool.name,
        description=tool.description,
        input_schema=tool.input_schema,
        title=tool.title,
        annotations=None
        if annotations is None
        else annotations.model_dump(mode="json", by_alias=True, exclude_none=True),
    )


async def _list_all(client: Client, server: str) -> list[McpToolInfo]:
    """Every tool ``server`` lists now (all pages, never from a cache)."""
    tools: list[McpToolInfo] = []
    cursor: str | None = None
    seen: set[str | None] = set()
    while True:
        page = await client.list_tools(cursor=cursor, cache_mode="bypass")
        tools += [_tool_info(tool) for tool in page.tools]
        seen.add(cursor)
        cursor = page.next_cursor
        if cursor is None:
            return tools
        if cursor in seen:
            raise ApplicationError(
                f"MCP server '{server}' repeated a pagination cursor while listing tools",
                type=McpServerError.__name__,
                non_retryable=True,
            )


def _drift(call: McpCall, live: list[McpToolInfo]) -> ApplicationError | None:
    """Why ``call`` must not be made with the server's tools as they are now (None: it may).

    The call carries the tool as the run listed it; a tool that changed its input schema or
    annotations since, disappeared, or appeared, is not the tool the run decided on.
    """
    listed = call.listed
    tool = next((info for info in live if info.name == call.tool), None)
    reason: str | None = None
    if listed is None:
        return ApplicationError(
            f"MCP tool '{call.subject}' refused: the call does not carry the tool as the run "
            "listed it (calls are stamped by the gate of a worker with JamJetPlugin), so "
            "nothing tells what the run decided on",
            type=McpToolDriftError.__name__,
            non_retryable=True,
        )
    if not listed.found:
        if tool is None:
            names = ", ".join(sorted(info.name for info in live)) or "none"
            return ApplicationError(
                f"MCP tool '{call.subject}' does not exist: server '{call.server}' lists no "
                f"tool '{call.tool}' (it lists: {names})",
                type=McpToolError.__name__,
                non_retryable=True,
            )
        reason = "the server lists it now, but did not list it"
    elif tool is None:
        reason = "the server does not list it any more"
    else:
        changed = []
        if digest(tool.input_schema) != listed.schema_digest:
            changed.append("its input schema changed")
        if tool.annotations != listed.annotations:
            changed.append(
                f"its annotations changed (listed: {listed.annotations}, now: {tool.annotations})"
            )
        reason = " and ".join(changed) or None
    if reason is None:
        return None
    error = McpToolDriftError(call.server, call.tool, reason)
    return ApplicationError(str(error), type=McpToolDriftError.__name__, non_retryable=True)


def _connect_error(connection: _Connection, err: BaseException) -> ApplicationError:
    """The failure of an attempt that could not connect: what was started, and its stderr."""
    server = connection.configured  # as configured: a ${VAR} in it stays a reference
    if server.transport == "stdio":
        target = f"command {' '.join([server.command or '', *server.args])!r}"
    else:
        target = f"url {server.url!r}"
    stderr = connection.stderr(wait=0.5)
    err = _leaf(err)
    reason = "it did not answer in time" if isinstance(err, TimeoutError) else _describe(err)
    text = f"MCP server '{connection.alias}' ({target}) could not be started or reached: {reason}"
    if stderr:
        text += f"; its stderr ends with:\n{stderr}"
    return ApplicationError(
        connection.redact(text),
        type=McpServerError.__name__,
        # A program that is not there, or cannot be run, will not be there on a retry either.
        non_retryable=isinstance(err, FileNotFoundError | PermissionError | NotADirectoryError),
    )


def _leaf(err: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups: what actually went wrong."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    return err


def _describe(err: BaseException) -> str:
    err = _leaf(err)
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _error_text(result: CallToolResult) -> str:
    texts = [item.text for item in result.content if isinstance(item, TextContent)]
    return "\n".join(texts) or "the tool returned an error without a message"


def tool_value(result: CallToolResult) -> JsonValue:
    """A tool result as a JSON value: the structured content if any; else a single text as a
    string (JSON-looking text stays text); else the content as a list (texts as strings, other
    items as MCP sends them); None when there is no content."""
    if result.structured_content is not None:
        structured: dict[str, JsonValue] = result.structured_content
        return structured
    items = result.content
    if not items:
        return None
    if len(items) == 1 and isinstance(items[0], TextContent):
        return items[0].text
    return [
        item.text
        if isinstance(item, TextContent)
        else item.model_dump(mode="json", by_alias=True, exclude_none=True)
        for item in items
    ]
