"""Gate 3 end to end: a $50,000 wire transfer waits for a human, across a worker restart.

    .venv/bin/python -m starters.transfer

Creates two approvers' keys (in a temporary folder, never in the repository), starts a worker
process, starts the transfer, restarts the worker ("deploy"), has alice approve with her signed
decision, and prints what happened, read back from the run (query, history) and the audit trail.

Where it runs (``starters/_stack.py``): on the Temporal server already up (``jamjet dev``,
./dev-server.sh, or ``TEMPORAL_ADDRESS``), recording in the audit store ``jamjet audit`` reads,
else on a throwaway dev server of its own. It prints the run id first and, last, the ``jamjet``
commands that show the run.
"""

from __future__ import annotations

import asyncio
import os
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
from starters._stack import stack
from starters.transfer_worker import TASK_QUEUE
from workflows.transfer import transfer

ROOT = Path(__file__).resolve().parent.parent  # the worker is run as `-m starters.…` from here


def fmt_ms(ms: int | None) -> str:
    """``420ms`` below a second, ``1.2s`` above (as ``jamjet run`` prints durations)."""
    if ms is None:
        return "?"
    return f"{ms}ms" if ms < 1000 else f"{ms / 1000:.1f}s"


APPROVALS = """\
approvers:
  - {{id: alice@example.com, public_key: "{alice}"}}
  - {{id: bob@example.com, public_key: "{bob}"}}
clients:  # the payments portal proves who asked for each transfer
  - {{id: payments-portal, public_key: "{portal}", acts_for: ["*@example.com"]}}
rules:
  - action: wire_transfer
    approvers: [alice@example.com, bob@example.com]
    thresholds: [{{field: amount, above: 100000, required: 2}}]
    timeout_seconds: 86400
"""


async def start_worker(
    address: str, approvals: Path, audit: str, env: dict[str, str]
) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starters.transfer_worker",
        address,
        str(approvals),
        audit,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdout is not None
    await proc.stdout.readline()  # "worker ready"
    return proc


async def main(
    amount: float = 50_000, workdir: Path | None = None, address: str | None = None
) -> list[str]:
    """Run the demo; returns (and prints) the showcase's console lines.

    Args:
        amount: The transfer's amount (USD).
        workdir: Where the keys, the bank's ledger and a throwaway server's history and audit
            store go; None: a new temporary folder.
        address: The Temporal server; None: the configured one if up, else a throwaway one.
    """
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    workdir = workdir or Path(tempfile.mkdtemp(prefix="jamjet-transfer-"))
    env = {**os.environ, "JAMJET_BANK_LEDGER": str(workdir / "bank.db")}
    alice, _ = generate_identity("alice@example.com", workdir / "keys")
    bob, _ = generate_identity("bob@example.com", workdir / "keys")
    portal, _ = generate_identity("payments-portal", workdir / "keys")
    approvals = workdir / "approvals.yaml"
    approvals.write_text(
        APPROVALS.format(alice=alice.public_key, bob=bob.public_key, portal=portal.public_key)
    )
    run_id = f"exec_{uuid.uuid4().hex[:4]}"
    async with stack(
        address, scratch_audit=workdir / "audit.db", db_file=workdir / "temporal.db"
    ) as where:
        where.announce(run_id)
        audit = where.audit_store
        worker = await start_worker(where.address, approvals, audit, env)
        try:
            client = await where.connect(plugins=[JamJetPlugin()])
            with acting_as("carol@example.com", signer=portal):
                handle = await client.start_workflow(
                    transfer.run, args=[amount, "ACME GmbH"], id=run_id, task_queue=TASK_QUEUE
                )
            say(f"▸ [transfer] action: wire_transfer · ${amount:,.0f}")
            pending: list[PendingApproval] = []
            while not pending:  # visibility is eventually consistent
                pending = [p for p in await list_pending(client) if p.run_id == run_id]
                await asyncio.sleep(0.2)
            say(f"▸ [approval] suspended · approver: {', '.join(pending[0].eligible)}")

            worker.terminate()  # a deploy: the old worker goes away, a new one comes up
            await worker.wait()
            say("...worker restarts after deploy...")
            worker = await start_worker(where.address, approvals, audit, env)
            # The new worker answers for the run: the same request, still open (raises if not).
            still = await find_pending(client, run_id, pending[0].approval_id)
            say("▸ [approval] resumed · still waiting (durable)")

            result = await submit(
                client, sign(alice, still, "approved", "invoice INV-2291 checked")
            )
            store = open_store(audit)
            try:
                decided = next(
                    stored.event
                    for stored in await store.events(run_id)
                    if stored.event.id == result.event_id
                )
            finally:
                await store.close()
            when = decided.at.astimezone().strftime("%H:%M")
            say(f"▸ [approval] approved by {decided.data['approver']} at {when}")
            txn = await handle.result()
            history = read_history(await handle.fetch_history())
            step = next(s for s in history.steps if s.activity_type == "bank.send")
            say(f"▸ [bank.send] ✓ completed {fmt_ms(step.duration_ms)} · {txn}")
        finally:
            worker.terminate()
            await worker.wait()
    where.inspect(run_id)
    return lines


if __name__ == "__main__":
    asyncio.run(main())
