"""A2A delegation: a coordinator delegates research and a risk review to two specialist agents,
each served by ``jamjet a2a serve`` in a process of its own, under one budget.

    .venv/bin/python -m starters.a2a_delegation

What it shows, from the runs' own records:

* each specialist is a ``@workflow`` served as an A2A agent (``workflows/a2a_delegation.py``);
  each task it runs is a Temporal workflow;
* the coordinator signs a short-lived token for each delegation (its caller key); each
  specialist serves the coordinator only, and records the token it accepted;
* the coordinator's run has a $0.05 budget; each delegation sets a slice aside ($0.02, $0.01),
  the specialist runs with its slice as its budget and reports what it spent, and that is what
  the coordinator's budget is charged.

Where it runs (``starters/_stack.py``): on the Temporal server already up (``jamjet dev``,
./dev-server.sh, or ``TEMPORAL_ADDRESS``), recording in the audit store ``jamjet audit`` reads,
else on a throwaway dev server of its own. It prints the run id first and, last, the ``jamjet``
commands that show the run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin, run_budget
from jamjet_temporal.a2a import generate_caller_key
from jamjet_temporal.audit import open_store
from jamjet_temporal.budget import money
from jamjet_temporal.cli import free_port
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule, ScriptUsage
from jamjet_temporal.plugin import AuditConfig
from starters._stack import stack
from workflows.a2a_delegation import MODEL, coordinator

ROOT = Path(__file__).resolve().parent.parent
TASK_QUEUE = "a2a-demo-coordinator"
BUDGET = "0.05"
SPECIALISTS = {
    "research": "workflows.a2a_delegation:research",
    "risk": "workflows.a2a_delegation:risk_review",
}


def script(marker: str) -> list[ScriptRule]:
    """The specialists' model answers, with the usage they report (priced for ``MODEL``)."""

    def rule(match: str, content: str, prompt: int, completion: int) -> ScriptRule:
        usage = ScriptUsage(prompt_tokens=prompt, completion_tokens=completion)
        return ScriptRule(
            match=match,
            model=MODEL,
            marker=marker,
            responses=[ScriptResponse(content=content, usage=usage)],
        )

    return [
        rule(
            "key findings",
            f"{marker}: 1. tidal arrays are predictable; 2. capex is high; 3. permits take years",
            400,
            500,
        ),
        rule("Summarize", "Predictable output, high upfront cost, slow permitting.", 700, 250),
        rule("risks", "Risk: MEDIUM. Main risks: permitting delays, cost overruns.", 500, 300),
    ]


def serve(
    target: str, name: str, port: int, trust: str, audit: str, folder: Path, env: dict[str, str]
) -> Any:
    """``jamjet a2a serve TARGET`` in its own process; returns once its card answers."""
    log = (folder / f"{name}.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jamjet_temporal",
            "a2a",
            "serve",
            target,
            "--port",
            str(port),
            "--name",
            name,
            "--trust",
            trust,
            "--audit-store",
            audit,
            "--address",
            env["TEMPORAL_ADDRESS"],
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            url = f"http://127.0.0.1:{port}/.well-known/agent-card.json"
            if httpx.get(url, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the {name} agent did not start; see {folder / f'{name}.log'}")
        time.sleep(0.1)


async def audit_of(url: str, kind: str, run_id: str | None = None) -> list[dict[str, Any]]:
    store = open_store(url)
    try:
        return [s.event.data for s in await store.events(run_id) if s.event.kind == kind]
    finally:
        await store.close()


async def main(
    folder: Path | None = None, address: str | None = None
) -> tuple[list[str], dict[str, Any]]:
    """Run the demo; returns (and prints) the showcase's console lines, and the coordinator's
    result.

    Args:
        folder: Where the keys, logs and, beside a throwaway server, the audit stores go; None:
            a new temporary folder.
        address: The Temporal server; None: the configured one if up, else a throwaway one.
    """
    folder = folder or Path(tempfile.mkdtemp(prefix="a2a-demo-"))
    key_file = folder / "keys" / "coordinator.a2a.key"
    caller = generate_caller_key("coordinator", key_file)
    processes: list[subprocess.Popen[bytes]] = []
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    run_id = f"coord_{uuid.uuid4().hex[:8]}"
    async with stack(address, scratch_audit=folder / "coordinator-audit.db") as where:
        where.announce(run_id)
        # Beside a throwaway server, each agent keeps its own store, signed with a demo key;
        # on a server that stays up, all record where `jamjet audit` reads, with your key.
        stores = {"coordinator": where.audit_store}
        signing_key = folder / "audit-signing.key" if where.throwaway else None
        try:
            async with ModelServer() as model:
                model.add_rules(script(run_id))
                env = {"TEMPORAL_ADDRESS": where.address, "OPENAI_BASE_URL": str(model.base_url)}
                if signing_key is not None:
                    env["JAMJET_AUDIT_KEY"] = str(signing_key)
                urls: dict[str, str] = {}
                for name, target in SPECIALISTS.items():
                    port = free_port()
                    trust = f"coordinator={caller.public_key}"
                    stores[name] = (
                        f"sqlite:///{folder / f'{name}-audit.db'}"
                        if where.throwaway
                        else where.audit_store
                    )
                    processes.append(serve(target, name, port, trust, stores[name], folder, env))
                    urls[name] = f"http://127.0.0.1:{port}"
                    say(f"▸ [{name}] A2A agent at {urls[name]} (serves 'coordinator' only)")

                signed = {"type": "signed", "key_file": str(key_file)}
                config = JamJetConfig(
                    audit=AuditConfig(store=where.audit_store, key=signing_key),
                    a2a_agents={name: {"url": url, "auth": signed} for name, url in urls.items()},
                )
                client = await where.connect(plugins=[JamJetPlugin(config)])
                async with Worker(client, task_queue=TASK_QUEUE, workflows=[coordinator]):
                    with run_budget(max_cost=BUDGET):
                        result: dict[str, Any] = await client.execute_workflow(
                            coordinator.run,
                            f"tidal energy {run_id}",
                            id=run_id,
                            task_queue=TASK_QUEUE,
                        )
                story, tasks = await _story(run_id, stores, result)
                for line in story:
                    say(line)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
    where.inspect(run_id, also=tasks)
    return lines, result


async def _story(
    run_id: str, stores: dict[str, str], result: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """What happened, from the coordinator's and the specialists' audit trails; and the
    specialists' task ids."""
    lines = [f"▸ [coordinator] run {run_id} · budget {money(Decimal(BUDGET))}"]
    spends = await audit_of(stores["coordinator"], "a2a.spend", run_id)
    slices = await audit_of(stores["coordinator"], "budget.decision", run_id)
    total = Decimal(0)
    tasks: list[str] = []
    for spent, decided in zip(spends, slices, strict=True):
        agent = str(spent["a2a_agent"])
        task = str(spent["task_id"])
        tasks.append(task)
        cost = Decimal(str(spent["cost"]))
        total += cost
        accepted = [
            e
            for e in await audit_of(stores[agent], "a2a.identity", task)
            if e.get("decision") == "ACCEPTED" and e.get("caller") == "coordinator"
        ]
        piece = money(Decimal(decided["slice"]["max_cost"]))
        lines.append(
            f"▸ [coordinator] delegated to {agent} (slice {piece}) → task {task} · "
            f"{agent} accepted the signed token ({len(accepted)} task) · "
            f"spent {money(cost, places=4)}"
        )
    left = Decimal(str(result["left"]))
    lines.append(
        f"▸ Budget: {money(Decimal(BUDGET))} - {money(total, places=4)} spent by the specialists "
        f"= {money(left, places=4)} left"
    )
    lines.append(f"▸ Summary: {result['notes']['summary']}")
    lines.append(f"▸ Risk review: {result['review']['review']}")
    return lines, tasks


if __name__ == "__main__":
    try:
        asyncio.run(main())
    finally:
        sys.stdout.flush()
        os._exit(0)
