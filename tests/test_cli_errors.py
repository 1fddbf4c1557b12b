"""``jamjet`` says what happened and what to do next: one ``✗`` line on stderr, no traceback.

Each test drives the installed ``jamjet`` console script (not ``python -m``, which puts the
current directory on the import path and would hide the dotted ``--tools`` problem) and checks
exit code, stdout and stderr separately.

The runs that need Temporal without a server up (the embedded server a command starts) share
one project folder: a persistent dev server database holding one finished run, made once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jamjet_temporal.approvals._identity import generate_identity
from jamjet_temporal.cli._devserver import DevServer, free_port, is_listening
from jamjet_temporal.cli._runtime import STATE_DIR

ROOT = Path(__file__).resolve().parent.parent
JAMJET = Path(sys.executable).parent / "jamjet"
FIXTURES = Path(__file__).resolve().parent / "cli_fixtures"
APPROVALS_TEMPLATE = ROOT / "jamjet_temporal" / "cli" / "templates" / "hitl-approval"

TINY = """\
workflow: {id: tiny, start: first}
nodes:
  first:
    type: tool
    label: First
    tool: shout
    arguments: {text: "{{ state.word }}"}
    output_key: loud
"""


def jamjet(
    *args: str, env: dict[str, str], cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(JAMJET), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def user_env(**extra: str) -> dict[str, str]:
    """A user's environment: no Temporal or model settings of the test session's own."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TEMPORAL_"))}
    return {**base, **extra}


def refused(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The one ``✗`` line a refused command printed on stderr (nothing on stdout)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("✗ "), proc.stderr
    return lines[0]


def servers_on(db: Path) -> list[int]:
    """Pids of the running ``temporal server start-dev`` processes using ``db``'s file."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if "start-dev" not in argv or "--db-filename" not in argv[:-1]:
                continue
            named = argv[argv.index("--db-filename") + 1]
            path = os.path.join(os.readlink(entry / "cwd"), named)
            if os.path.realpath(path) == os.path.realpath(db):
                found.append(int(entry.name))
    return found


@dataclass
class Project:
    """A project folder whose local Temporal database (``.jamjet/temporal.db``) holds a run."""

    folder: Path
    server: DevServer
    run_id: str
    audit_store: str
    env: dict[str, str]

    @property
    def db(self) -> Path:
        return self.folder / STATE_DIR / "temporal.db"

    def up(self) -> None:
        """Its dev server running, started in the folder with a relative database path (as
        ./dev-server.sh starts it)."""
        if self.server.pid is None:
            with contextlib.chdir(self.folder):
                self.server.start()

    def down(self) -> None:
        """No server running: a command must start one itself to read the run."""
        self.server.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    folder = tmp_path_factory.mktemp("project")
    (folder / "tiny.yaml").write_text(TINY)
    shutil.copy(FIXTURES / "tools.py", folder / "tools.py")
    server = DevServer(port=free_port(), db_file=STATE_DIR / "temporal.db")
    made = Project(
        folder=folder,
        server=server,
        run_id=f"exec_errors_{uuid.uuid4().hex[:6]}",
        audit_store=f"sqlite:///{folder / 'audit.db'}",
        # A model endpoint is named so that no command starts the local model server.
        env=user_env(OPENAI_BASE_URL="http://127.0.0.1:9/v1"),
    )
    made.up()
    try:
        run = jamjet(
            "run",
            "tiny.yaml",
            "--input",
            '{"word": "hi"}',
            "--id",
            made.run_id,
            "--address",
            server.address,
            "--audit-store",
            made.audit_store,
            env=made.env,
            cwd=folder,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        yield made
    finally:
        server.stop()


def test_no_server_and_unknown_namespace_are_said_with_the_fix(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    _, key = generate_identity("ann@example.com", tmp_path)
    start_one = (
        f"✗ no Temporal server answers at {nowhere}; start one with `jamjet dev` (or "
        "./dev-server.sh), or point --address / TEMPORAL_ADDRESS at yours"
    )
    listing = jamjet("approvals", "list", "--address", nowhere, env=user_env())
    assert refused(listing) == start_one
    approve = jamjet(
        "approve",
        "exec_x",
        "--key",
        str(key),
        "--digest",
        "sha256:0",
        "--address",
        nowhere,
        env=user_env(),
    )
    assert refused(approve) == start_one
    # A namespace the server does not have.
    unknown = jamjet(
        "approvals",
        "list",
        env=user_env(TEMPORAL_ADDRESS=temporal_server.address, TEMPORAL_NAMESPACE="nope"),
    )
    assert refused(unknown) == (
        f"✗ namespace nope was not found at {temporal_server.address}; create it with "
        f"`temporal operator namespace create --namespace nope --address "
        f"{temporal_server.address}`, or set TEMPORAL_NAMESPACE to an existing one"
    )


def test_a_wrong_run_id_names_the_namespace_and_address(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    _, key = generate_identity("ann@example.com", tmp_path)
    env = user_env(TEMPORAL_ADDRESS=temporal_server.address)
    where = f"namespace default at {temporal_server.address}"
    approve = jamjet("approve", "exec_nope", "--key", str(key), "--digest", "sha256:0", env=env)
    assert refused(approve) == (
        f"✗ run exec_nope not found in {where}; `jamjet approvals list` shows the runs waiting "
        "for a decision"
    )
    resume = jamjet("resume", "exec_nope", "--event", "reviewed", env=env)
    assert refused(resume) == (
        f"✗ run exec_nope not found in {where}; check the run id (`jamjet run` prints it: "
        "▸ Starting execution ...), or --address and TEMPORAL_NAMESPACE if it ran on another "
        "server"
    )


def test_dotted_tools_module_imports_from_the_current_directory() -> None:
    env = user_env()
    found = jamjet(
        "validate", "workflows/research-pipeline.yaml", "--tools", "workflows.tools", env=env
    )
    assert found.returncode == 0, found.stdout + found.stderr
    assert found.stdout.startswith("✓ workflows/research-pipeline.yaml: valid")
    assert found.stderr == ""
    # A module that does not exist is named, with the form that would work for a file.
    missing = jamjet(
        "run",
        "workflows/research-pipeline.yaml",
        "--tools",
        "workflows.nope",
        "--address",
        f"127.0.0.1:{free_port()}",
        env=env,
    )
    assert refused(missing) == (
        f"✗ tool module workflows.nope was not found (looked in the current directory {ROOT} "
        "and the installed packages); give its file instead, e.g. --tools workflows/nope.py"
    )


def test_a_second_server_on_a_database_in_use_is_refused(project: Project) -> None:
    project.up()
    other = f"127.0.0.1:{free_port()}"
    proc = jamjet("status", project.run_id, "--address", other, env=project.env, cwd=project.folder)
    address = project.server.address
    assert refused(proc) == (
        f"✗ the database {STATE_DIR / 'temporal.db'} is in use by the Temporal dev server on "
        f"{address} (pid {project.server.pid}): did you mean --address {address}? (two "
        "servers on one database would corrupt it; stop that one to start another)"
    )
    assert len(servers_on(project.db)) == 1, "no second server was started on the database"
    assert not is_listening(other)


def test_audit_export_starts_the_local_server_to_embed_the_history(project: Project) -> None:
    project.down()
    bundle = project.folder / "bundle.json"
    exported = jamjet(
        "audit",
        "export",
        project.run_id,
        "-o",
        str(bundle),
        "--audit-store",
        project.audit_store,
        "--address",
        project.server.address,
        env=project.env,
        cwd=project.folder,
    )
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "Traceback" not in exported.stderr
    assert "Temporal history" not in exported.stdout, "the history was embedded"
    assert exported.stdout.splitlines()[0] == (
        f"▸ Building evidence package for {project.run_id}..."
    )
    assert exported.stderr.startswith(
        f"▸ Started embedded Temporal dev server on {project.server.address} for this command"
    )
    assert json.loads(bundle.read_text())["history"] is not None
    verified = jamjet("audit", "verify", str(bundle), env=project.env, cwd=project.folder)
    assert "completeness: ok" in verified.stdout.splitlines(), verified.stdout


@pytest.fixture(scope="module")
def offline_history(project: Project) -> subprocess.CompletedProcess[str]:
    """``jamjet history RUN --json`` with no server up: the command starts one for itself."""
    project.down()
    return jamjet(
        "history",
        project.run_id,
        "--json",
        "--address",
        project.server.address,
        env=project.env,
        cwd=project.folder,
    )


def test_history_json_prints_only_json_on_stdout(
    offline_history: subprocess.CompletedProcess[str], project: Project
) -> None:
    assert offline_history.returncode == 0, offline_history.stderr
    assert "Traceback" not in offline_history.stderr
    events = json.loads(offline_history.stdout)["events"]
    assert events[0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    assert "▸ Started embedded Temporal dev server" in offline_history.stderr


def test_no_dead_web_ui_link_from_a_server_the_command_stops(
    offline_history: subprocess.CompletedProcess[str], project: Project
) -> None:
    assert offline_history.returncode == 0, offline_history.stderr
    assert offline_history.stderr.splitlines() == [
        f"▸ Started embedded Temporal dev server on {project.server.address} for this command "
        "(Web UI: run `jamjet dev`, or ./dev-server.sh)"
    ]
    assert "http://" not in offline_history.stdout + offline_history.stderr


def test_a_file_that_is_not_a_key_is_named_as_such(tmp_path: Path) -> None:
    config = tmp_path / "approvals.yaml"
    shutil.copy(APPROVALS_TEMPLATE / "approvals.yaml", config)
    config.chmod(0o644)
    proc = jamjet(
        "approve",
        "exec_x",
        "--key",
        "approvals.yaml",
        "--address",
        f"127.0.0.1:{free_port()}",
        env=user_env(),
        cwd=tmp_path,
    )
    assert refused(proc) == (
        "✗ approvals.yaml: not a key file (it looks like an approvals config) (fix: give the "
        "approver's private key file, made by `jamjet approvals keygen`)"
    )
