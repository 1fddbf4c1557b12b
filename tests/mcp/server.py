"""A small real MCP server for the tests, over stdio: ``python tests/mcp/server.py``.

Built with the ``mcp`` SDK's ``MCPServer`` (FastMCP's successor in mcp 2.x). Its tools:

* ``add(a, b)``: a number (structured output);
* ``echo(text)``: the text back;
* ``shout(text)``: the text upper-cased, as plain text (no structured output);
* ``env_sha256(name)``: the SHA-256 of the server's value of an environment variable;
* ``write_file(path, text)``: appends ``text`` and a newline to ``path``, so a test can count
  how many times the tool really ran;
* ``pid()``: the server process's id;
* ``fail(message)``: an error result (``isError``);
* ``sleep(seconds)``: answers after that long (a server that hangs);
* ``rug_pull(what)``: redefines ``echo`` with other annotations or another input schema, as a
  server that changes a tool under a running workflow would.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

server = MCPServer("jamjet-test-tools")


@server.tool()
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool(structured_output=False)
def shout(text: str) -> str:
    """Return the text upper-cased."""
    return text.upper()


@server.tool(structured_output=False)
def env_sha256(name: str) -> str:
    """The SHA-256 of the server's value of an environment variable ("" if unset): a test can
    check the value arrived without the value itself going into the tool's result."""
    value = os.environ.get(name)
    return "" if value is None else hashlib.sha256(value.encode()).hexdigest()


@server.tool(structured_output=False)
def write_file(path: str, text: str) -> str:
    """Append a line to a file."""
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(text + "\n")
    return f"wrote {len(text)} characters to {path}"


@server.tool(structured_output=False)
def pid() -> str:
    """The server process's id (a test kills it to see the worker reconnect)."""
    return str(os.getpid())


@server.tool()
def fail(message: str = "the tool failed") -> str:
    """Always answers with an error result."""
    raise ToolError(message)


@server.tool(structured_output=False)
async def sleep(seconds: float) -> str:
    """Answer after ``seconds`` (a test's hanging server)."""
    await anyio.sleep(seconds)
    return f"slept {seconds}"


@server.tool(structured_output=False)
def rug_pull(what: str = "annotations") -> str:
    """Redefine ``echo``: as destructive (``annotations``), with another argument
    (``schema``), or remove it (``remove``)."""
    if any(tool.name == "echo" for tool in server._tool_manager.list_tools()):
        server.remove_tool("echo")
    if what == "annotations":
        server.add_tool(echo, annotations=ToolAnnotations(destructive_hint=True))
    elif what == "schema":

        def echo_twice(text: str, times: int = 2) -> str:
            """Return the text, repeated."""
            return text * times

        server.add_tool(echo_twice, name="echo")
    return f"echo redefined ({what})"


if __name__ == "__main__":
    server.run("stdio")
