"""MCP tool integration end to end: an agent reads a folder through the official filesystem MCP
server, stamps its report with the official time server, and the report's write waits for a
person, across a worker killed while it waits.

    .venv/bin/python -m starters.mcp_tools

Makes a folder of notes and an approver's keys (in a temporary folder, never in the
repository), starts the local scripted model server and a worker process
(``starters.mcp_tools_worker``, which holds the MCP servers' configuration), and runs
``shelf_report`` from ``workflows/mcp_tools.py``. When ``filesystem.write_file`` is held for
approval, the worker is killed (SIGKILL) and another one started; alice approves, the write runs
once. Every line printed is read back from the run's history, the audit trail and the folder.

Needs the official servers: ``mcp-server-time`` (in the ``[dev]`` extra) and node for
``@modelcontextprotocol/server-filesystem`` (the checkout's copy from ``npm ci --prefix
.ci/node``, else fetched by ``npx``).

Where it runs (``starters/_stack.py``): on the Temporal server already up (``jamjet dev``,
./dev-server.sh, or ``TEMPORAL_ADDRESS``), recording in the audit store ``jamjet audit`` reads,
else on a throwaway dev server of its own. It prints the run id first and, last, the ``jamjet``
commands that show the run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import uuid
from pathlib import Path

from jamjet_temporal import JamJetPlugin, acting_as
from jamjet_temporal.approvals import (
    PendingApproval,
    find_pending,
    generate_identity,
    list_pending,
    sign,
    submit,
)
from jamjet_temporal.audit import open_store
from jamjet_temporal.cli import read_history
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule, ScriptToolCall
from starters._stack import stack
from starters.mcp_tools_worker import TASK_QUEUE
from workflows.mcp_tools import REPORT, shelf_report

ROOT = Path(__file__).resolve().parent.parent  # the worker is run as `-m starters.…` from here

NOTES = {
    "deploys.md": "# Deploys\nCheckout deploys on Tuesdays; roll back with one click.\n",
    "incidents.md": "# Incidents\nT-1042: checkout 502s after a deploy; fixed by a rollback.\n",
}
SUMMARY = (
    "# Shelf report\n\n"
    "- **Deploys**: checkout deploys on Tuesdays and rolls back in one click.\n"
    "- **Incidents**: T-1042 (checkout 502s) followed a deploy and ended with a rollback."
)
APPROVALS = """\
approvers:
  - {{id: alice@example.com, public_key: "{alice}"}}
clients:  # the docs portal proves who asked for each report
  - {{id: docs-portal, public_key: "{portal}", acts_for: ["*@example.com"]}}
rules:
  - action: "filesystem.*"
    approvers: [alice@example.com]
    timeout_seconds: 86400
"""


def script(folder: Path) -> list[ScriptRule]:
    """The model's side: list the folder, read both notes, get the time, answer."""

    def calls(*pairs: tuple[str, dict[str, str]]) -> ScriptResponse:
        return ScriptResponse(
            tool_calls=[ScriptToolCall(name=name, arguments=args) for name, args in pairs]
        )

    return [
        ScriptRule(
            id="reporter",
            marker=str(folder),
            responses=[
                calls(("filesystem__list_directory", {"path": str(folder)})),
                calls(
                    *(
                        ("filesystem__read_text_file", {"path": str(folder / name)})
                        for name in NOTES
                    )
                ),
                calls(("time__get_current_time", {"timezone": "UTC"})),
                ScriptResponse(content=SUMMARY),
            ],
        )
    ]


async def start_worker(
    address: str, model_url: str, approvals: Path, audit: str, folder: Path
) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starters.mcp_tools_worker",
        address,
        model_url,
        str(approvals),
        audit,
        str(folder),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    await proc.stdout.readline()  # "worker ready"
    return proc


async def main(workdir: Path | None = None, address: str | None = None) -> list[str]:
    """Run the demo; returns (and prints) the showcase's console lines.

    Args:
        workdir: Where the notes, the keys and a throwaway server's history and audit store go;
            None: a new temporary folder.
        address: The Temporal server; None: the configured one if up, else a throwaway one.
    """
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    workdir = workdir or Path(tempfile.mkdtemp(prefix="jamjet-mcp-"))
    folder = (workdir / "shelf").resolve()
    folder.mkdir(parents=True)
    for name, text in NOTES.items():
        (folder / name).write_text(text)
    alice, _ = generate_identity("alice@example.com", workdir / "keys")
    portal, _ = generate_identity("docs-portal", workdir / "keys")
    approvals = workdir / "approvals.yaml"
    approvals.write_text(APPROVALS.format(alice=alice.public_key, portal=portal.public_key))
    run_id = f"exec_{uuid.uuid4().hex[:4]}"
    worker: asyncio.subprocess.Process | None = None
    async with stack(
        address, scratch_audit=workdir / "audit.db", db_file=workdir / "temporal.db"
    ) as where:
        where.announce(run_id)
        audit = where.audit_store
        try:
            async with ModelServer() as model:
                model.add_rules(script(folder))
                worker = await start_worker(where.address, model.base_url, approvals, audit, folder)
                client = await where.connect(plugins=[JamJetPlugin()])
                with acting_as("carol@example.com", signer=portal):
                    handle = await client.start_workflow(
                        shelf_report.run, str(folder), id=run_id, task_queue=TASK_QUEUE
                    )
                pending: list[PendingApproval] = []
                while not pending:  # visibility is eventually consistent
                    pending = [p for p in await list_pending(client) if p.run_id == run_id]
                    await asyncio.sleep(0.2)
                request = pending[0]
                store = open_store(audit)
                try:
                    called = [
                        e.event.data
                        for e in await store.events(run_id)
                        if e.event.kind == "tool.call"
                    ]
                finally:
                    await store.close()
                used = ", ".join(
                    f"{c['tool']} {'✓' if c['outcome'] == 'completed' else '✗'}" for c in called
                )
                say(f"▸ [reporter] agent called MCP tools: {used}")
                say(
                    f"▸ [{request.action}] held for approval · approver: "
                    f"{', '.join(request.eligible)} · path: {request.args['path']}"
                )

                os.kill(worker.pid, signal.SIGKILL)  # the worker dies while the write waits
                await worker.wait()
                say("...worker killed (SIGKILL); a new worker takes over...")
                worker = await start_worker(where.address, model.base_url, approvals, audit, folder)
                still = await find_pending(client, run_id, request.approval_id)
                say("▸ [approval] resumed · still waiting (durable)")
                assert not (folder / REPORT).exists()

                answer = await submit(client, sign(alice, still, "approved", "report reviewed"))
                report = await handle.result()
                history = await handle.fetch_history()
        finally:
            if worker is not None and worker.returncode is None:
                worker.terminate()
                await worker.wait()

    store = open_store(audit)
    try:
        events = [stored.event for stored in await store.events(run_id)]
    finally:
        await store.close()
    approved = next(e for e in events if e.id == answer.event_id)
    when = approved.at.astimezone().strftime("%H:%M")
    say(f"▸ [approval] approved by {approved.data['approver']} at {when}")
    decision = next(
        e.data
        for e in events
        if e.kind == "policy.decision" and e.data["subject"] == "filesystem.write_file"
    )
    hints = decision.get("mcp_annotations") or {}
    say(
        f"▸ Policy: rule '{decision['rule']}' {decision['rule_kind']} when destructive · "
        f"write_file destructiveHint={hints.get('destructiveHint')}"
    )
    # Tool lists are the runtime's own activities: counted from the raw history.
    listings = [
        e
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "jamjet.mcp.list_tools"
    ]
    steps = read_history(history).steps
    writes = [
        e.data
        for e in events
        if e.kind == "tool.call" and e.data["tool"] == "filesystem.write_file"
    ]
    written = (folder / REPORT).read_text()
    state = "✓ completed" if written == report and len(writes) == 1 else "✗ not as recorded"
    say(
        f"▸ [filesystem.write_file] {state} · {REPORT} written {len(writes)}x "
        f"({len(written.encode())} bytes)"
    )
    say(
        f"▸ {run_id} · {len(steps)} MCP and model calls, {len(listings)} tool lists (filesystem, "
        "time), each listed once and kept in history: replay needs no server"
    )
    say(f"▸ Report stamped: {written.strip().splitlines()[-1]}")
    where.inspect(run_id)
    return lines


if __name__ == "__main__":
    asyncio.run(main())
