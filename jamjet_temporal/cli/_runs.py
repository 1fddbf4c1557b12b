"""``jamjet status`` and ``jamjet history``: a run read back from its Temporal history."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from temporalio.client import WorkflowHistory
from temporalio.service import RPCError

from jamjet_temporal._shared._connect import connect
from jamjet_temporal.cli._format import fail, say
from jamjet_temporal.cli._history import read_history
from jamjet_temporal.cli._options import AddressOption
from jamjet_temporal.cli._progress import closing_lines, fmt_ms
from jamjet_temporal.cli._runtime import runtime
from jamjet_temporal.plugin._plugin import JamJetPlugin


async def _fetch_history(run_id: str, address: str | None) -> WorkflowHistory:
    client = await connect(address=address, plugins=[JamJetPlugin()])
    try:
        return await client.get_workflow_handle(run_id).fetch_history()
    except RPCError as err:
        raise fail(f"run {run_id}: {err.message}") from None


def status(
    run_id: Annotated[str, typer.Argument(help="Workflow id, e.g. exec_7f3a2b1c.")],
    address: AddressOption = None,
) -> None:
    """Show a run's status and its steps (attempts, durations, workers), read from history."""

    async def show() -> int:
        async with runtime(address, model=False):
            report = read_history(await _fetch_history(run_id, address))
            say(f"{run_id} · {report.status} · {report.event_count} events")
            for step in report.steps:
                after = f" · after: {step.previous_failure}" if step.previous_failure else ""
                say(
                    f"  [{step.label}] {step.outcome or 'running'} · attempt {step.attempt or '-'}"
                    f" · {fmt_ms(step.duration_ms)} · {step.worker or '-'}{after}"
                )
            for line in closing_lines(run_id, report):
                if line and report.status != "running":
                    say(line)
            return 0

    raise typer.Exit(asyncio.run(show()))


def history(
    run_id: Annotated[str, typer.Argument(help="Workflow id.")],
    address: AddressOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the raw history JSON.")] = False,
) -> None:
    """Print a run's Temporal history, event by event."""

    async def show() -> int:
        async with runtime(address, model=False):
            hist = await _fetch_history(run_id, address)
            if json_out:
                print(hist.to_json())
                return 0
            from temporalio.api.enums.v1 import EventType

            for event in hist.events:
                name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
                when = event.event_time.ToDatetime().strftime("%H:%M:%S.%f")[:-3]
                say(f"{event.event_id:>4} {when} {name}")
            return 0

    raise typer.Exit(asyncio.run(show()))
