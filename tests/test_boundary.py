"""The determinism boundary, enforced: what workflow-side code loads, and who can load it.

* Each workflow-side module, imported in a fresh interpreter, loads no I/O module (database
  drivers, HTTP clients, the PDF renderer, web servers).
* The import graph has no cycle between packages, and no workflow-side module reaches an I/O
  module (``scripts/import_graph.py``, the check contributors run themselves).
* A worker *without* our plugin loads a workflow module that imports ``jamjet_temporal`` and
  runs a plain workflow: adding ``import jamjet_temporal`` to a module breaks no Temporal app.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from jamjet_temporal.cli import DevServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import import_graph  # noqa: E402

from tests.task_failures import first_task_failure  # noqa: E402


def _loaded_by(module: str) -> set[str]:
    """Top-level names of every module loaded by importing ``module`` in a fresh interpreter."""
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(json.loads(out.stdout))


def _io_loaded(module: str) -> tuple[str, list[str]]:
    # sqlite3 is a package over the _sqlite3 extension: either name counts.
    loaded = _loaded_by(module)
    io = {name.lstrip("_") for name in loaded} & import_graph.IO_MODULES
    return module, sorted(io)


def test_workflow_side_modules_load_no_io_module() -> None:
    modules = import_graph.workflow_side(import_graph.module_files())
    # The list is found by convention (every _workflow and _types module) plus the declared
    # authoring API; a re-layout that renamed them would empty it silently.
    assert "jamjet_temporal.gate._workflow" in modules
    assert "jamjet_temporal.authoring._task" in modules
    assert len(modules) >= 20, modules
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_io_loaded, modules))
    offenders = {module: io for module, io in results if io}
    assert offenders == {}, f"workflow-side modules that load I/O modules: {offenders}"


def test_the_io_detector_sees_io() -> None:
    """The check above can fail: activity-side store modules do load their drivers."""
    assert _io_loaded("jamjet_temporal.audit._sqlite")[1] == ["sqlite3"]
    assert "openai" in _io_loaded("jamjet_temporal.llm._activities")[1]


def test_import_graph_has_no_package_cycle_and_no_io_path() -> None:
    edges = import_graph.graph()
    assert import_graph.cycles(import_graph.package_graph(edges)) == []
    for module in import_graph.workflow_side(import_graph.module_files()):
        assert import_graph.io_paths(edges, module) == [], module


def test_import_graph_finds_cycles_and_io_paths() -> None:
    """The graph check is not vacuous: it finds a planted cycle and a planted I/O path."""
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_graph.cycles(planted) == [["a", "b", "c"]]
    edges = {"jamjet_temporal.x._workflow": {"jamjet_temporal.y"}, "jamjet_temporal.y": {"psycopg"}}
    assert import_graph.io_paths(edges, "jamjet_temporal.x._workflow") == [
        ["jamjet_temporal.x._workflow", "jamjet_temporal.y", "psycopg"]
    ]


async def test_a_worker_without_the_plugin_runs_a_module_importing_jamjet_temporal(
    temporal_server: DevServer,
) -> None:
    from tests import boundary_workflows

    client = await Client.connect(temporal_server.address)  # no plugin anywhere
    queue = f"plain-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[boundary_workflows.PlainShout],
        activities=[boundary_workflows.shout],
    ):
        result = await client.execute_workflow(
            boundary_workflows.PlainShout.run,
            "durable",
            id=f"plain-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
    assert result == "DURABLE (6 modules, errors from jamjet_temporal.errors)"


async def test_a_model_call_on_a_worker_without_the_plugin_says_the_plugin_is_needed(
    temporal_server: DevServer,
) -> None:
    """Not an obscure 'activity not registered': the workflow task names the missing plugin."""
    from tests import boundary_workflows

    client = await Client.connect(temporal_server.address)  # no plugin anywhere
    queue = f"plain-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[boundary_workflows.asks_model]):
        handle = await client.start_workflow(
            boundary_workflows.asks_model.run,
            "hello?",
            id=f"plain-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        failure = await first_task_failure(handle, tries=100)
        await handle.terminate()
    assert failure.startswith("llm.call()/llm.chat() needs JamJetPlugin on the worker")
    assert "plugins=[JamJetPlugin(...)]" in failure
