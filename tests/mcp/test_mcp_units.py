"""The pure parts of MCP tools: annotations read as conditions, agent tool sets, names, the
run's list of a server as the gate uses it. No server, no Temporal."""

from __future__ import annotations

import pytest

from jamjet_temporal import agent, mcp, task
from jamjet_temporal.authoring._task import task_definition
from jamjet_temporal.errors import ConfigError
from jamjet_temporal.mcp import McpCall, McpListed, McpToolInfo, McpTools, mcp_tools
from jamjet_temporal.mcp._types import conditions_of, split_subject
from jamjet_temporal.mcp._workflow import ToolCatalog, blocked_whatever, decide_call, model_name
from jamjet_temporal.policy import Policy, PolicyScopes, parse_policy


@pytest.mark.parametrize(
    ("annotations", "holds"),
    [
        (None, {"destructive", "open_world"}),  # MCP's defaults: the careful reading
        ({}, {"destructive", "open_world"}),
        ({"readOnlyHint": True, "openWorldHint": False}, {"read_only"}),
        (  # the filesystem server's write_file
            {
                "readOnlyHint": False,
                "destructiveHint": True,
                "idempotentHint": True,
                "openWorldHint": False,
            },
            {"destructive", "idempotent"},
        ),
        ({"destructiveHint": False}, {"open_world"}),
        ({"readOnlyHint": True, "destructiveHint": True}, {"read_only", "open_world"}),
        ({"readOnlyHint": "yes", "destructiveHint": 0}, {"destructive", "open_world"}),
    ],
)
def test_annotations_read_with_the_specifications_defaults(
    annotations: dict[str, object] | None, holds: set[str]
) -> None:
    assert conditions_of(annotations) == frozenset(holds)  # type: ignore[arg-type]


def test_mcp_tools_names_the_allow_list_and_checks_its_names() -> None:
    some = mcp_tools("files", only=["read_text_file", "list_directory"], start_to_close_timeout=5)
    assert some.globs == ("files.read_text_file", "files.list_directory")
    assert some.options == {"start_to_close_timeout": 5}
    assert mcp_tools("files").globs == ("files.*",)
    with pytest.raises(ConfigError, match="give a list of tool names"):
        mcp_tools("files", only="read_text_file")
    with pytest.raises(ConfigError, match=r"MCP server alias 'my\.files'"):
        mcp_tools("my.files")
    with pytest.raises(ConfigError, match="MCP tool name 'wrіte'"):
        mcp_tools("files", only=["wrіte"])  # Cyrillic і


def test_a_tool_set_picks_listed_tools_and_names_what_is_missing() -> None:
    listed = [McpToolInfo(name=name) for name in ("read", "write", "bad name")]
    assert [t.name for t in McpTools("files", ("write", "read")).pick(listed)] == [
        "write",
        "read",
    ]
    assert [t.name for t in McpTools("files").pick(listed)] == ["read", "write"]
    with pytest.raises(LookupError) as info:
        McpTools("files", ("read", "delete")).pick(listed)
    assert "lists no tool 'delete' (it lists: bad name, read, write)" in str(info.value)


def test_model_facing_names_are_what_model_apis_accept() -> None:
    assert model_name("filesystem", "read_text_file") == "filesystem__read_text_file"
    assert model_name("gh", "repos.list") == "gh__repos_list"
    long = model_name("a" * 40, "b" * 40)
    assert len(long) == 64 and long != model_name("a" * 40, "b" * 39 + "c")


def test_the_policy_name_splits_at_the_first_dot() -> None:
    assert split_subject("time.get_current_time") == ("time", "get_current_time")
    assert split_subject("gh.repos.list") == ("gh", "repos.list")
    for bad in ("time", ".x", "time."):
        with pytest.raises(ValueError, match=r"is not ALIAS\.TOOL"):
            split_subject(bad)


async def test_workflow_calls_outside_a_workflow_say_where_they_belong() -> None:
    with pytest.raises(ConfigError, match=r"mcp\.call\(\) is for workflow code"):
        await mcp.call("time.get_current_time", {"timezone": "UTC"})


def test_an_agent_task_takes_mcp_tool_sets_beside_task_tools() -> None:
    @task
    async def search(query: str) -> str:
        return query

    files = mcp_tools("files", only=["read_text_file"])

    @task(tools=[search, files])
    async def assistant(q: str) -> agent.AgentResult:
        return await agent.run(q)

    defn = task_definition(assistant)
    assert defn is not None and defn.tools == (search, files)


async def test_an_agent_outside_a_workflow_cannot_offer_mcp_tools() -> None:
    with pytest.raises(ConfigError, match="run the agent in a workflow"):
        await agent.run("hi", tools=[mcp_tools("files")])


def scopes(text: str) -> PolicyScopes:
    return PolicyScopes(scopes=(("run", parse_policy(text, "p.yaml")),))


def test_what_is_blocked_whatever_the_server_says_needs_no_listing() -> None:
    glob = PolicyScopes(scopes=(("run", Policy(blocked_tools=("files.*",))),))
    assert blocked_whatever(glob, "files.echo")
    assert not blocked_whatever(glob, "time.now")
    ruled = scopes('rules: [{match: "files.*", action: block}, {match: "*", action: allow}]')
    assert blocked_whatever(ruled, "files.echo") and not blocked_whatever(ruled, "time.now")
    # A `when:` rule could let it through for some annotations: it must be listed first.
    conditioned = scopes('rules: [{match: "*", when: read_only, action: allow}]')
    assert not blocked_whatever(conditioned, "files.echo")
    catalog = ToolCatalog()
    assert catalog.needs_listing(McpCall(server="files", tool="echo"), conditioned)
    assert not catalog.needs_listing(McpCall(server="files", tool="ｅcho"), conditioned)


def test_a_call_is_decided_on_the_listed_annotations() -> None:
    policy = scopes(
        'rules: [{match: "*", when: destructive, action: block}, {match: "*", action: allow}]'
    )
    reader = McpListed(found=True, schema_digest="sha256:0", annotations={"readOnlyHint": True})
    call = McpCall(server="files", tool="read", listed=reader)
    assert decide_call(policy, call).decision == "ALLOWED"
    # Unlisted, or not listed by its server: read as MCP reads a tool that says nothing.
    assert decide_call(policy, call.model_copy(update={"listed": None})).decision == "BLOCKED"
    unknown = McpListed(found=False)
    assert decide_call(policy, call.model_copy(update={"listed": unknown})).decision == "BLOCKED"


def test_the_catalog_stamps_calls_with_the_runs_listing_only() -> None:
    catalog = ToolCatalog()
    forged = McpListed(found=True, schema_digest="sha256:x", annotations={"readOnlyHint": True})
    call = McpCall(server="files", tool="echo", listed=forged)
    assert catalog.stamp(call).listed is None  # not listed: what the caller said is dropped
    info = McpToolInfo(name="echo", input_schema={"type": "object"})
    catalog._lists["files"] = [info]
    assert catalog.stamp(call).listed == info.listed()
    assert catalog.stamp(McpCall(server="files", tool="gone")).listed == McpListed(found=False)
