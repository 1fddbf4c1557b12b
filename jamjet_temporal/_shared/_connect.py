"""Connecting to Temporal the way Temporal's own tools do (client side).

Settings come from ``temporalio.envconfig``: ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
``TEMPORAL_API_KEY``, TLS settings and profiles in ``temporal.toml``, so one program runs
against a local dev server, a self-hosted cluster or Temporal Cloud unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.client import Client, Plugin
from temporalio.envconfig import ClientConfig

#: Where a local Temporal dev server listens unless told otherwise (``temporal server start-dev``).
DEFAULT_ADDRESS = "127.0.0.1:7233"


def connect_config(address: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``Client.connect`` from the environment and config file.

    Args:
        address: Overrides the configured address.
    """
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    if address:
        config["target_host"] = address
    config.setdefault("target_host", DEFAULT_ADDRESS)
    return config


async def connect(
    *, address: str | None = None, plugins: Sequence[Plugin] = (), identity: str | None = None
) -> Client:
    """Connect a client configured like the Temporal CLI, with ``plugins`` applied."""
    config = connect_config(address)
    if identity:
        config["identity"] = identity
    return await Client.connect(**config, plugins=list(plugins))
