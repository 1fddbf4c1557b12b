"""``jamjet dev``: the local stack in the foreground (Temporal with its Web UI, model server)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from jamjet_temporal.cli._devserver import DEFAULT_UI_PORT, is_listening
from jamjet_temporal.cli._format import fail, say
from jamjet_temporal.cli._runtime import local_dev_server, stop_on_signals
from jamjet_temporal.errors import DevServerError


def dev(
    port: Annotated[int, typer.Option(help="Temporal frontend port.")] = 7233,
    model_port: Annotated[int, typer.Option(help="Local model server port.")] = 8765,
) -> None:
    """Run the local stack in the foreground: Temporal dev server (with Web UI) + model server."""

    async def serve() -> None:
        from jamjet_temporal.modelserver import ModelServer

        server = None
        if not is_listening(f"127.0.0.1:{port}"):
            server = local_dev_server(port, DEFAULT_UI_PORT)
            try:
                await server.astart()
            except DevServerError as err:
                raise fail(str(err)) from None
        say(f"▸ Temporal on 127.0.0.1:{port} · Web UI http://127.0.0.1:{DEFAULT_UI_PORT}")
        model_server = ModelServer(port=model_port)
        await model_server.start()
        say(f"▸ Local model server: export OPENAI_BASE_URL={model_server.base_url}")
        say("▸ Ctrl-C to stop")
        stop = stop_on_signals()
        try:
            await stop.wait()
        finally:
            await model_server.stop()
            if server is not None:
                await server.astop()

    asyncio.run(serve())
