"""The pipeline is valid, waits for the human_approved event and follows it: python -m pytest -q"""

import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).parent
JAMJET = [sys.executable, "-m", "jamjet_temporal"]


def test_workflow_validates() -> None:
    done = subprocess.run(
        [*JAMJET, "validate", "workflow.yaml"], capture_output=True, text=True, cwd=HERE
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\n!" not in "\n" + done.stdout, done.stdout  # no warnings either


def test_approved_plan_is_executed() -> None:
    run_id = f"deploy-{uuid.uuid4().hex[:8]}"
    run = subprocess.Popen(
        [
            *JAMJET,
            "run",
            "workflow.yaml",
            "--policy",
            "policy.yaml",
            "--audit-store",
            "",
            "--id",
            run_id,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=HERE,
    )
    try:
        assert run.stdout is not None
        seen = ""
        while "Starting execution" not in seen:  # the run's Temporal server is up
            line = run.stdout.readline()
            assert line, seen
            seen += line
        for _ in range(50):  # the run may not have been created yet
            sent = subprocess.run(
                [
                    *JAMJET,
                    "resume",
                    run_id,
                    "--event",
                    "human_approved",
                    "--data",
                    '{"approved": true}',
                ],
                capture_output=True,
                text=True,
                cwd=HERE,
            )
            if sent.returncode == 0:
                break
            time.sleep(0.2)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        rest, _ = run.communicate(timeout=300)
    finally:
        run.kill()
    assert run.returncode == 0, seen + rest
    assert "[execute]" in rest and "[rejected]" not in rest
