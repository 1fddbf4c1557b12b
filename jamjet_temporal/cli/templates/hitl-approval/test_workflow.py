"""The pipeline is valid and a signed approval sends the reply: python -m pytest -q

The test makes throwaway keys for you@example.com (starts the run) and reviewer@example.com
(approves it) in a temporary folder, and a copy of approvals.yaml with their public keys.
"""

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).parent
JAMJET = [sys.executable, "-m", "jamjet_temporal"]


def jamjet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*JAMJET, *args], capture_output=True, text=True, cwd=HERE, stdin=subprocess.DEVNULL
    )


def test_workflow_validates() -> None:
    done = jamjet("validate", "workflow.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\n!" not in "\n" + done.stdout, done.stdout  # no warnings either


def test_approved_reply_is_executed(tmp_path: Path) -> None:
    config = (HERE / "approvals.yaml").read_text(encoding="utf-8")
    for who in ("you", "reviewer"):
        made = jamjet("approvals", "keygen", f"{who}@example.com", "--dir", str(tmp_path))
        assert made.returncode == 0, made.stdout + made.stderr
        key = re.search(r"ed25519:[A-Za-z0-9_-]{43}", made.stdout)
        assert key is not None, made.stdout
        config = re.sub(rf"ed25519:REPLACE-with-the-public-key-of-{who}-A*", key[0], config)
    approvals = tmp_path / "approvals.yaml"
    approvals.write_text(config, encoding="utf-8")

    run_id = f"refund-{uuid.uuid4().hex[:8]}"
    signer = str(tmp_path / "you@example.com.key")
    run = subprocess.Popen(
        [
            *JAMJET,
            "run",
            "workflow.yaml",
            "--policy",
            "policy.yaml",
            "--audit-store",
            "",
            "--approvals",
            str(approvals),
            "--signer",
            signer,
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
        digest = None
        for _ in range(100):  # until the run asks (the draft is written first)
            listed = jamjet("approvals", "list", "--json")
            if listed.returncode == 0:
                requests = json.loads(listed.stdout)["requests"]
                digest = next((r["digest"] for r in requests if r["run_id"] == run_id), None)
                if digest is not None:
                    break
            time.sleep(0.2)
        assert digest is not None, "the run never asked for approval"
        reviewer = str(tmp_path / "reviewer@example.com.key")
        approved = jamjet("approve", run_id, "--key", reviewer, "--digest", digest)
        assert approved.returncode == 0, approved.stdout + approved.stderr
        rest, _ = run.communicate(timeout=300)
    finally:
        run.kill()
    assert run.returncode == 0, seen + rest
    assert "[execute]" in rest and "[revise]" not in rest
