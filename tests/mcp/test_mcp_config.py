"""MCP servers as configuration: the model, JamJet's shapes (jamjet.toml, a pipeline's mcp:
block, JamJetConfig), ``${VAR}`` references, and errors that name the file and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import activity

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.errors import ConfigError, ConfigFileError
from jamjet_temporal.mcp import McpCall, McpServer, read_jamjet_toml, servers_from_mapping
from jamjet_temporal.plugin import AuditConfig

# As JamJet's templates write it.
JAMJET_TEMPLATE = """\
[project]
name = "mcp-consumer"

[[mcp_servers]]
name = "filesystem"
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "./workspace"]

[[mcp_servers]]
name = "github"
command = "npx"
args = ["-y", "@modelcontextprotocol/server-github"]
env = { GITHUB_PERSONAL_ACCESS_TOKEN = "${GITHUB_TOKEN}" }
"""

NESTED = """\
[[mcp.servers]]
name = "time"
command = "uvx"
args = ["mcp-server-time"]

[[mcp.servers]]
name = "search"
transport = "streamable_http"
url = "https://mcp.example.com/mcp"
headers = { Authorization = "Bearer ${SEARCH_TOKEN}" }
timeout_seconds = 20
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jamjet.toml"
    path.write_text(text)
    return path


def test_jamjet_toml_mcp_servers_as_jamjets_templates_write_it(tmp_path: Path) -> None:
    servers = read_jamjet_toml(write(tmp_path, JAMJET_TEMPLATE))
    assert list(servers) == ["filesystem", "github"]
    fs = servers["filesystem"]
    assert fs.transport == "stdio" and fs.command == "npx"
    assert fs.args == ["-y", "@modelcontextprotocol/server-filesystem", "./workspace"]
    # Kept as written: filled in only by the worker, when it connects.
    assert servers["github"].env == {"GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_TOKEN}"}
    assert servers["github"].references() == ["GITHUB_TOKEN"]


def test_jamjet_toml_mcp_dot_servers_and_both_shapes_together(tmp_path: Path) -> None:
    servers = read_jamjet_toml(write(tmp_path, NESTED))
    assert servers["time"].transport == "stdio"
    search = servers["search"]
    assert search.transport == "http" and search.url == "https://mcp.example.com/mcp"
    assert search.headers == {"Authorization": "Bearer ${SEARCH_TOKEN}"}
    assert search.timeout_seconds == 20
    both = read_jamjet_toml(write(tmp_path, JAMJET_TEMPLATE + "\n" + NESTED))
    assert list(both) == ["filesystem", "github", "time", "search"]
    assert read_jamjet_toml(write(tmp_path, '[project]\nname = "x"\n')) == {}


@pytest.mark.parametrize(
    ("text", "reason", "line", "fix"),
    [
        (
            '[[mcp_servers]]\nname = "fs"\ncomand = "npx"\n',
            "MCP server 'fs': unknown setting 'comand' (did you mean 'command'?)",
            2,
            "a stdio server has command",
        ),
        (
            '[[mcp_servers]]\ncommand = "npx"\n',
            "mcp_servers[0] has no name",
            None,
            'add name = "files"',
        ),
        (
            '[[mcp_servers]]\nname = "fs"\n\n[[mcp_servers]]\nname = "web"\nurl = "ftp://x"\n',
            "MCP server 'fs': give a command (a stdio server) or a url",
            2,
            "settings:",
        ),
        (
            '[[mcp_servers]]\nname = "a"\ncommand = "x"\n\n[[mcp.servers]]\nname = "a"\n'
            'command = "y"\n',
            "two MCP servers are named 'a'",
            2,
            "give each server its own name",
        ),
        (
            '[[mcp_servers]]\nname = "files.rw"\ncommand = "x"\n',
            "alias 'files.rw' is not 1 to 64 ASCII letters",
            2,
            "rename the server",
        ),
        (
            '[[mcp_servers]]\nname = "x"\ncommand = "x"\nenv = { A = "${B" }\n',
            "without its closing",
            2,
            None,
        ),
        (
            '[[mcp_servers]]\nname = "x"\ncommand = "x"\nargs = ["${1BAD}"]\n',
            "not a variable name",
            2,
            None,
        ),
        (
            '[[mcp_servers]]\nname = "x"\nurl = "http://h/mcp"\nargs = ["a"]\n',
            "an http server takes no args",
            2,
            None,
        ),
        (
            '[[mcp_servers]]\nname = "x"\ntransport = "carrier-pigeon"\ncommand = "x"\n',
            "transport 'carrier-pigeon' is not one of stdio, http",
            2,
            None,
        ),
        ('[[mcp_servers]\nname = "x"\n', "not valid TOML", 1, "fix the TOML syntax"),
        (
            "mcp_servers = 3\n",
            "mcp_servers is a int, not an array of tables",
            None,
            "[[mcp_servers]]",
        ),
    ],
)
def test_a_bad_jamjet_toml_names_the_file_line_and_fix(
    tmp_path: Path, text: str, reason: str, line: int | None, fix: str | None
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as info:
        read_jamjet_toml(path)
    error = info.value
    assert isinstance(error, ConfigError)
    assert error.file == str(path)
    assert reason in error.reason, error.reason
    assert error.line == line
    if fix is not None:
        assert error.fix is not None and fix in error.fix, error.fix
    assert str(path) in str(error)


def test_an_unreadable_jamjet_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as info:
        read_jamjet_toml(tmp_path / "missing" / "jamjet.toml")
    assert "cannot read the file" in str(info.value) and "check the path" in str(info.value)


def test_a_pipelines_mcp_block() -> None:
    block = {
        "servers": {
            "filesystem": {"transport": "stdio", "command": "npx", "args": ["-y", "fs", "."]},
            "github": {"transport": "http_sse", "url": "https://gh/mcp"},
            "time": {"command": "uvx", "args": ["mcp-server-time"], "cwd": "/tmp"},
            "web": {"url": "${WEB_URL}", "headers": {"X-Key": "${WEB_KEY}"}},
        }
    }
    servers = servers_from_mapping(block, "pipeline.yaml")
    assert [s.transport for s in servers.values()] == ["stdio", "http", "stdio", "http"]
    assert servers["web"].references() == ["WEB_URL", "WEB_KEY"]
    assert servers_from_mapping(None, "pipeline.yaml") == {}
    assert servers_from_mapping({"servers": {}}, "pipeline.yaml") == {}


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        ({"servers": {"fs": {"transport": "stdio"}}}, "a stdio server needs a command"),
        ({"servers": {"fs": {"command": "x", "url": "http://h"}}}, "takes no url"),
        ({"servers": ["fs"]}, "mcp.servers is a list"),
        ({"fs": {"command": "x"}}, "unknown keys: fs"),
        ({"servers": {"fs": "npx"}}, "is a str, not a table"),
        ({"servers": {"fs": {"command": "x", "timeout_seconds": 0}}}, "must be positive"),
        ("npx", "the mcp block is a str"),
    ],
)
def test_a_bad_mcp_block_names_the_file_and_fix(block: object, reason: str) -> None:
    with pytest.raises(ConfigFileError) as info:
        servers_from_mapping(block, "pipeline.yaml")
    assert info.value.file == "pipeline.yaml"
    assert reason in info.value.reason
    assert info.value.fix


def test_variables_are_filled_from_the_environment_given_and_missing_ones_named() -> None:
    server = McpServer(
        command="${BIN}/server",
        args=["--token=${TOKEN}", "$$HOME"],
        env={"A": "${TOKEN}"},
        cwd="${HOME_DIR}",
    )
    filled = server.resolved({"BIN": "/opt", "TOKEN": "t0k", "HOME_DIR": "/w"}, alias="files")
    assert filled.command == "/opt/server"
    assert filled.args == ["--token=t0k", "$HOME"]
    assert filled.env == {"A": "t0k"} and filled.cwd == "/w"
    assert server.env == {"A": "${TOKEN}"}, "the configured server is unchanged"
    with pytest.raises(ConfigError) as info:
        server.resolved({"BIN": "/opt"}, alias="files")
    assert "MCP server 'files': args[0] uses ${TOKEN}, but TOKEN is not set" in str(info.value)
    http = McpServer(url="https://h/mcp", headers={"Authorization": "Bearer ${TOKEN}"})
    assert http.resolved({"TOKEN": "t"}).headers == {"Authorization": "Bearer t"}


def test_jamjet_config_takes_models_or_plain_dicts_and_validates_them() -> None:
    config = JamJetConfig(
        mcp_servers={"files": {"command": "npx"}, "web": McpServer(url="http://h/mcp")}
    )
    assert config.mcp_servers == {
        "files": McpServer(transport="stdio", command="npx"),
        "web": McpServer(transport="http", url="http://h/mcp"),
    }
    with pytest.raises(ConfigError, match=r"JamJetConfig\.mcp_servers: .*'a\.b'"):
        JamJetConfig(mcp_servers={"a.b": {"command": "npx"}})
    with pytest.raises(ConfigError, match="needs a command"):
        JamJetConfig(mcp_servers={"files": {"transport": "stdio"}})


def test_the_plugin_registers_the_mcp_activities_only_with_servers() -> None:
    def names(plugin: JamJetPlugin) -> set[str]:
        assert callable(plugin.activities)
        found = set()
        for fn in plugin.activities(None):
            defn = activity._Definition.from_callable(fn)
            if defn is not None and defn.name is not None:
                found.add(defn.name)
        return found

    off = AuditConfig(store=None)
    assert not names(JamJetPlugin(JamJetConfig(audit=off))) & {
        "jamjet.mcp.call_tool",
        "jamjet.mcp.list_tools",
    }
    on = JamJetPlugin(JamJetConfig(audit=off, mcp_servers={"files": {"command": "npx"}}))
    assert {"jamjet.mcp.call_tool", "jamjet.mcp.list_tools"} <= names(on)
    assert on.run_context is not None


def test_an_mcp_call_is_the_tool_alias_dot_tool() -> None:
    call = McpCall(server="files", tool="write_file", arguments={"path": "a"})
    assert call.subject == "files.write_file"
    assert McpCall.model_validate(call.model_dump(mode="json")) == call


def test_a_tool_result_as_a_json_value() -> None:
    from mcp.types import CallToolResult, ImageContent, TextContent

    from jamjet_temporal.mcp._activities import tool_value

    def text(value: str) -> TextContent:
        return TextContent(type="text", text=value)

    image = ImageContent(type="image", data="aGk=", mime_type="image/png")
    assert tool_value(CallToolResult(content=[text("x")], structured_content={"a": 1})) == {"a": 1}
    assert tool_value(CallToolResult(content=[text('{"a": 1}')])) == '{"a": 1}'
    assert tool_value(CallToolResult(content=[])) is None
    assert tool_value(CallToolResult(content=[text("a"), text("b")])) == ["a", "b"]
    assert tool_value(CallToolResult(content=[text("a"), image])) == [
        "a",
        {"type": "image", "data": "aGk=", "mimeType": "image/png"},
    ]
