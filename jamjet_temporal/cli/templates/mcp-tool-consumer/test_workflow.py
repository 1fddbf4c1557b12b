"""The pipeline is valid and runs end to end: python -m pytest -q"""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
# jamjet.toml starts the MCP server with `python server.py`: the Python running these tests.
PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
ENV = {**os.environ, "PATH": PATH}


def jamjet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jamjet_temporal", *args],
        capture_output=True,
        text=True,
        cwd=HERE,
        env=ENV,
        timeout=300,
    )


def test_workflow_validates() -> None:
    done = jamjet("validate", "workflow.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\n!" not in "\n" + done.stdout, done.stdout  # no warnings either


def test_workflow_runs() -> None:
    done = jamjet("run", "workflow.yaml", "--policy", "policy.yaml", "--audit-store", "")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[call-tool]" in done.stdout and "Execution complete" in done.stdout
