"""A starter run against a Temporal server that stays up can be inspected afterwards with the
real ``jamjet`` commands: it prints its run id, and records where ``jamjet audit`` reads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from jamjet_temporal.cli import DevServer

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_policy_gate_run_is_inspectable_with_jamjet_status_and_audit_show(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_server.address,
        "JAMJET_AUDIT_STORE": f"sqlite:///{tmp_path / 'audit.db'}",
    }
    demo = run(["-m", "starters.policy_gate"], env)
    assert demo.returncode == 0, demo.stderr
    lines = demo.stdout.splitlines()
    started = re.fullmatch(r"▸ Run (exec_[0-9a-f]{8}) on (\S+)", lines[0])
    assert started is not None, lines
    run_id = started[1]
    assert started[2] == temporal_server.address
    assert "▸ Decision: BLOCKED · tool not in allow-list" in lines
    assert lines[-1] == (
        f"▸ Inspect: jamjet status {run_id} · jamjet history {run_id} · jamjet audit show {run_id}"
    )

    status = run(["-m", "jamjet_temporal", "status", run_id], env)
    assert status.returncode == 0, status.stderr
    assert run_id in status.stdout and "Started embedded" not in status.stderr

    audit = run(["-m", "jamjet_temporal", "audit", "show", run_id], env)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    blocked = [line for line in audit.stdout.splitlines() if "BLOCKED" in line]
    assert len(blocked) == 1 and "delete_database" in blocked[0], audit.stdout
