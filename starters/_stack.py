"""Where a starter runs, and how to look at what it did afterwards.

Temporal: the ``address`` a caller passes (tests pass theirs), else the server already answering
at the address the environment configures (``TEMPORAL_ADDRESS``, ``temporal.toml`` profiles,
else 127.0.0.1:7233: the local stack of ``jamjet dev`` or ./dev-server.sh), else a throwaway dev
server on a free port, stopped when the starter ends.

The audit trail: an ``audit_url`` the caller passes; else, on a server that stays up, the store
``jamjet audit`` reads by default (``JAMJET_AUDIT_STORE``, else ``.jamjet/audit.db``), so
``jamjet audit show RUN`` finds the run afterwards; else, beside a throwaway server, a
temporary store.

Each starter prints ``▸ Run ID on ADDRESS`` before it starts its runs and, last, the commands
that show them (or, after a throwaway server, that they are gone with it).
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client, Plugin
from temporalio.envconfig import ClientConfig

from jamjet_temporal.cli import DevServer, connect, free_port
from jamjet_temporal.plugin import AuditConfig

#: Where Temporal's tools (and ``jamjet``) look when nothing is configured.
DEFAULT_ADDRESS = "127.0.0.1:7233"


def configured_address() -> str:
    """The address ``jamjet`` commands use when given no ``--address``."""
    return str(ClientConfig.load_client_connect_config().get("target_host") or DEFAULT_ADDRESS)


def answers(address: str, timeout: float = 0.3) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return False
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def absolute(url: str) -> str:
    """A SQLite store URL (``sqlite:///path`` or a plain path) with an absolute path, so worker
    processes started elsewhere write to the same file; other URLs unchanged."""
    if url.startswith("sqlite:///"):
        return f"sqlite:///{os.path.abspath(url.removeprefix('sqlite:///'))}"
    if "://" not in url:
        return f"sqlite:///{os.path.abspath(url)}"
    return url


def default_audit_store() -> str:
    """The store ``jamjet audit`` reads when given no ``--audit-store``."""
    return absolute(os.environ.get("JAMJET_AUDIT_STORE") or str(AuditConfig().store))


@dataclass
class Stack:
    """Where this starter's runs go.

    Attributes:
        address: The Temporal server's address.
        audit_store: The audit store's URL (absolute).
        throwaway: Whether the server is a dev server of this starter's own, stopped with it.
        quiet: Print nothing.
    """

    address: str
    audit_store: str
    throwaway: bool
    quiet: bool = False

    async def connect(self, plugins: Sequence[Plugin] = ()) -> Client:
        """A client of the server, configured as ``jamjet`` commands connect (namespace, ...)."""
        return await connect(address=self.address, plugins=plugins)

    def _say(self, line: str) -> None:
        if not self.quiet:
            print(line, flush=True)

    def announce(self, *run_ids: str) -> None:
        """``▸ Run ID on ADDRESS``: said before the runs start."""
        where = self.address + (" (a throwaway dev server)" if self.throwaway else "")
        label = "Run" if len(run_ids) == 1 else "Runs"
        self._say(f"▸ {label} {_ids(run_ids)} on {where}")

    def inspect(self, run_id: str, *, also: Sequence[str] = ()) -> None:
        """The commands that show ``run_id`` (and ``also``) now that the starter is done."""
        if self.throwaway:
            self._say(
                "▸ The throwaway Temporal server is gone, and its runs with it: start `jamjet dev` "
                "first to keep runs inspectable (jamjet status, history, audit show)"
            )
            return
        server = "" if self.address == configured_address() else f" --address {self.address}"
        store = self.audit_store
        store = "" if store == default_audit_store() else f" --audit-store {store}"
        commands = [
            f"jamjet status {run_id}{server}",
            f"jamjet history {run_id}{server}",
            f"jamjet audit show {run_id}{store}",
        ]
        more = f" (likewise {_ids(also)})" if also else ""
        self._say(f"▸ Inspect: {' · '.join(commands)}{more}")


def _ids(run_ids: Sequence[str]) -> str:
    """``a``, ``a, b``, ``a, b, c``; ``a … z`` from four on."""
    return ", ".join(run_ids) if len(run_ids) < 4 else f"{run_ids[0]} … {run_ids[-1]}"


@asynccontextmanager
async def stack(
    address: str | None = None,
    *,
    audit_url: str | None = None,
    scratch_audit: Path | None = None,
    db_file: Path | None = None,
    quiet: bool = False,
) -> AsyncIterator[Stack]:
    """The starter's Temporal server and audit store (see the module notes).

    Args:
        address: The Temporal server to use; None: the configured one if it answers, else a
            throwaway dev server.
        audit_url: The audit store to use, whatever the server.
        scratch_audit: The SQLite file of the audit store beside a throwaway server; None:
            ``audit.db`` in a new temporary folder.
        db_file: The throwaway server's history database; None keeps it in memory.
        quiet: Print nothing.
    """
    if address is None and answers(configured_address()):
        address = configured_address()
    server: DevServer | None = None
    if address is None:
        # The same namespace the clients (configured like Temporal's tools) will ask for.
        namespace = ClientConfig.load_client_connect_config().get("namespace") or "default"
        extra = () if namespace == "default" else ("--namespace", namespace)
        server = DevServer(port=free_port(), db_file=db_file, extra_args=extra)
        await server.astart()
        address = server.address
    if audit_url is None:
        if server is None:
            audit_url = default_audit_store()
        else:
            path = scratch_audit or Path(tempfile.mkdtemp(prefix="jamjet-audit-")) / "audit.db"
            audit_url = f"sqlite:///{path}"
    try:
        yield Stack(address, absolute(audit_url), throwaway=server is not None, quiet=quiet)
    finally:
        if server is not None:
            await server.astop()
