"""Wall time of the 5-step workload with OpenTelemetry tracing on vs off.

    python bench/tracing_overhead.py [--runs 40]

Same dev server, same worker code, the two configurations interleaved round by round. "On" is
``JamJetConfig(tracing=TracingConfig())`` configured the standard way: the replay-safe tracer
provider the plugin makes from ``OTEL_EXPORTER_OTLP_ENDPOINT``, with its batch span processor
exporting over OTLP/HTTP to a receiver on 127.0.0.1, a process of its own (Temporal's spans,
ours, the gate's decision events, the metrics). "Off" has no tracing. Both run the gate with no
policy and no audit store, so tracing is the only difference. Prints medians, the spans the
receiver decoded, and the ratio on/off (target <= 1.05).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client
from temporalio.worker import Worker

from bench._workload import five_steps, step
from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.cli import DevServer, free_port
from jamjet_temporal.plugin import AuditConfig, TracingConfig

ROOT = Path(__file__).resolve().parent.parent


async def main(runs: int) -> None:
    # The receiver is a process of its own, as a collector would be: decoding what arrives must
    # not take the GIL from the workers being measured.
    receiver = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench._otlp_receiver",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert receiver.stdin is not None and receiver.stdout is not None
    endpoint = (await receiver.stdout.readline()).decode().strip()
    # The standard way: where to export, and the service's name.
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    os.environ.setdefault("OTEL_SERVICE_NAME", "bench-tracing")
    server = DevServer(port=free_port())
    await server.astart()
    try:
        configs = {
            "off": JamJetConfig(audit=AuditConfig(store=None)),
            "on": JamJetConfig(audit=AuditConfig(store=None), tracing=TracingConfig()),
        }
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
        times: dict[str, list[float]] = {name: [] for name in configs}
        for worker in workers:
            await worker.__aenter__()
        try:
            for name in configs:  # warm-up
                await clients[name].execute_workflow(
                    five_steps.run, 1, id=f"w-{uuid.uuid4().hex}", task_queue=queues[name]
                )
            for index in range(runs):
                # Alternate which goes first, so neither always follows the other.
                order = list(configs) if index % 2 == 0 else list(reversed(configs))
                for name in order:
                    start = time.perf_counter()
                    await clients[name].execute_workflow(
                        five_steps.run, 1, id=f"{name}-{uuid.uuid4().hex}", task_queue=queues[name]
                    )
                    times[name].append(time.perf_counter() - start)
        finally:
            for worker in workers:
                await worker.__aexit__(None, None, None)  # the traced one flushes its exporter
    finally:
        await server.astop()
        out, _ = await receiver.communicate(b"")
    got = json.loads(out.decode().strip().splitlines()[-1])
    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"5-step workload, {runs} runs each, median wall time per run:")
    print(f"  tracing off            {med['off'] * 1000:8.1f} ms")
    print(
        f"  tracing on             {med['on'] * 1000:8.1f} ms   ({got['spans']} spans in "
        f"{got['traces']} traces received over OTLP/HTTP, "
        f"{got['spans'] / max(got['traces'], 1):.0f} per run)"
    )
    print(f"ratio on/off = {med['on'] / med['off']:.3f}   (target <= 1.05)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(main(args.runs))
    sys.stdout.flush()
    # The Temporal client's threads can abort the interpreter at exit (temporalio/sdk-python#300).
    os._exit(0)
