"""``jamjet`` as a user runs it: a subprocess against the real dev server and model server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jamjet_temporal.cli._devserver import DevServer, free_port
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule
from tests.audit.audit_support import PG_ADDRESS, PG_DSN, Backends

ROOT = Path(__file__).resolve().parent.parent
RESEARCH = ROOT / "workflows" / "research-pipeline.yaml"
FIXTURES = Path(__file__).resolve().parent / "cli_fixtures"


def jamjet(
    *args: str, env: dict[str, str], cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jamjet_temporal", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def env(temporal_server: DevServer, model_server: ModelServer) -> dict[str, str]:
    """The environment of a user whose Temporal and model endpoint are already running."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TEMPORAL_"))}
    return {
        **base,
        "TEMPORAL_ADDRESS": temporal_server.address,
        "OPENAI_BASE_URL": model_server.base_url,
    }


def lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("▸")]


def test_run_streams_every_node_and_closes_with_figures(env: dict[str, str], task_queue: str):
    proc = jamjet(
        "run",
        str(RESEARCH),
        "--input",
        '{"topic": "durable agents"}',
        "--task-queue",
        task_queue,
        "--id",
        f"exec_{task_queue}",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = lines(proc.stdout)
    assert out[0] == f"▸ Starting execution exec_{task_queue}..."
    labels = [line.split("]")[0].removeprefix("▸ [") for line in out[1:6]]
    assert labels == ["Plan", "Research", "Analyze", "Review", "Synthesize"]
    assert all("✓ completed" in line for line in out[1:6])
    assert out[-1] == "▸ Execution complete · 5/5 nodes · 0 events lost"

    status = jamjet("status", f"exec_{task_queue}", env=env)
    assert status.returncode == 0, status.stderr
    assert "completed" in status.stdout and "[Analyze] completed · attempt 1" in status.stdout


def test_run_with_no_input_takes_the_state_schemas_defaults(
    env: dict[str, str], task_queue: str
) -> None:
    # The product page's first command, exactly: no --input.
    proc = jamjet("run", str(RESEARCH), "--task-queue", task_queue, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines(proc.stdout)[-1] == "▸ Execution complete · 5/5 nodes · 0 events lost"


def test_required_input_missing_is_refused_before_the_run_starts(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        "workflow:\n  id: x\n  state_schema:\n    type: object\n"
        "    properties: {ticket: {type: string}, n: {type: integer}}\n"
        "    required: [ticket]\n"
        "nodes:\n  a: {type: model, prompt: '{{ state.ticket }}'}\n"
    )
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    proc = jamjet("run", str(pipeline), "--input", '{"n": "two"}', env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert "missing required input 'ticket'" in proc.stderr
    assert "'n': 'two' is not of type 'integer'" in proc.stderr
    assert """--input '{"ticket": "...", "n": 1}'""" in proc.stderr
    assert not (tmp_path / ".jamjet").exists(), "nothing was started"


def test_resume_sends_the_event_a_waiting_run_waits_for(
    env: dict[str, str], task_queue: str, tmp_path: Path
) -> None:
    pipeline = tmp_path / "wait.yaml"
    pipeline.write_text(
        "workflow: {id: w}\n"
        "nodes:\n"
        "  ask: {type: wait, event: reviewed, timeout_hours: 1, next: route}\n"
        "  route:\n    type: branch\n"
        "    conditions: [{if: 'state.approved == true', next: yes_path}]\n"
        "    default: no_path\n"
        "  yes_path: {type: model, prompt: 'approved by {{ state.by }}', output_key: out}\n"
        "  no_path: {type: end}\n"
    )
    run_id = f"exec_{task_queue}"
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jamjet_temporal",
            "run",
            str(pipeline),
            "--id",
            run_id,
            "--task-queue",
            task_queue,
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sent = None
        for _ in range(100):
            sent = jamjet(
                "resume",
                run_id,
                "--event",
                "reviewed",
                "--data",
                '{"approved": true, "by": "rita"}',
                "--as",
                "rita@example.com",
                env=env,
            )
            if sent.returncode == 0:
                break
            time.sleep(0.2)
        assert sent is not None and sent.returncode == 0, sent.stderr if sent else ""
        assert f"▸ {run_id}: sent 'reviewed'" in sent.stdout
        out, err = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, out + err
    # wait, route and the model node: the run counts the nodes that run no activity too.
    assert lines(out)[-1] == "▸ Execution complete · 3/3 nodes · 0 events lost"


def test_crash_at_kills_the_worker_and_a_second_one_resumes(
    env: dict[str, str], task_queue: str, model_server: ModelServer
):
    run_id = f"exec_crash_{task_queue}"
    # Analyze's model call takes 1.5 s (this run only), so the kill lands mid-step.
    model_server.add_rules(
        [
            ScriptRule(
                match="Analyze these sources",
                marker=run_id,
                responses=[ScriptResponse(delay_ms=1500)],
            )
        ]
    )
    proc = jamjet(
        "run",
        str(RESEARCH),
        "--input",
        json.dumps({"topic": run_id}),
        "--crash-at",
        "Analyze",
        "--task-queue",
        task_queue,
        "--id",
        run_id,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = lines(proc.stdout)
    text = "\n".join(out)
    i_crash = next(
        i for i, line in enumerate(out) if line.startswith("▸ [Analyze] ✗ worker crashed")
    )
    assert out[i_crash + 1] == "▸ Lease expired · reclaiming..."
    assert out[i_crash + 2].startswith("▸ [Analyze] ✓ resumed")
    assert "[Plan] ✓ completed" in text and "[Synthesize] ✓ completed" in text
    assert out[-2] == "▸ Execution complete · 5/5 nodes · 0 events lost"
    assert out[-1] == (f"▸ {run_id} · 0 events lost · 0 reruns · resumed: Analyze on attempt 2")
    # The figures come from history: the status command, reading it back, agrees.
    status = jamjet("status", run_id, env=env)
    assert "[Analyze] completed · attempt 2" in status.stdout
    assert "[Plan] completed · attempt 1" in status.stdout


def test_embedded_dev_server_and_model_server_start_when_nothing_answers(tmp_path: Path):
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TEMPORAL_"))}
    env = {**base, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}"}
    proc = jamjet(
        "run",
        str(RESEARCH),
        "--input",
        '{"topic": "x"}',
        "--model-latency-ms",
        "0",
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    # What the command started is said on stderr (stdout carries its output).
    assert f"▸ Started embedded Temporal dev server on 127.0.0.1:{port}" in proc.stderr
    assert "▸ Local model server at http://127.0.0.1:" in proc.stderr
    assert "▸ Execution complete · 5/5 nodes · 0 events lost" in proc.stdout
    assert (tmp_path / ".jamjet" / "temporal.db").exists(), "history persists under .jamjet/"


def test_failing_task_gives_a_typed_readable_failure(env: dict[str, str], task_queue: str):
    proc = jamjet(
        "run",
        str(FIXTURES / "failing.yaml"),
        "--input",
        '{"word": "hi"}',
        "--tools",
        str(FIXTURES / "tools.py"),
        "--task-queue",
        task_queue,
        env=env,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    out = lines(proc.stdout)
    assert "▸ [First] ✓ completed" in out[1]
    assert any(
        "▸ [Boom] ✗ attempt 1 failed: ValueError: cannot process: HI · retrying" == line
        for line in out
    )
    assert any(
        line.startswith("▸ [Boom] ✗ failed after 2 attempt(s): ValueError: cannot process: HI")
        for line in out
    )
    assert out[-2] == "▸ Execution failed · 1 of 2 nodes, failed at boom · 0 events lost"
    assert "node 'boom'" in out[-1] and "ValueError: cannot process: HI" in out[-1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workflow: {id: x, start: a\nnodes: {}\n", ":2"),
        ("workflow: {id: x, start: a}\nnodes:\n  a:\n    type: mcp_tool\n", "'server'"),
        (
            "workflow: {id: x, start: a}\nnodes:\n  a:\n    type: model\n    prompt: hi\n"
            "    next: nowhere\n",
            "nowhere",
        ),
    ],
    ids=["yaml-syntax", "mcp-node-without-server", "missing-next"],
)
def test_bad_pipeline_is_refused_before_anything_starts(
    tmp_path: Path, text: str, expected: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    # No Temporal address that answers: the file must be refused before connecting anywhere.
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    proc = jamjet("run", str(bad), env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / ".jamjet").exists(), "nothing was started"


def test_unknown_tool_is_refused_naming_the_node(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("workflow: {id: x, start: a}\nnodes:\n  a:\n    type: tool\n    tool: shuot\n")
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    proc = jamjet("run", str(bad), "--tools", str(FIXTURES / "tools.py"), env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert "node 'a'" in proc.stderr and "tool 'shuot' is not registered" in proc.stderr
    assert "shout" in proc.stderr


def test_run_keeps_following_across_a_long_dev_server_outage(
    tmp_path: Path, model_server: ModelServer
) -> None:
    server = DevServer(port=free_port(), db_file=tmp_path / "temporal.db")
    server.start()
    run_id = f"exec_restart_{uuid.uuid4().hex[:6]}"
    model_server.add_rules(
        [
            ScriptRule(
                match="Analyze these", marker=run_id, responses=[ScriptResponse(delay_ms=4000)]
            )
        ]
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TEMPORAL_"))}
    env = {**base, "TEMPORAL_ADDRESS": server.address, "OPENAI_BASE_URL": model_server.base_url}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jamjet_temporal",
            "run",
            str(RESEARCH),
            "--id",
            run_id,
            "--input",
            json.dumps({"topic": run_id}),
            "--audit-store",
            "",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("▸ [Research]"):
                break
        # Down longer than the client's own retries last (about 10 s), while Analyze runs.
        server.stop()
        time.sleep(14)
        server.start()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
    text = "".join(seen) + out
    assert proc.returncode == 0, err
    assert "▸ Execution complete · 5/5 nodes · 0 events lost" in text


def test_audit_show_prints_the_trail_and_verifies_the_chain(
    env: dict[str, str], task_queue: str, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'audit.db'}"
    key = tmp_path / "signing.key"
    env = {**env, "JAMJET_AUDIT_KEY": str(key)}
    run_id = f"exec_audit_{task_queue}"
    proc = jamjet(
        "run",
        str(RESEARCH),
        "--input",
        '{"topic": "audit"}',
        "--id",
        run_id,
        "--task-queue",
        task_queue,
        "--audit-store",
        store,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    shown = jamjet("audit", "show", run_id, "--audit-store", store, env=env)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    lines = shown.stdout.splitlines()
    # 5 steps: 4 model calls and 1 tool call, each a decision then a call; then the close.
    kinds = [line.split()[2] for line in lines if line.startswith("evt_")]
    assert kinds.count("policy.model_decision") == 4 and kinds.count("model.call") == 4
    assert kinds.count("policy.decision") == 1 and kinds.count("tool.call") == 1
    assert kinds[-1] == "run.closed"
    assert any("search ALLOWED · no policy configured" in line for line in lines)
    n = len(kinds)
    assert f"{n} events · hash chain verified ({n} events in the store)" in lines
    # The worker signed checkpoints with the local key, which `audit show` trusts by default.
    signer = jamjet("audit", "key", env=env).stdout.splitlines()[0].removeprefix("fingerprint: ")
    assert f"  signer {signer}: trusted (the local signing key {key})" in lines
    assert lines[-1] == f"this run's events are covered by signed checkpoints (up to seq {n})"
    missing = jamjet("audit", "show", "exec_nope", "--audit-store", store, env=env)
    assert missing.returncode == 1 and "no audit events for run exec_nope" in missing.stderr


def _postgres_problem() -> str | None:
    try:
        psycopg.connect(PG_DSN).close()
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {PG_ADDRESS} (database test, user root): {exc}"
    return None


REWRITTEN = re.compile(
    r"hash chain BROKEN: checkpoint at seq (\d+) signed head [0-9a-f]{64}, but the chain now "
    r"has [0-9a-f]{64} there: events at or before seq \1 (\(after seq \d+, whose checkpoint "
    r"still matches\) )?were rewritten"
)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_audit_show_names_a_rewrite_under_a_signed_checkpoint(
    env: dict[str, str], task_queue: str, tmp_path: Path, kind: str
) -> None:
    """The attack on the store itself: triggers dropped, an event edited, the chain re-hashed."""
    if kind == "postgres" and (problem := _postgres_problem()) is not None:
        pytest.skip(problem)
    env = {**env, "JAMJET_AUDIT_KEY": str(tmp_path / "signing.key")}
    made = Backends(kind, tmp_path)
    try:
        if kind == "postgres":
            # The admin sets the schema up; workers (and `audit show`) connect as the worker.
            backend = made.fresh(set_up=False)
            schema, worker = str(backend.schema), made.worker()
            init = jamjet(
                "audit", "init-db", "--dsn", PG_DSN, "--schema", schema, "--worker-role", worker,
                env=env,
            )  # fmt: skip
            assert init.returncode == 0, init.stderr
            workers_url = f"postgresql://{worker}@HOST/DB?schema={schema}"
            assert f"▸ Workers: --audit-store '{workers_url}'" in init.stdout
            as_root = f"postgresql://root@{PG_ADDRESS}/test?schema={schema}"
            refused = jamjet("audit", "show", "exec_x", "--audit-store", as_root, env=env)
            assert refused.returncode == 2
            assert "role root is a superuser" in refused.stderr
            assert "jamjet audit init-db" in refused.stderr
        else:
            backend = made.fresh()

        # Another host with the same (trusted) key but none of this host's checkpoint marks.
        elsewhere = tmp_path / "elsewhere" / "signing.key"

        def show(*extra: str, here: bool = True) -> subprocess.CompletedProcess[str]:
            where = env if here else {**env, "JAMJET_AUDIT_KEY": str(elsewhere)}
            return jamjet("audit", "show", run_id, "--audit-store", backend.url, *extra, env=where)

        def verify_store(*extra: str, here: bool = True) -> subprocess.CompletedProcess[str]:
            where = env if here else {**env, "JAMJET_AUDIT_KEY": str(elsewhere)}
            return jamjet(
                "audit", "verify-store", "--audit-store", backend.url, *extra, env=where
            )  # fmt: skip

        run_id = f"exec_rewrite_{kind}_{task_queue}"
        proc = jamjet(
            "run", str(RESEARCH), "--input", '{"topic": "rewrite"}', "--id", run_id,
            "--task-queue", task_queue, "--audit-store", backend.url, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        elsewhere.parent.mkdir()
        elsewhere.write_bytes((tmp_path / "signing.key").read_bytes())
        elsewhere.chmod(0o600)
        intact = show()
        assert intact.returncode == 0, intact.stdout + intact.stderr
        assert "this run's events are covered by signed checkpoints" in intact.stdout
        whole = verify_store()
        assert whole.returncode == 0, whole.stdout + whole.stderr
        assert "signed checkpoints cover all 11 events in the store" in whole.stdout

        # Whoever can write the database makes a tool call look different, then re-chains.
        call = int(str(backend.query("SELECT seq FROM {t} WHERE kind = 'tool.call'")[0][0]))
        backend.rewrite(call, {"latency_ms": 0.5, "result": ["nothing to see"]})
        rewritten = show()
        assert rewritten.returncode == 3, rewritten.stdout + rewritten.stderr
        assert REWRITTEN.search(rewritten.stdout), rewritten.stdout
        assert verify_store().returncode == 3

        # ...and removes the checkpoints that give it away. The host whose key signed them
        # remembers what it signed (beside its key): the rewrite is still named there.
        backend.drop_append_only("audit_checkpoints")
        backend.execute("DELETE FROM {c}")
        remembered = show()
        assert remembered.returncode == 3, remembered.stdout + remembered.stderr
        assert "this host's checkpoint marks say key" in remembered.stdout
        assert "were rewritten and re-chained" in remembered.stdout
        # Elsewhere, the chain is intact but no longer covered.
        uncovered = show(here=False)
        assert uncovered.returncode == 4, uncovered.stdout + uncovered.stderr
        assert "hash chain verified" in uncovered.stdout
        assert "signed checkpoints: 0 match the chain" in uncovered.stdout
        assert "events after seq 0 are not yet covered by a signed checkpoint" in uncovered.stdout
        assert "NOT COVERED: this run's events after seq 0 (up to seq 11)" in uncovered.stdout
        assert verify_store(here=False).returncode == 4

        # ...and signs the rewritten head with a key of its own: not a trusted signer.
        forger = backend.forge_checkpoint(Ed25519PrivateKey.generate(), 11)
        forged = show(here=False)
        assert forged.returncode == 4, forged.stdout + forged.stderr
        assert f"  signer {forger}: NOT TRUSTED (not one of the 1 trusted key(s)" in forged.stdout
        assert verify_store(here=False).returncode == 4
        assert verify_store().returncode == 3  # this host still remembers
        # Trust is the verifier's call: pinning that key (and only it) accepts its checkpoint.
        pinned = verify_store("--trusted-key", forger, here=False)
        assert pinned.returncode == 0, pinned.stdout + pinned.stderr
        assert f"  signer {forger}: trusted (pinned by --trusted-key)" in pinned.stdout
    finally:
        made.cleanup()


def test_audit_export_and_verify_catch_a_tampered_bundle(
    env: dict[str, str], task_queue: str, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'audit.db'}"
    run_id = f"exec_export_{task_queue}"
    env = {**env, "JAMJET_AUDIT_KEY": str(tmp_path / "signing.key")}
    proc = jamjet(
        "run",
        str(RESEARCH),
        "--input",
        '{"topic": "export"}',
        "--id",
        run_id,
        "--task-queue",
        task_queue,
        "--audit-store",
        store,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "bundle.pdf"
    exported = jamjet(
        "audit",
        "export",
        run_id,
        "--format",
        "pdf",
        "-o",
        str(out),
        "--audit-store",
        store,
        env=env,
    )
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.splitlines()
    assert lines[0] == f"▸ Building evidence package for {run_id}..."
    assert lines[1] == "▸ Events: 11 (signed, immutable)"  # 5 decisions, 5 calls, run.closed
    assert lines[2] == "▸ Tool calls: 1 (args, results, latency)"
    assert lines[3] == "▸ Policy: 5 (5 allowed, 0 blocked, 5 evaluated)"
    assert lines[-1].startswith(f"▸ Output: {out} · ")
    bundle = out.with_suffix(".json")
    assert f"▸ Attestation: {bundle.with_suffix('.intoto.jsonl')} (in-toto, DSSE)" in lines
    # The auditor pins the fingerprint the exporter publishes (`jamjet audit key`).
    signer = jamjet("audit", "key", env=env).stdout.splitlines()[0].removeprefix("fingerprint: ")
    assert f"▸ Signing key: {signer} (verifiers pin it with --trusted-key)" in lines
    ok = jamjet("audit", "verify", str(bundle), "--trusted-key", signer, env=env)
    assert ok.returncode == 0 and "integrity: ok" in ok.stdout
    assert f"signer: {signer} (trusted: pinned by --trusted-key)" in ok.stdout
    assert "completeness: ok" in ok.stdout, "the run's history was embedded and checked"
    data = json.loads(bundle.read_text())
    data["events"][2]["data"]["latency_ms"] = 0.0
    bundle.write_text(json.dumps(data))
    tampered = jamjet("audit", "verify", str(bundle), "--trusted-key", signer, env=env)
    assert tampered.returncode == 1
    assert "integrity: FAILED" in tampered.stdout
    assert data["events"][2]["id"] in tampered.stdout
