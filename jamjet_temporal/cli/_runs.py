"""``jamjet status`` and ``jamjet history``: a run read back from its Temporal history."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.service import RPCError

from jamjet_temporal.cli._client import CHECK_RUN_ID, cli_connect, run_failure
from jamjet_temporal.cli._format import say, value_lines
from jamjet_temporal.cli._history import read_history
from jamjet_temporal.cli._options import AddressOption
from jamjet_temporal.cli._progress import closing_lines, fmt_ms
from jamjet_temporal.cli._runtime import runtime
from jamjet_temporal.plugin._plugin import JamJetPlugin


async def _fetch_history(run_id: str, address: str) -> WorkflowHistory:
    client = await cli_connect(address, plugins=[JamJetPlugin()])
    try:
        return await client.get_workflow_handle(run_id).fetch_history()
    except RPCError as err:
        raise run_failure(client, run_id, err, CHECK_RUN_ID) from None


def status(
    run_id: Annotated[str, typer.Argument(help="Workflow id, e.g. exec_7f3a2b1c.")],
    address: AddressOption = None,
) -> None:
    """Show a run's status and its steps (attempts, durations, workers), read from history."""

    async def show() -> int:
        async with runtime(address, model=False, web_ui=False) as env:
            hist = await _fetch_history(run_id, env.address)
            report = read_history(hist)
            say(f"{run_id} · {report.status} · {report.event_count} events")
            for step in report.steps:
                after = f" · after: {step.previous_failure}" if step.previous_failure else ""
                say(
                    f"  [{step.label}] {step.outcome or 'running'} · attempt {step.attempt or '-'}"
                    f" · {fmt_ms(step.duration_ms)} · {step.worker or '-'}{after}"
                )
            if report.status != "running":
                for line in _result_lines(hist):
                    say(line)
                for line in closing_lines(run_id, report):
                    if line:
                        say(line)
            return 0

    raise typer.Exit(asyncio.run(show()))


def _result_lines(history: WorkflowHistory) -> list[str]:
    """What a completed run returned: a pipeline's output, else the workflow's result."""
    for event in reversed(history.events):
        if event.HasField("workflow_execution_completed_event_attributes"):
            payloads = event.workflow_execution_completed_event_attributes.result.payloads
            if not payloads:
                return []
            try:
                value = DataConverter.default.payload_converter.from_payloads(list(payloads))[0]
            except Exception:  # not JSON (a codec, a custom converter): say nothing wrong
                return ["▸ Result: (not readable here: encoded by the workflow's converter)"]
            if isinstance(value, dict) and {"output", "state", "nodes"} <= value.keys():
                return value_lines("Output", value["output"])
            return value_lines("Result", value)
    return []


def history(
    run_id: Annotated[str, typer.Argument(help="Workflow id.")],
    address: AddressOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the raw history JSON.")] = False,
) -> None:
    """Print a run's Temporal history, event by event."""

    async def show() -> int:
        async with runtime(address, model=False, web_ui=False) as env:
            hist = await _fetch_history(run_id, env.address)
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
