"""``jamjet resume RUN --event NAME --data JSON``: the external event a ``wait`` node waits for.

It is the Temporal signal ``jamjet.pipeline.event``: the Temporal CLI (``temporal workflow
signal --name jamjet.pipeline.event --input '{"event": "reviewed", "data": {...}}'``) and Web UI
send the same. An event that arrives before its wait node is kept until the node takes it.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import socket
from typing import Annotated

import typer
from temporalio.service import RPCError

from jamjet_temporal._shared._wire import PIPELINE_EVENT_SIGNAL, PIPELINE_WAITING_QUERY
from jamjet_temporal.cli._client import CHECK_RUN_ID, cli_connect, run_failure
from jamjet_temporal.cli._format import fail, say
from jamjet_temporal.cli._options import AddressOption
from jamjet_temporal.cli._runtime import runtime
from jamjet_temporal.pipeline._workflow import PipelineEvent
from jamjet_temporal.plugin._plugin import JamJetPlugin


def resume(
    run_id: Annotated[str, typer.Argument(help="The waiting run's id, e.g. exec_7f3a2b1c.")],
    event: Annotated[str, typer.Option("--event", help="The event's name (the wait node's).")],
    data: Annotated[
        str, typer.Option("--data", help="JSON object merged into the run's state.")
    ] = "{}",
    sender: Annotated[
        str | None,
        typer.Option("--as", help="Who sends it, recorded in the audit trail (default user@host)."),
    ] = None,
    address: AddressOption = None,
) -> None:
    """Send a waiting pipeline run the event it waits for, with its data."""
    try:
        payload = json.loads(data)
    except json.JSONDecodeError as err:
        raise fail(f"--data is not valid JSON: {err}") from None
    if not isinstance(payload, dict):
        raise fail("--data must be a JSON object, e.g. '{\"approved\": true}'")
    who = sender or f"{getpass.getuser()}@{socket.gethostname()}"

    async def send() -> int:
        async with runtime(address, model=False, web_ui=False) as env:
            client = await cli_connect(env.address, plugins=[JamJetPlugin()])
            handle = client.get_workflow_handle(run_id)
            try:
                waiting: list[str] = await handle.query(PIPELINE_WAITING_QUERY)
                await handle.signal(
                    PIPELINE_EVENT_SIGNAL, PipelineEvent(event=event, data=payload, sender=who)
                )
            except RPCError as err:
                raise run_failure(client, run_id, err, CHECK_RUN_ID) from None
            if event in waiting:
                say(f"▸ {run_id}: sent '{event}' · the run resumes")
            else:
                now = ", ".join(waiting) or "nothing yet"
                say(
                    f"▸ {run_id}: sent '{event}' · kept until a wait node for it runs "
                    f"(it waits for: {now})"
                )
            return 0

    raise typer.Exit(asyncio.run(send()))
