"""A run lists each MCP server's tools once, decides on that list, and its workers refuse a call
whose tool changed since (tool-definition drift); a server that hangs fails at the activity's
timeout, saying so. Against the real test server (tests/mcp/server.py) on the real dev server."""

from __future__ import annotations

import sys
import uuid
from typing import Any

from temporalio.worker import Replayer

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.plugin import AuditConfig
from jamjet_temporal.policy import Policy, Rule
from tests.mcp.helpers import Make, activity_types
from tests.mcp.mcp_workflows import WORKFLOWS, Raw, Steps, Together


def call(tool: str, arguments: dict[str, Any] | None = None, **step: Any) -> dict[str, Any]:
    return {"op": "call", "server": "files", "tool": tool, "arguments": arguments or {}, **step}


async def test_a_run_lists_a_server_once_however_many_calls_it_makes(governed: Make) -> None:
    gov = await governed()
    run_id = "listed-once-" + uuid.uuid4().hex[:8]
    steps = [
        {"op": "list", "server": "files"},
        call("echo", {"text": "a"}),
        call("add", {"a": 1, "b": 2}),
        {"op": "list", "server": "files"},  # from the run's list, not the server
        call("echo", {"text": "b"}),
    ]
    outcomes = await gov.run(Steps.run, steps, id=run_id)
    assert [o["outcome"] for o in outcomes] == ["done"] * 5
    assert outcomes[0]["result"] == outcomes[3]["result"]
    assert activity_types(await gov.history(run_id)) == [
        "jamjet.mcp.list_tools",
        "jamjet.mcp.call_tool",
        "jamjet.mcp.call_tool",
        "jamjet.mcp.call_tool",
    ]

    # Calls made at the same time wait for one listing.
    run_id = "together-" + uuid.uuid4().hex[:8]
    calls = [("echo", {"text": str(i)}) for i in range(4)]
    results = await gov.run(Together.run, "files", calls, id=run_id)
    assert results == [{"result": str(i)} for i in range(4)]
    history = await gov.history(run_id)
    assert activity_types(history) == ["jamjet.mcp.list_tools"] + ["jamjet.mcp.call_tool"] * 4
    # The shared wait for one listing replays exactly (no server needed).
    config = JamJetConfig(audit=AuditConfig(store=gov.url))
    replayer = Replayer(workflows=WORKFLOWS, plugins=[JamJetPlugin(config)])
    assert (await replayer.replay_workflow(history)).replay_failure is None


async def test_a_tool_whose_annotations_changed_since_the_listing_is_refused(
    governed: Make,
) -> None:
    gov = await governed()
    run_id = "drift-" + uuid.uuid4().hex[:8]
    outcomes = await gov.run(
        Steps.run,
        [
            call("echo", {"text": "before"}),
            call("rug_pull", {"what": "annotations"}),  # echo is now marked destructive
            call("echo", {"text": "after"}),
        ],
        id=run_id,
    )
    assert outcomes[0] == {"outcome": "done", "result": {"result": "before"}}
    refused = outcomes[2]
    assert refused["outcome"] == "McpToolDriftError" and refused["retryable"] is False
    assert "MCP tool 'files.echo' refused: its annotations changed" in refused["message"]
    assert "'destructiveHint': True" in refused["message"]
    assert "tool-definition drift" in refused["message"]
    # Recorded as a failed call of the tool, with what the run decided on.
    calls = [e.data for e in await gov.events(run_id) if e.kind == "tool.call"]
    assert [(c["tool"], c["outcome"]) for c in calls] == [
        ("files.echo", "completed"),
        ("files.rug_pull", "completed"),
        ("files.echo", "failed"),
    ]
    assert "annotations changed" in str(calls[2]["error"])

    # A new run lists the server again and uses the tool as it is now.
    assert (await gov.run(Steps.run, [call("echo", {"text": "new run"})]))[0] == {
        "outcome": "done",
        "result": {"result": "new run"},
    }


async def test_a_tool_whose_input_schema_changed_or_that_went_away_is_refused(
    governed: Make,
) -> None:
    gov = await governed()
    outcomes = await gov.run(
        Steps.run,
        [
            call("echo", {"text": "x"}),
            call("rug_pull", {"what": "schema"}),
            call("echo", {"text": "x"}),
        ],
    )
    assert outcomes[2]["outcome"] == "McpToolDriftError"
    assert "its input schema changed" in outcomes[2]["message"]

    gov = await governed()  # a fresh server
    outcomes = await gov.run(
        Steps.run,
        [call("rug_pull", {"what": "remove"}), call("echo", {"text": "x"})],
    )
    assert outcomes[1]["outcome"] == "McpToolDriftError"
    assert "the server does not list it any more" in outcomes[1]["message"]
    # The next run lists no echo; the server brings it back before the call: still refused.
    outcomes = await gov.run(
        Steps.run,
        [call("rug_pull", {"what": "annotations"}), call("echo", {"text": "x"})],
    )
    assert outcomes[1]["outcome"] == "McpToolDriftError"
    assert "the server lists it now, but did not list it" in outcomes[1]["message"]


async def test_rules_decide_on_the_listed_annotations_not_on_what_the_caller_claims(
    governed: Make,
) -> None:
    """The test server's tools say nothing, so they read as destructive (MCP's defaults). A
    caller that puts a read-only listing into its call is overruled by the run's own list."""
    policy = Policy(
        rules=(
            Rule(match="files.*", action="block", when="destructive"),
            Rule(match="*", action="allow"),
        )
    )
    gov = await governed(policy=policy)
    forged = {
        "server": "files",
        "tool": "echo",
        "arguments": {"text": "x"},
        "listed": {
            "found": True,
            "schema_digest": "sha256:0",
            "annotations": {"readOnlyHint": True},
        },
    }
    run_id, cause = await gov.fail(Raw.run, "jamjet.mcp.call_tool", forged)
    assert "ToolDeniedError" in repr(cause)
    decisions = [e.data for e in await gov.events(run_id) if e.kind == "policy.decision"]
    assert [(d["subject"], d["decision"], d["rule"]) for d in decisions] == [
        ("files.echo", "BLOCKED", "files.*")
    ]
    assert decisions[0]["reason"] == "matched block rule 'files.*' when destructive"


async def test_a_call_the_policy_blocks_whatever_the_server_says_starts_no_server(
    governed: Make,
) -> None:
    crash = "import sys; sys.exit('this server must not be started')"
    servers = {"files": {"command": sys.executable, "args": ["-c", crash]}}
    gov = await governed(servers, policy=Policy(blocked_tools=("files.*",)))
    run_id = "unstarted-" + uuid.uuid4().hex[:8]
    outcomes = await gov.run(Steps.run, [call("echo", {"text": "x"})], id=run_id)
    assert outcomes[0]["outcome"] == "ToolDeniedError" and outcomes[0]["rule"] == "files.*"
    assert activity_types(await gov.history(run_id)) == []


async def test_a_server_that_hangs_fails_at_the_activity_timeout_and_says_so(
    governed: Make,
) -> None:
    gov = await governed()
    outcomes = await gov.run(
        Steps.run,
        [
            call("echo", {"text": "warm"}),
            call("sleep", {"seconds": 3600}, timeout=3),
            call("echo", {"text": "still there"}),
        ],
    )
    hung = outcomes[1]
    assert hung["outcome"] == "McpServerError" and hung["retryable"] is True
    assert "MCP server 'files' did not answer in time" in hung["message"]
    assert "call tool 'sleep'" in hung["message"]
    assert "start_to_close_timeout (3 s)" in hung["message"]
    # The stuck connection was dropped: the next call gets a fresh one.
    assert outcomes[2] == {"outcome": "done", "result": {"result": "still there"}}
