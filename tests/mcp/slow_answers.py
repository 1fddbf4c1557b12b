"""A stdio pass-through in front of an MCP server that holds back the answers of some tool calls.

    python tests/mcp/slow_answers.py LOG SECONDS TOOL[,TOOL...] -- COMMAND [ARG...]

Starts COMMAND (the real server) and passes JSON-RPC lines both ways. When a ``tools/call`` of
one of the TOOLs is sent, it writes ``called ID`` to LOG; when the server's answer to it comes
back, it writes ``answered ID`` and waits SECONDS before passing it on. A test kills the worker
in that window: the tool has run, the worker never hears of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import IO


def main() -> None:
    log_path, seconds, tools, separator, *command = sys.argv[1:]
    assert separator == "--", __doc__
    watched = set(tools.split(","))
    delay = float(seconds)
    held: set[object] = set()
    lock = threading.Lock()
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert server.stdin is not None and server.stdout is not None

    def note(line: str) -> None:
        with lock, open(log_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")

    def requests(source: IO[bytes], sink: IO[bytes]) -> None:
        for raw in source:
            try:
                message = json.loads(raw)
            except ValueError:
                message = None
            if (
                isinstance(message, dict)
                and message.get("method") == "tools/call"
                and message.get("params", {}).get("name") in watched
            ):
                held.add(message.get("id"))
                note(f"called {message.get('id')}")
            sink.write(raw)
            sink.flush()
        sink.close()

    def answers(source: IO[bytes], sink: IO[bytes]) -> None:
        for raw in source:
            try:
                message = json.loads(raw)
            except ValueError:
                message = None
            if isinstance(message, dict) and message.get("id") in held and "method" not in message:
                note(f"answered {message.get('id')}")
                time.sleep(delay)
            sink.write(raw)
            sink.flush()

    up = threading.Thread(target=requests, args=(sys.stdin.buffer, server.stdin), daemon=True)
    down = threading.Thread(target=answers, args=(server.stdout, sys.stdout.buffer), daemon=True)
    up.start()
    down.start()
    up.join()  # the client went away (or closed its side): so does the server
    server.wait()


if __name__ == "__main__":
    main()
