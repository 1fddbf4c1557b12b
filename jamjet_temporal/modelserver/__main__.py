"""``python -m jamjet_temporal.modelserver``: serve until SIGTERM/SIGINT.

Prints exactly one line, ``jamjet model server listening on http://HOST:PORT/v1``, once the
server accepts connections, so a parent process can wait for it and read the port.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from jamjet_temporal.modelserver._script import ScriptError
from jamjet_temporal.modelserver._server import ModelServer


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m jamjet_temporal.modelserver",
        description="Local deterministic OpenAI-compatible model server.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument("--script", default=None, help="rules file (.yaml/.yml/.json)")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay before every answer")
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    return parser.parse_args(argv)


async def _serve(server: ModelServer) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:  # Windows event loops
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    await server.start()
    print(f"jamjet model server listening on {server.base_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server from the command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when omitted.

    Returns:
        The process exit code: 0 after a clean shutdown, 2 for a bad script or arguments,
        1 when the address cannot be bound.
    """
    args = _parse_args(argv)
    if args.latency_ms < 0:
        print("error: --latency-ms must be >= 0", file=sys.stderr)
        return 2
    try:
        server = ModelServer(
            host=args.host,
            port=args.port,
            script=args.script,
            latency_ms=args.latency_ms,
            api_key=args.api_key,
        )
    except ScriptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(server))
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
