"""The pipeline is valid and runs end to end: python -m pytest -q"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def jamjet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jamjet_temporal", *args],
        capture_output=True,
        text=True,
        cwd=HERE,
        timeout=300,
    )


def test_workflow_validates() -> None:
    done = jamjet("validate", "workflow.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\n!" not in "\n" + done.stdout, done.stdout  # no warnings either


def test_workflow_runs() -> None:
    done = jamjet("run", "workflow.yaml", "--policy", "policy.yaml", "--audit-store", "")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Execution complete" in done.stdout
    assert "[answer]" in done.stdout
