"""What a command runs against: Temporal (embedded when none answers), a model, governance."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jamjet_temporal._shared._storeurl import absolute_store_url
from jamjet_temporal.cli._client import checked_address, no_server
from jamjet_temporal.cli._devserver import DEFAULT_UI_PORT, DevServer, is_listening, split_address
from jamjet_temporal.cli._format import fail, note
from jamjet_temporal.errors import DevServerError
from jamjet_temporal.plugin._config import AuditConfig, BudgetConfig, JamJetConfig
from jamjet_temporal.policy import load_policy
from jamjet_temporal.tracing._config import TracingConfig

STATE_DIR = Path(".jamjet")


def local_dev_server(port: int, ui_port: int | None) -> DevServer:
    """A dev server on 127.0.0.1:``port`` keeping its database and log under ``.jamjet/``."""
    return DevServer(
        port=port,
        db_file=STATE_DIR / "temporal.db",
        ui_port=ui_port,
        log_file=STATE_DIR / "temporal.log",
    )


def stop_on_signals() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets (call it inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


@dataclass
class Runtime:
    """Where Temporal lives for this command.

    Attributes:
        address: The Temporal address (host:port).
        up: Whether a Temporal server answers there (False only with ``required=False``).
    """

    address: str
    up: bool = True


@contextlib.asynccontextmanager
async def runtime(
    address: str | None,
    *,
    embedded: bool = True,
    model: bool = True,
    model_latency_ms: int = 0,
    web_ui: bool = True,
    required: bool = True,
) -> AsyncIterator[Runtime]:
    """Reach Temporal (starting an embedded dev server if none answers locally) and a model.

    The local model server starts when neither ``OPENAI_API_KEY`` nor ``OPENAI_BASE_URL`` is
    set; its URL is exported as ``OPENAI_BASE_URL`` so workers started from here use it.
    What was started is said on stderr: stdout carries the command's output.

    Args:
        web_ui: Give an embedded server its Web UI, and print the link. Commands over in a
            moment pass False: the server stops with them, and a link would be dead.
        required: With False, a remote address where nothing answers is no error: the
            runtime says ``up=False`` and the command does without Temporal.
    """
    target = checked_address(address)
    server: DevServer | None = None
    model_server: Any = None
    up = True
    try:
        if not is_listening(target):
            host, port = split_address(target)  # checked: a host:port address
            if not embedded or host not in ("127.0.0.1", "localhost"):
                if required:
                    raise fail(no_server(target))
                up = False
            else:
                server = await _start_embedded(port, web_ui=web_ui)
                if web_ui:
                    ui = server.ui_port
                    ui_text = f" · Web UI http://127.0.0.1:{ui}" if ui else ""
                    note(f"▸ Started embedded Temporal dev server on {target}{ui_text}")
                else:
                    note(
                        f"▸ Started embedded Temporal dev server on {target} for this command "
                        "(Web UI: run `jamjet dev`, or ./dev-server.sh)"
                    )
        base_url = os.environ.get("OPENAI_BASE_URL")
        if model and not os.environ.get("OPENAI_API_KEY") and not base_url:
            from jamjet_temporal.modelserver import ModelServer

            model_server = ModelServer(latency_ms=model_latency_ms)
            await model_server.start()
            base_url = str(model_server.base_url)
            os.environ["OPENAI_BASE_URL"] = base_url
            note(f"▸ Local model server at {base_url} (no OPENAI_API_KEY set)")
        yield Runtime(address=target, up=up)
    finally:
        if model_server is not None:
            await model_server.stop()
            os.environ.pop("OPENAI_BASE_URL", None)
        if server is not None:
            await server.astop()


async def _start_embedded(port: int, *, web_ui: bool) -> DevServer:
    """The local dev server on ``port`` (its Web UI on 8233 when asked and free), started."""
    ui = DEFAULT_UI_PORT if web_ui and not is_listening(f"127.0.0.1:{DEFAULT_UI_PORT}") else None
    server = local_dev_server(port, ui)
    try:
        await server.astart()
    except DevServerError as err:
        raise fail(str(err)) from None
    return server


@dataclass(frozen=True)
class Governance:
    """What the command's workers serve and enforce: policy, audit store, approvals, and the
    MCP servers of the pipelines they run."""

    policy: str | None
    audit_store: str
    approvals: str | None = None
    pipelines: tuple[str, ...] = ()

    def worker_args(self) -> list[str]:
        """The ``jamjet worker`` options that give a worker this governance."""
        args = ["--policy", self.policy] if self.policy else []
        args += ["--audit-store", self.audit_store]
        if self.approvals:
            args += ["--approvals", self.approvals]
        for pipeline in self.pipelines:
            args += ["--pipeline", pipeline]
        return args

    def config(self) -> JamJetConfig:
        """The plugin config (loads and validates the policy, approvals and pipeline files).

        The audit store is the one ``--audit-store`` names (its default documented there),
        made absolute so every worker of the command writes to the same file.
        """
        from jamjet_temporal.pipeline import load_pipeline

        policy = load_policy(self.policy) if self.policy else None
        store = None
        if self.audit_store:
            store = absolute_store_url(
                self.audit_store, what="audit store", fix="give --audit-store sqlite:///PATH"
            )
        # The pipelines' MCP servers and A2A agents are served by the workers this command
        # starts: the user runs their own file on their own machine (a worker of a shared
        # fleet declares its own instead, in JamJetConfig).
        servers: dict[str, Any] = {}
        agents: dict[str, Any] = {}
        prices: dict[str, dict[str, float]] = {}
        for pipeline in self.pipelines:
            spec = load_pipeline(pipeline)
            servers.update(spec.mcp_servers)
            agents.update(spec.remote_agents)
            # Self-hosted models' prices (models: entries), so budgets can bound their cost.
            for alias in spec.models.values():
                if (price := alias.prices()) is not None:
                    prices[alias.model] = price
        return JamJetConfig(
            policy=policy,
            audit=AuditConfig(store=store),
            approvals=os.path.abspath(self.approvals) if self.approvals else None,
            mcp_servers=servers or None,
            a2a_agents=agents or None,
            budget=BudgetConfig(prices=prices or None),
            # Traces when the environment asks (OTEL_EXPORTER_OTLP_ENDPOINT, ...).
            tracing=TracingConfig.from_env(),
        )
