"""The gate 3 example prints the showcase's lines, from the run and the audit trail."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from jamjet_temporal.cli import DevServer
from starters import transfer as demo


async def test_transfer_demo_waits_across_a_worker_restart(
    tmp_path: Path, temporal_server: DevServer
) -> None:
    lines = await demo.main(workdir=tmp_path, address=temporal_server.address)
    assert lines[0] == "▸ [transfer] action: wire_transfer · $50,000"
    assert lines[1] == "▸ [approval] suspended · approver: alice@example.com, bob@example.com"
    assert lines[2] == "...worker restarts after deploy..."
    assert lines[3] == "▸ [approval] resumed · still waiting (durable)"
    assert re.fullmatch(r"▸ \[approval\] approved by alice@example\.com at \d\d:\d\d", lines[4])
    assert re.fullmatch(r"▸ \[bank\.send\] ✓ completed \d+(\.\d)?m?s · txn_[0-9a-f]{12}", lines[5])
    with sqlite3.connect(tmp_path / "bank.db") as db:
        assert db.execute("SELECT count(*) FROM transfers").fetchone()[0] == 1
