"""Replay of a recorded MCP run, with no MCP server at all: every listing and call is in history.

``tests/histories/mcp/library.json`` is a run of ``library`` (tests/mcp/agent_workflows.py)
against the official filesystem and time servers: an agent offered MCP tools (listed once,
an error result, a tool it was not offered, a `@task` tool), then a plain ``mcp.call``. It was
recorded with the audit store off and the policy below; a run pins its governance, so it
replays with the same. Record it again (after a deliberate change) with:

    .venv/bin/python -m tests.mcp.test_mcp_replay
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.cli._devserver import DevServer, free_port
from jamjet_temporal.modelserver import ModelServer
from jamjet_temporal.plugin import AuditConfig, LLMConfig
from jamjet_temporal.policy import Policy, parse_policy
from tests.mcp.agent_workflows import library, shout
from tests.mcp.helpers import activity_types, filesystem_server, shelf, shelf_script, time_server

HISTORY = Path(__file__).resolve().parent.parent / "histories" / "mcp" / "library.json"
POLICY = """
rules:
  - {match: "*", when: destructive, action: block}
  - {match: "*", action: allow}
"""


def policy() -> Policy:
    return parse_policy(POLICY, "policy.yaml")


def load() -> WorkflowHistory:
    return WorkflowHistory.from_json(HISTORY.stem, json.loads(HISTORY.read_text()))


async def test_a_recorded_mcp_run_replays_without_any_mcp_server() -> None:
    history = load()
    kinds = activity_types(history)
    assert kinds.count("jamjet.mcp.list_tools") == 2  # the filesystem's and the time server's
    assert kinds.count("jamjet.mcp.call_tool") == 5
    # No server configured, no model reachable: only history.
    config = JamJetConfig(policy=policy(), audit=AuditConfig(store=""))
    replayer = Replayer(workflows=[library], plugins=[JamJetPlugin(config)])
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None


async def test_replay_with_another_policy_is_refused() -> None:
    """The run pinned its governance: a worker deciding with other rules does not replay it."""
    config = JamJetConfig(audit=AuditConfig(store=""))
    replayer = Replayer(workflows=[library], plugins=[JamJetPlugin(config)])
    result = await replayer.replay_workflow(load(), raise_on_replay_failure=False)
    assert result.replay_failure is not None


async def record() -> None:
    """Run ``library`` once against the official servers and save its history."""
    folder = shelf(Path(tempfile.mkdtemp(prefix="jamjet-mcp-")))
    server = DevServer(port=free_port())
    await server.astart()
    try:
        async with ModelServer() as model:
            marker = f"shelf-{uuid.uuid4().hex[:8]}"
            model.add_rules(shelf_script(marker, folder))
            config = JamJetConfig(
                policy=policy(),
                audit=AuditConfig(store=""),
                llm=LLMConfig(base_url=model.base_url),
                mcp_servers={"filesystem": filesystem_server(folder), "time": time_server()},
            )
            client = await Client.connect(server.address, plugins=[JamJetPlugin(config)])
            async with Worker(
                client, task_queue="mcp-record", workflows=[library], activities=[shout]
            ):
                run_id = f"mcp-library-{uuid.uuid4().hex[:6]}"
                await client.execute_workflow(
                    library.run,
                    f"What is on the shelf? [{marker}]",
                    id=run_id,
                    task_queue="mcp-record",
                )
                history = await client.get_workflow_handle(run_id).fetch_history()
        HISTORY.parent.mkdir(parents=True, exist_ok=True)
        HISTORY.write_text(history.to_json())
        print(f"{HISTORY}: {len(history.events)} events")
    finally:
        await server.astop()


if __name__ == "__main__":
    asyncio.run(record())
