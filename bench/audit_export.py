"""Export and verify a run with 10,000 audit events (figures printed; no server needed).

    python bench/audit_export.py [--events 10000]

Targets (issue 6): export under 10 s, verify under 2 s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jamjet_temporal.audit import (
    AuditEvent,
    event_id,
    export_bundle,
    load_or_create_signing_key,
    open_store,
    verify_bundle,
    write_bundle,
)


async def main(count: int) -> None:
    folder = Path(tempfile.mkdtemp())
    store = open_store(f"sqlite:///{folder / 'audit.db'}")
    run_id, start = "exec_bench", datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        AuditEvent(
            id=event_id(run_id, "r1", str(n)),
            run_id=run_id,
            workflow_run_id="r1",
            kind="tool.call" if n % 2 else "policy.decision",
            at=start + timedelta(milliseconds=n),
            actor={"workflow_type": "bench", "worker": "w1"},
            data={
                "tool": "search",
                "activity_id": str(n // 2),
                "decision": "ALLOWED",
                "args": ["q" * 40],
                "result": ["r" * 80],
                "latency_ms": 1.5,
            },
        )
        for n in range(count)
    ]
    for i in range(0, count, 500):
        await store.append(events[i : i + 500])
    key = load_or_create_signing_key(folder / "signing.key")
    began = time.perf_counter()
    bundle = await export_bundle(store, run_id, key=key)
    write_bundle(bundle, folder / "bundle.json")
    exported = time.perf_counter() - began
    began = time.perf_counter()
    verdict = verify_bundle(bundle)
    verified = time.perf_counter() - began
    await store.close()
    assert verdict.integrity_ok, verdict.problems
    print(
        f"{count:,} audit events: export {exported:.2f} s (target < 10 s), "
        f"verify {verified:.2f} s (target < 2 s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().events))
