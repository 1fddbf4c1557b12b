"""Optional extras: without one, the feature that needs it says which extra to install.

Each case imports a module in a fresh interpreter where the extra's package cannot be imported
(``sys.modules[name] = None`` makes Python refuse it, as on an install without the extra).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CASES = [
    ("jamjet_temporal.audit._pdf", "reportlab", "pdf"),
    ("jamjet_temporal.approvals._ui", "starlette", "ui"),
    ("jamjet_temporal.approvals._ui", "uvicorn", "ui"),
    ("jamjet_temporal.audit._postgres", "psycopg", "postgres"),
    ("jamjet_temporal.memory._postgres", "psycopg", "postgres"),
    ("jamjet_temporal.modelserver", "starlette", "cli"),
    ("jamjet_temporal.cli._app", "typer", "cli"),
    ("jamjet_temporal.mcp._activities", "mcp", "mcp"),
    ("jamjet_temporal.a2a._activities", "a2a", "a2a"),
    ("jamjet_temporal.a2a._token", "jwt", "a2a"),
    ("jamjet_temporal.a2a._server", "uvicorn", "a2a"),
    ("jamjet_temporal.a2a._server", "a2a", "a2a"),
    ("jamjet_temporal.tracing._plugin", "opentelemetry", "otel"),
]


def _import_without(module: str, package: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import importlib, sys\n"
        f"sys.modules[{package!r}] = None\n"
        f"importlib.import_module({module!r})\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize(("module", "package", "extra"), CASES)
def test_a_missing_extra_is_named_with_its_install_command(
    module: str, package: str, extra: str
) -> None:
    done = _import_without(module, package)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: "), done.stderr
    assert f"'{package}' package, which is not installed" in last
    assert f"pip install 'jamjet-temporal[{extra}]'" in last


def test_the_core_needs_no_extra() -> None:
    """Writing and running governed workflows needs none of the extras' packages."""
    code = (
        "import importlib, sys\n"
        "for name in ('psycopg', 'reportlab', 'starlette', 'uvicorn', 'typer', 'rich', 'mcp',\n"
        "             'a2a', 'opentelemetry'):\n"
        "    sys.modules[name] = None\n"
        "import jamjet_temporal\n"
        "from jamjet_temporal import JamJetPlugin, JamJetConfig, task, workflow, llm, guard\n"
        "from jamjet_temporal.plugin import AuditConfig, MemoryConfig\n"
        "config = JamJetConfig(audit=AuditConfig(store=None), memory=MemoryConfig(store=None))\n"
        "JamJetPlugin(config)\n"
        "from jamjet_temporal import mcp\n"
        "from jamjet_temporal.mcp import McpServer, call_tool, list_tools, read_jamjet_toml\n"
        "JamJetConfig(mcp_servers={'files': {'command': 'npx'}})\n"
        "from jamjet_temporal import a2a\n"
        "from jamjet_temporal.a2a import RemoteAgent, agents_from_mapping, delegate\n"
        "JamJetConfig(a2a_agents={'research': {'url': 'https://agents.example.com'}})\n"
        "from jamjet_temporal.tracing import TracingConfig, run_trace_id\n"
        "JamJetConfig(tracing=TracingConfig())\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.strip() == "ok", done.stderr


def test_a_plugin_with_mcp_servers_names_the_extra() -> None:
    """Configured MCP servers need the mcp SDK: without it the plugin says which extra."""
    code = (
        "import sys\n"
        "sys.modules['mcp'] = None\n"
        "from jamjet_temporal import JamJetPlugin, JamJetConfig\n"
        "from jamjet_temporal.plugin import AuditConfig\n"
        "JamJetPlugin(JamJetConfig(audit=AuditConfig(store=None),\n"
        "    mcp_servers={'files': {'command': 'npx'}}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0
    assert "pip install 'jamjet-temporal[mcp]'" in done.stderr.strip().splitlines()[-1]


def test_a_plugin_with_a2a_delegation_names_the_extra() -> None:
    """Delegation (any a2a_agents, even empty) needs the a2a-sdk: without it the plugin says
    which extra."""
    code = (
        "import sys\n"
        "sys.modules['a2a'] = None\n"
        "from jamjet_temporal import JamJetPlugin, JamJetConfig\n"
        "from jamjet_temporal.plugin import AuditConfig\n"
        "JamJetPlugin(JamJetConfig(audit=AuditConfig(store=None), a2a_agents={}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0
    assert "pip install 'jamjet-temporal[a2a]'" in done.stderr.strip().splitlines()[-1]


def test_a_plugin_with_tracing_names_the_extra() -> None:
    """Tracing needs OpenTelemetry: without it the plugin says which extra."""
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "from jamjet_temporal import JamJetPlugin, JamJetConfig\n"
        "from jamjet_temporal.plugin import AuditConfig, TracingConfig\n"
        "JamJetPlugin(JamJetConfig(audit=AuditConfig(store=None), tracing=TracingConfig()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0
    assert "pip install 'jamjet-temporal[otel]'" in done.stderr.strip().splitlines()[-1]
