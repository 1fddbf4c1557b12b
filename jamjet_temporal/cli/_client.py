"""The CLI's Temporal client: every way of not reaching a run said in one line, with a fix.

Every command that talks to Temporal connects through :func:`cli_connect` and reports a run
Temporal does not know with :func:`run_failure`, so the user reads which address and
namespace were tried and what to do, never a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence

import typer
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, Plugin
from temporalio.service import RPCError, RPCStatusCode

from jamjet_temporal._shared._connect import connect, connect_config
from jamjet_temporal.cli._devserver import is_listening, split_address
from jamjet_temporal.cli._format import fail
from jamjet_temporal.errors import DevServerError

#: How to get a local Temporal server, said wherever none answers.
START_ONE = (
    "start one with `jamjet dev` (or ./dev-server.sh), or point --address / TEMPORAL_ADDRESS "
    "at yours"
)

#: Where to look when Temporal does not know a run.
CHECK_RUN_ID = (
    "check the run id (`jamjet run` prints it: ▸ Starting execution ...), or --address and "
    "TEMPORAL_NAMESPACE if it ran on another server"
)


def no_server(target: str) -> str:
    """The message for an address where nothing answers."""
    return f"no Temporal server answers at {target}; {START_ONE}"


def checked_address(address: str | None) -> str:
    """The Temporal address a command uses (``--address``, else the environment's).

    Raises:
        typer.Exit: After saying so, when it is not ``host:port``.
    """
    target = str(connect_config(address)["target_host"])
    try:
        split_address(target)
    except DevServerError as err:
        raise fail(f"{err}; give --address (or TEMPORAL_ADDRESS) as HOST:PORT") from None
    return target


def where(client: Client) -> str:
    """``namespace N at ADDRESS``: where a client looks for runs."""
    return f"namespace {client.namespace} at {client.service_client.config.target_host}"


async def cli_connect(
    address: str | None, *, plugins: Sequence[Plugin] = (), identity: str | None = None
) -> Client:
    """Connect like :func:`~jamjet_temporal._shared._connect.connect`, and check the namespace.

    Raises:
        typer.Exit: After printing what went wrong: no server answers, the connection was
            refused (TLS, API key), or the namespace does not exist there.
    """
    target = checked_address(address)
    try:
        client = await connect(address=address, plugins=plugins, identity=identity)
    except RuntimeError as err:  # the SDK's "Failed client connect: ..."
        if not is_listening(target):
            raise fail(no_server(target)) from None
        raise fail(
            f"cannot connect to Temporal at {target} ({err}); check the address and its TLS "
            "and API key settings (--address, TEMPORAL_ADDRESS, TEMPORAL_TLS*, "
            "TEMPORAL_API_KEY)"
        ) from None
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise fail(
                f"namespace {client.namespace} was not found at {target}; create it with "
                f"`temporal operator namespace create --namespace {client.namespace} "
                f"--address {target}`, or set TEMPORAL_NAMESPACE to an existing one"
            ) from None
        # Not allowed to describe it (some API keys): the command's own calls will tell.
    return client


def run_failure(client: Client, run_id: str, err: RPCError, hint: str) -> typer.Exit:
    """Print why Temporal refused a call about run ``run_id``; return the exit to raise.

    Args:
        hint: What to do when the run is not found (where to find the right id).
    """
    if err.status == RPCStatusCode.NOT_FOUND:
        return fail(f"run {run_id} not found in {where(client)}; {hint}")
    return fail(f"run {run_id} ({where(client)}): {err.message}")
