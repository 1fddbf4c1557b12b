"""What the MCP tests share: the servers they start, a governed worker's handle, history readers."""

from __future__ import annotations

import base64
import contextlib
import shutil
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.exceptions import ActivityError, ApplicationError

from jamjet_temporal.audit import AuditEvent, open_store
from jamjet_temporal.modelserver import ScriptResponse, ScriptRule, ScriptToolCall

ROOT = Path(__file__).resolve().parent.parent.parent
SERVER = Path(__file__).with_name("server.py")
#: The official filesystem server, installed by `.ci/run` (`npm ci --prefix .ci/node`); the tests
#: never download it.
FILESYSTEM_SERVER = (
    ROOT / ".ci/node/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
)
NODE = shutil.which("node")


def stdio(**settings: Any) -> dict[str, Any]:
    """The test server, started by the worker with this interpreter."""
    return {"command": sys.executable, "args": [str(SERVER)], **settings}


def time_server() -> dict[str, Any]:
    """The official time server (PyPI `mcp-server-time`), with UTC as its local zone."""
    return {
        "command": sys.executable,
        "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
    }


def filesystem_server(folder: Path) -> dict[str, Any]:
    """The official filesystem server (npm), allowed into ``folder`` only."""
    return {"command": NODE or "node", "args": [str(FILESYSTEM_SERVER), str(folder)]}


def _time_server_missing() -> str | None:
    try:
        import mcp_server_time  # noqa: F401
    except ImportError:
        return "mcp-server-time is not installed (pip install -e '.[dev]')"
    return None


def _filesystem_server_missing() -> str | None:
    if NODE is None:
        return "node is not on PATH: the official filesystem MCP server needs it"
    if not FILESYSTEM_SERVER.exists():
        return (
            "@modelcontextprotocol/server-filesystem is not installed in .ci/node "
            "(run: npm ci --prefix .ci/node, as .ci/run does)"
        )
    return None


_TIME_MISSING = _time_server_missing()
_FS_MISSING = _filesystem_server_missing()
needs_time_server = pytest.mark.skipif(_TIME_MISSING is not None, reason=_TIME_MISSING or "")
needs_filesystem_server = pytest.mark.skipif(_FS_MISSING is not None, reason=_FS_MISSING or "")


@dataclass
class Governed:
    """A client whose plugin has MCP servers, a worker on its own queue, and the audit store."""

    client: Client
    queue: str
    url: str

    async def run(self, workflow: Any, *args: Any, id: str | None = None) -> Any:
        return await self.client.execute_workflow(
            workflow,
            args=list(args),
            id=id or f"mcp-{uuid.uuid4().hex[:10]}",
            task_queue=self.queue,
        )

    async def fail(self, workflow: Any, *args: Any) -> tuple[str, BaseException]:
        run_id = f"mcp-{uuid.uuid4().hex[:10]}"
        with pytest.raises(WorkflowFailureError) as failed:
            await self.client.execute_workflow(
                workflow, args=list(args), id=run_id, task_queue=self.queue
            )
        assert failed.value.cause is not None
        return run_id, failed.value.cause

    async def events(self, run_id: str | None = None) -> list[AuditEvent]:
        store = open_store(self.url)
        try:
            return [stored.event for stored in await store.events(run_id)]
        finally:
            await store.close()

    async def history(self, run_id: str) -> WorkflowHistory:
        return await self.client.get_workflow_handle(run_id).fetch_history()


Make = Callable[..., Any]


def activity_types(history: WorkflowHistory) -> list[str]:
    """The activity types a run scheduled, in order (local activities are not in the list)."""
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]


def readable(node: object) -> str:
    """A history's JSON with every payload's base64 ``data`` decoded beside it."""
    parts: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "data" and isinstance(item, str):
                    with contextlib.suppress(ValueError):
                        parts.append(base64.b64decode(item).decode("utf-8", "replace"))
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        else:
            parts.append(str(value))

    walk(node)
    return "\n".join(parts)


def root(cause: BaseException) -> ApplicationError:
    """The ApplicationError at the bottom of a workflow failure."""
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    assert isinstance(cause, ApplicationError), repr(cause)
    return cause


def shelf(tmp_path: Path) -> Path:
    """A folder with two notes, for the filesystem server."""
    folder = tmp_path / "shelf"
    folder.mkdir()
    (folder / "notes.md").write_text("# Notes\nMCP calls are activities.\n")
    (folder / "todo.md").write_text("- write the report\n")
    return folder.resolve()


def shelf_script(marker: str, folder: Path) -> list[ScriptRule]:
    """The model's side of the library agent (tests/mcp/agent_workflows.py): it lists the
    shelf and shouts, reads outside the shelf (an error result), asks for a tool it was not
    offered, reads a note and the time, then answers."""

    def calls(*pairs: tuple[str, dict[str, Any]]) -> ScriptResponse:
        return ScriptResponse(
            tool_calls=[ScriptToolCall(name=name, arguments=args) for name, args in pairs]
        )

    return [
        ScriptRule(
            id=marker,
            marker=marker,
            responses=[
                calls(
                    ("filesystem__list_directory", {"path": str(folder)}),
                    ("shout", {"text": "found it"}),
                ),
                calls(("filesystem__read_text_file", {"path": "/etc/hostname"})),
                calls(
                    (
                        "filesystem__write_file",
                        {"path": str(folder / "x.md"), "content": "x"},
                    )
                ),
                calls(
                    ("filesystem__read_text_file", {"path": str(folder / "notes.md")}),
                    ("time__get_current_time", {"timezone": "UTC"}),
                ),
                ScriptResponse(content="Two notes; MCP calls are activities."),
            ],
        )
    ]
