"""``jamjet run`` shows what happened and what to do next: the output, Ctrl-C, a model down.

Each test drives the real entry point as a subprocess against the session's dev server.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from jamjet_temporal.cli._devserver import DevServer, free_port
from jamjet_temporal.modelserver import ModelServer
from tests.test_cli import FIXTURES, jamjet, lines

PIPELINE = (
    "workflow: {id: brief, version: 0.1.0}\n"
    "nodes:\n"
    "  plan: {type: model, label: Plan, prompt: 'Plan a brief on {{ state.topic }}',"
    " output_key: plan, next: done}\n"
    "  done: {type: end, output: plan}\n"
)
SLOW = (
    "workflow: {id: slow}\n"
    "nodes:\n"
    "  wait_a_bit: {type: tool, label: Linger, tool: linger, arguments: {seconds: 3},"
    " output_key: said, next: done}\n"
    "  done: {type: end, output: said}\n"
)


def _env(temporal_server: DevServer, model_url: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TEMPORAL_"))}
    return {**base, "TEMPORAL_ADDRESS": temporal_server.address, "OPENAI_BASE_URL": model_url}


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jamjet_temporal", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float = 60) -> list[str]:
    """stdout lines up to the first containing ``needle``."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.rstrip("\n"))
        if needle in line:
            return seen
    proc.kill()
    raise AssertionError(f"never printed {needle!r}; printed: {seen}; stderr: {proc.stderr}")


def test_run_shows_the_output_and_writes_it_to_a_file(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    (tmp_path / "brief.yaml").write_text(PIPELINE)
    env = _env(temporal_server, model_server.base_url)
    done = jamjet(
        "run", "brief.yaml", "--input", '{"topic": "tides"}', "-o", "out/outcome.json",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    saved = json.loads((tmp_path / "out" / "outcome.json").read_text())
    assert saved["status"] == "completed" and saved["run_id"].startswith("exec_")
    assert saved["output"] == saved["state"]["plan"] and saved["output"]
    # The output is on the terminal, indented under "▸ Output:", before the closing line.
    out = done.stdout.splitlines()
    at = out.index("▸ Output:")
    assert out[at + 1] == f"  {str(saved['output']).splitlines()[0]}"
    assert lines(done.stdout)[-1] == "▸ Execution complete · 1/1 nodes · 0 events lost"
    assert "Traceback" not in done.stderr
    # `jamjet status` shows it too, read back from the run's history.
    status = jamjet("status", saved["run_id"], env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    shown = status.stdout.splitlines()
    at = shown.index("▸ Output:")
    assert shown[at + 1] == out[out.index("▸ Output:") + 1]


def test_run_json_prints_only_the_outcome_on_stdout(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    (tmp_path / "brief.yaml").write_text(PIPELINE)
    env = _env(temporal_server, model_server.base_url)
    done = jamjet("run", "brief.yaml", "--json", "--input", '{"topic": "x"}', env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)  # nothing else on stdout
    assert outcome["status"] == "completed" and outcome["output"] == outcome["state"]["plan"]
    assert "▸ Execution complete · 1/1 nodes · 0 events lost" in done.stderr
    assert "▸ [Plan] ✓ completed" in done.stderr


def test_a_model_endpoint_that_is_down_is_named(temporal_server: DevServer, tmp_path: Path) -> None:
    """The retry line names the URL that cannot be reached (not 'Connection error.')."""
    (tmp_path / "brief.yaml").write_text(PIPELINE)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    args = ["run", "brief.yaml", "--input", '{"topic": "x"}']
    runner = _start(args, _env(temporal_server, dead), tmp_path)
    try:
        said = _read_until(runner, "retrying")[-1]
    finally:
        runner.send_signal(signal.SIGINT)
        runner.communicate(timeout=60)
    assert said.startswith("▸ [Plan] ✗ attempt 1 failed: LLMUnavailableError: model endpoint")
    assert f"{dead}/ cannot be reached" in said and "jamjet dev" in said
    assert "Failure exceeds size limit" not in said


async def test_ctrl_c_leaves_the_run_running_and_the_printed_worker_finishes_it(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    (tmp_path / "slow.yaml").write_text(SLOW)
    (tmp_path / "tools.py").write_text((FIXTURES / "tools.py").read_text())
    env = _env(temporal_server, model_server.base_url)
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    runner = _start(["run", "slow.yaml", "--id", run_id], env, tmp_path)
    _read_until(runner, f"Starting execution {run_id}")
    client = await Client.connect(temporal_server.address)
    handle = client.get_workflow_handle(run_id)
    for _ in range(100):  # until the step is running on the command's worker
        try:
            if (await handle.describe()).raw_description.pending_activities:
                break
        except RPCError as err:
            # "Starting execution" is printed as the command starts the run, not after.
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        await asyncio.sleep(0.1)
    runner.send_signal(signal.SIGINT)
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 130, out + err
    assert "Traceback" not in err
    assert f"✗ interrupted: {run_id} is still running in Temporal (Linger pending)" in err
    finish = next(line for line in err.splitlines() if "finish it:" in line)
    command = shlex.split(finish.split("finish it:", 1)[1])
    assert command[:4] == ["jamjet", "worker", "--task-queue", f"jamjet-run-{run_id}"]
    assert f"jamjet status {run_id}" in err
    assert (await handle.describe()).status is not None  # still there, still running
    # The command it printed, run as printed, finishes the run.
    worker = _start(command[1:], env, tmp_path)
    try:
        result = await handle.result()
    finally:
        worker.send_signal(signal.SIGINT)
        worker.communicate(timeout=30)
    assert result["output"] == "lingered 3.0s"


async def test_cancel_on_interrupt_cancels_the_run(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    (tmp_path / "slow.yaml").write_text(SLOW)
    (tmp_path / "tools.py").write_text((FIXTURES / "tools.py").read_text())
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    args = ["run", "slow.yaml", "--id", run_id, "--cancel-on-interrupt", "--json"]
    runner = _start(args, _env(temporal_server, model_server.base_url), tmp_path)
    client = await Client.connect(temporal_server.address)
    handle = client.get_workflow_handle(run_id)
    for _ in range(200):  # until the step is running on the command's worker
        try:
            if (await handle.describe()).raw_description.pending_activities:
                break
        except Exception:  # not started yet
            pass
        await asyncio.sleep(0.1)
    runner.send_signal(signal.SIGINT)
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 130, out + err
    assert f"✗ interrupted: {run_id} canceled" in err
    assert json.loads(out) == {"run_id": run_id, "status": "canceled"}, out + err
    assert (await handle.describe()).status.name == "CANCELED"  # type: ignore[union-attr]


def test_a_self_hosted_models_price_in_the_pipeline_lets_its_budget_work(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    """A budgeted pipeline on a model genai-prices does not know fails closed, until its
    `models:` entry gives the price."""
    body = (
        "workflow: {{id: local, cost_budget_usd: 0.05}}\n"
        "models:\n"
        "  local: {{model: 'llama3.1:8b'{prices}}}\n"
        "nodes:\n"
        "  ask: {{type: model, label: Ask, model: local, prompt: hi, output_key: a, next: done}}\n"
        "  done: {{type: end, output: a}}\n"
    )
    env = _env(temporal_server, model_server.base_url)
    (tmp_path / "unpriced.yaml").write_text(body.format(prices=""))
    refused = jamjet("run", "unpriced.yaml", env=env, cwd=tmp_path)
    assert refused.returncode == 1
    assert "no price known for model 'llama3.1:8b'" in refused.stdout
    priced = ", input_per_mtok: 0.10, output_per_mtok: 0.20"
    (tmp_path / "priced.yaml").write_text(body.format(prices=priced))
    done = jamjet("run", "priced.yaml", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert lines(done.stdout)[-1] == "▸ Execution complete · 1/1 nodes · 0 events lost"
    (tmp_path / "half.yaml").write_text(body.format(prices=", input_per_mtok: 0.10"))
    half = jamjet("validate", "half.yaml", env=env, cwd=tmp_path)
    assert half.returncode != 0 and "give both input_per_mtok and output_per_mtok" in half.stdout
