"""``ModelServer``: run the app with uvicorn inside the caller's event loop or in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from jamjet_temporal._shared._extras import missing_extra

try:
    import uvicorn
except ImportError as _missing:  # the extra is not installed
    raise missing_extra("cli", _missing) from _missing

from jamjet_temporal.modelserver._app import build_app
from jamjet_temporal.modelserver._engine import ScriptEngine
from jamjet_temporal.modelserver._script import Script, ScriptRule, load_script

__all__ = ["ModelServer"]

_STARTUP_POLL_S = 0.005
_THREAD_START_TIMEOUT_S = 30.0


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The host process (pytest, a CLI running workers) owns SIGINT/SIGTERM; uvicorn would
        # replace its handlers and re-raise the signal after shutdown.
        yield


def _bind(host: str, port: int) -> socket.socket:
    # Binding here rather than in uvicorn turns "address in use" into an OSError for the
    # caller; uvicorn would call sys.exit() inside a background task.
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    # proto must be IPPROTO_TCP (not 0): asyncio only sets TCP_NODELAY on accepted sockets
    # whose proto says TCP, and without it keep-alive requests stall ~40 ms on delayed ACKs.
    sock = socket.socket(family, kind, proto)
    try:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


class ModelServer:
    """A local, deterministic, OpenAI-compatible model server.

    Example::

        async with ModelServer(script="script.yaml") as server:
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="local")

    Args:
        host: Interface to listen on.
        port: TCP port; 0 picks a free one (see ``port`` / ``base_url`` after start).
        script: A script file (YAML or JSON) or an already-validated ``Script``.
        latency_ms: Delay before every answer unless a scripted response sets ``delay_ms``.
        api_key: If set, require ``Authorization: Bearer <api_key>`` (``/healthz`` excepted).

    Raises:
        ScriptError: The script file is unreadable or invalid (raised here, not at start).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        script: Script | str | Path | None = None,
        latency_ms: int = 0,
        api_key: str | None = None,
    ) -> None:
        loaded = script if isinstance(script, Script) or script is None else load_script(script)
        self._host = host
        self._requested_port = port
        self._engine = ScriptEngine(loaded, latency_ms=latency_ms)
        self._app = build_app(self._engine, api_key=api_key)
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._thread_stop: asyncio.Event | None = None

    @property
    def port(self) -> int:
        """The bound TCP port.

        Raises:
            RuntimeError: The server is not running.
        """
        if self._port is None:
            raise RuntimeError("the model server is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:PORT`` (for ``/jamjet/*`` and ``/healthz``)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    def add_rules(self, rules: Sequence[ScriptRule]) -> None:
        """Append runtime rules, like ``POST /jamjet/script``.

        Runtime rules are tried before the script file's rules, in insertion order.

        Args:
            rules: The rules to add.
        """
        self._engine.add_rules(rules)

    def reset(self) -> None:
        """Clear runtime rules, rule counters and recorded calls, like ``DELETE /jamjet/script``."""
        self._engine.reset()

    def calls(self) -> list[dict[str, Any]]:
        """Return the recorded requests, like ``GET /jamjet/calls``.

        Returns:
            One dict per chat-completions request: ``model``, ``messages``, ``tools``,
            ``rule_id`` (``None`` when no rule matched), ``response_index`` and ``status``.
        """
        return self._engine.calls()

    async def start(self) -> None:
        """Start serving in the running event loop; return once connections are accepted.

        Raises:
            RuntimeError: Already started, or uvicorn stopped during startup.
            OSError: The address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("the model server is already running")
        sock = _bind(self._host, self._requested_port)
        config = uvicorn.Config(
            self._app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        server = _EmbeddedServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="jamjet-model-server")
        try:
            while not server.started:
                if task.done():
                    sock.close()
                    await task
                    raise RuntimeError("the model server stopped while starting")
                await asyncio.sleep(_STARTUP_POLL_S)
        except BaseException:
            server.should_exit = True
            sock.close()
            raise
        self._server, self._task = server, task
        self._port = int(server.servers[0].sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop serving and wait for in-flight requests (up to 2 s). No-op if not running."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await task
        finally:
            self._server = self._task = None
            self._port = None

    async def __aenter__(self) -> ModelServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def start_in_thread(self) -> None:
        """Run the server on its own event loop in a daemon thread; return once accepting.

        For synchronous callers, or callers whose own loop is busy with other work.

        Raises:
            RuntimeError: Already running, or the server did not come up in time.
            OSError: The address cannot be bound.
        """
        if self._thread is not None or self._server is not None:
            raise RuntimeError("the model server is already running")
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._thread_loop = asyncio.get_running_loop()
            self._thread_stop = asyncio.Event()
            try:
                await self.start()
            except BaseException as exc:
                failure.append(exc)
                return
            finally:
                ready.set()
            try:
                await self._thread_stop.wait()
            finally:
                await self.stop()

        thread = threading.Thread(
            target=asyncio.run, args=(main(),), name="jamjet-model-server", daemon=True
        )
        thread.start()
        if not ready.wait(_THREAD_START_TIMEOUT_S):
            raise RuntimeError("the model server thread did not start in time")
        if failure:
            thread.join()
            raise failure[0]
        self._thread = thread

    def stop_thread(self) -> None:
        """Stop a server started with ``start_in_thread`` and join its thread. Idempotent."""
        thread, loop, stop = self._thread, self._thread_loop, self._thread_stop
        if thread is None or loop is None or stop is None:
            return
        loop.call_soon_threadsafe(stop.set)
        thread.join()
        self._thread = self._thread_loop = self._thread_stop = None
