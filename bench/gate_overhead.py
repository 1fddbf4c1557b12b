"""Wall time of the 5-step workload with the policy gate and audit trail on vs off.

    python bench/gate_overhead.py [--runs 40] [--audit-store URL]

Same dev server, same worker code, the two configurations interleaved round by round. "On"
is a 100-rule policy (the steps' tool allowed by the last rule) with every decision and call
recorded in the audit store (SQLite by default, synchronous=FULL); "off" has no policy and no
audit store. Prints medians and the ratio on/off (target <= 1.15).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client
from temporalio.worker import Worker

from bench._workload import five_steps, step
from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.cli import DevServer, free_port
from jamjet_temporal.plugin import AuditConfig
from jamjet_temporal.policy import Policy, Rule


def hundred_rules() -> Policy:
    rules = [Rule(match=f"svc{i}.*", action="block") for i in range(99)]
    return Policy(rules=(*rules, Rule(match="bench.*", action="allow")))


async def main(runs: int, audit_store: str) -> None:
    server = DevServer(port=free_port())
    await server.astart()
    try:
        configs = {
            "off": JamJetConfig(audit=AuditConfig(store=None)),
            "on": JamJetConfig(audit=AuditConfig(store=audit_store), policy=hundred_rules()),
        }
        times: dict[str, list[float]] = {name: [] for name in configs}
        clients = {
            name: await Client.connect(server.address, plugins=[JamJetPlugin(config)])
            for name, config in configs.items()
        }
        queues = {name: f"bench-{name}-{uuid.uuid4().hex[:6]}" for name in configs}
        workers = [
            Worker(
                clients[name], task_queue=queues[name], workflows=[five_steps], activities=[step]
            )
            for name in configs
        ]
        for worker in workers:
            await worker.__aenter__()
        try:
            for name in configs:  # warm-up
                await clients[name].execute_workflow(
                    five_steps.run, 1, id=f"w-{uuid.uuid4().hex}", task_queue=queues[name]
                )
            for _ in range(runs):
                for name in configs:
                    start = time.perf_counter()
                    await clients[name].execute_workflow(
                        five_steps.run,
                        1,
                        id=f"{name}-{uuid.uuid4().hex}",
                        task_queue=queues[name],
                    )
                    times[name].append(time.perf_counter() - start)
        finally:
            for worker in workers:
                await worker.__aexit__(None, None, None)
        med = {name: statistics.median(values) for name, values in times.items()}
        print(f"5-step workload, {runs} runs each, median wall time per run:")
        print(f"  gate + audit off       {med['off'] * 1000:8.1f} ms")
        print(f"  gate + audit on        {med['on'] * 1000:8.1f} ms   ({audit_store})")
        print(f"ratio on/off = {med['on'] / med['off']:.3f}   (target <= 1.15)")
    finally:
        await server.astop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--audit-store", default=None)
    args = parser.parse_args()
    url = args.audit_store or f"sqlite:///{Path(tempfile.mkdtemp()) / 'audit.db'}"
    asyncio.run(main(args.runs, url))
