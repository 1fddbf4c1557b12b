"""The crash-safe example's one command, as a user runs it: its worker is killed mid-step and a
second worker finishes the run, with no step lost and none run twice."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from jamjet_temporal.cli import DevServer

ROOT = Path(__file__).resolve().parent.parent


def test_crash_safe_demo_resumes_the_killed_step_on_a_new_worker(
    temporal_server: DevServer,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "starters.crash_safe"],
        cwd=ROOT,
        # The session's server, as `jamjet dev` would be: the starter runs on it.
        env={**os.environ, "TEMPORAL_ADDRESS": temporal_server.address},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    said = [line for line in proc.stdout.splitlines() if line.startswith("▸")]
    assert re.fullmatch(rf"▸ Run exec_[0-9a-f]{{4}} on {temporal_server.address}", said[0])
    run_id = said[0].split()[2]
    lines = said[1:-1]  # the showcase's lines
    assert lines[0] == f"▸ Starting execution {run_id}..."
    assert re.fullmatch(r"▸ \[fetch_data\] ✓ completed \d+(\.\d)?m?s", lines[1])
    assert re.fullmatch(r"▸ \[analyze\] ✗ worker crashed at \d+\.\ds", lines[2])
    assert lines[3] == "▸ Lease expired · reclaiming..."
    assert re.fullmatch(r"▸ \[analyze\] ✓ resumed \d+(\.\d)?m?s", lines[4])
    # From the history: fetch_data completed once, before the crash, and was not re-run.
    assert lines[5] == f"▸ {run_id} · 0 events lost · 0 reruns"
    assert lines[6].startswith('▸ Result: {"summary": "Checkout 502s started with the deploy')
    assert len(lines) == 7
    assert said[-1] == (
        f"▸ Inspect: jamjet status {run_id} · jamjet history {run_id} · jamjet audit show {run_id}"
    )
