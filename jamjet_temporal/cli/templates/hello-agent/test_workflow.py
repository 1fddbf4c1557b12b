"""The pipeline is valid and answers: python -m pytest -q"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_workflow_validates() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jamjet_temporal", "validate", str(HERE / "workflow.yaml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflow_runs() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jamjet_temporal",
            "run",
            str(HERE / "workflow.yaml"),
            "--policy",
            str(HERE / "policy.yaml"),
            "--audit-store",
            "",
        ],
        capture_output=True,
        text=True,
        cwd=HERE,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Execution complete" in done.stdout
