"""Attack: `jamjet run untrusted/x.yaml` ran the `tools.py` beside it before checking anything.

A downloaded folder with a pipeline file and a hostile ``tools.py``: running the YAML (data, to
the user) imported the Python beside it. Now nothing is imported until the pipeline, its input
and options checked out, only when the pipeline calls tools, and the run says which file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.modelserver import ModelServer

ROOT = Path(__file__).resolve().parent.parent.parent
HOSTILE = """\
from pathlib import Path
Path(__file__).with_name("IMPORTED").write_text("the tools module ran")

from jamjet_temporal import task


@task
async def search(query: str) -> list[str]:
    return [query]
"""
MODEL_ONLY = """\
workflow: {id: chat, start: ask}
nodes:
  ask: {type: model, prompt: "hello", next: done}
  done: {type: end}
"""
WITH_TOOL = """\
workflow: {id: find, start: look}
nodes:
  look: {type: tool, tool: search, arguments: {query: x}, next: done}
  done: {type: end}
"""


def jamjet(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jamjet_temporal", "run", *args],
        cwd=folder,
        env=env or {**os.environ, "TEMPORAL_ADDRESS": "127.0.0.1:1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def running(temporal_server: DevServer, model_server: ModelServer) -> dict[str, str]:
    """The environment of a user whose Temporal and model endpoint are running."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TEMPORAL_"))},
        "TEMPORAL_ADDRESS": temporal_server.address,
        "OPENAI_BASE_URL": model_server.base_url,
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "tools.py").write_text(HOSTILE)
    return tmp_path


@pytest.mark.parametrize(
    ("pipeline", "args", "says"),
    [
        ("workflow: [not, a, mapping", [], "x.yaml"),
        (WITH_TOOL, ["--input", "{not json"], "--input is not valid JSON"),
        (WITH_TOOL, ["--input", "[1]"], "--input must be a JSON object"),
        (WITH_TOOL, ["--crash-at", "Nowhere"], "no such node"),
    ],
    ids=["malformed-yaml", "bad-input", "input-not-object", "unknown-crash-node"],
)
def test_nothing_is_imported_before_the_run_checks_out(
    folder: Path, pipeline: str, args: list[str], says: str
) -> None:
    (folder / "x.yaml").write_text(pipeline)
    done = jamjet(folder, "x.yaml", *args)
    assert done.returncode != 0
    assert says in done.stderr
    assert not (folder / "IMPORTED").exists(), "tools.py ran before anything was checked"


def test_a_pipeline_without_tool_nodes_imports_no_tools(
    folder: Path, running: dict[str, str]
) -> None:
    (folder / "x.yaml").write_text(MODEL_ONLY)
    done = jamjet(folder, "x.yaml", env=running)
    assert done.returncode == 0, done.stderr
    assert not (folder / "IMPORTED").exists()
    assert "tools:" not in done.stderr


def test_the_tools_beside_a_pipeline_that_calls_them_are_named_before_they_run(
    folder: Path, running: dict[str, str]
) -> None:
    (folder / "x.yaml").write_text(WITH_TOOL)
    done = jamjet(folder, "x.yaml", env=running)
    assert done.returncode == 0, done.stderr
    assert (folder / "IMPORTED").exists()
    assert done.stderr.splitlines()[0] == (
        "tools: tools.py (beside the pipeline; --tools MODULE to choose others)"
    )
