"""The pipeline is valid and delegates to the local A2A agent: python -m pytest -q

The test starts agent.py on a free port and runs a copy of workflow.yaml pointed at it.
"""

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent
JAMJET = [sys.executable, "-m", "jamjet_temporal"]


def test_workflow_validates() -> None:
    done = subprocess.run(
        [*JAMJET, "validate", "workflow.yaml"], capture_output=True, text=True, cwd=HERE
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\n!" not in "\n" + done.stdout, done.stdout  # no warnings either


def test_workflow_delegates_to_the_agent(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    agent = subprocess.Popen([sys.executable, str(HERE / "agent.py"), "--port", str(port)])
    try:
        card = f"http://127.0.0.1:{port}/.well-known/agent-card.json"
        for _ in range(100):
            try:
                urllib.request.urlopen(card, timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        pipeline = (HERE / "workflow.yaml").read_text(encoding="utf-8")
        pipeline = pipeline.replace("127.0.0.1:7700", f"127.0.0.1:{port}")
        (tmp_path / "workflow.yaml").write_text(pipeline, encoding="utf-8")
        shutil.copy(HERE / "policy.yaml", tmp_path / "policy.yaml")
        done = subprocess.run(
            [*JAMJET, "run", "workflow.yaml", "--policy", "policy.yaml", "--audit-store", ""],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[delegate]" in done.stdout and "Execution complete" in done.stdout
