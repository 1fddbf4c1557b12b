"""Helpers for the serving tests: an A2AServer in this process (uvicorn on 127.0.0.1, a worker
for its workflows), a served agent in its own process (``jamjet a2a serve``), a plain a2a-sdk
client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from a2a.client import A2ACardResolver, ClientConfig, create_client
from a2a.client import Client as A2AClient
from a2a.types.a2a_pb2 import AgentCard, Message, Part, Role, SendMessageRequest, StreamResponse
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Value
from temporalio.client import Client
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.a2a import A2AServer
from jamjet_temporal.audit import AuditEvent, open_store
from jamjet_temporal.cli._devserver import free_port
from jamjet_temporal.plugin import AuditConfig
from tests.a2a.served_workflows import crunch, shout

ROOT = Path(__file__).resolve().parents[2]
TASKS = [shout, crunch]


@dataclass
class Served:
    """An agent served in this process."""

    url: str
    server: A2AServer
    client: Client
    queue: str
    audit: str

    async def events(self, run_id: str | None = None) -> list[AuditEvent]:
        return await audit_events(self.audit, run_id)


async def audit_events(url: str, run_id: str | None = None) -> list[AuditEvent]:
    store = open_store(url)
    try:
        return [stored.event for stored in await store.events(run_id)]
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def serving(
    address: str,
    skills: Sequence[object],
    workflows: Sequence[type],
    folder: Path,
    *,
    config: JamJetConfig | None = None,
    **options: Any,
) -> AsyncIterator[Served]:
    """An A2AServer on a free port of 127.0.0.1 and a worker for its workflows."""
    audit = f"sqlite:///{folder / f'callee-{uuid.uuid4().hex[:6]}.db'}"
    config = config or JamJetConfig(audit=AuditConfig(store=audit))
    audit = config.audit.store or audit
    client = await Client.connect(address, plugins=[JamJetPlugin(config, tasks=TASKS)])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    queue = f"served-{uuid.uuid4().hex[:8]}"
    server = A2AServer(client, skills, url=url, task_queue=queue, audit_store=audit, **options)
    web = uvicorn.Server(
        uvicorn.Config(server.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    async with Worker(client, task_queue=queue, workflows=list(workflows)):
        serving_task = asyncio.create_task(web.serve())
        try:
            while not web.started:
                assert not serving_task.done(), "the A2A server did not start"
                await asyncio.sleep(0.02)
            yield Served(url, server, client, queue, audit)
        finally:
            web.should_exit = True
            await serving_task
            await server.close()


def serve_process(
    address: str,
    target: str,
    port: int,
    *args: str,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """``jamjet a2a serve TARGET`` in its own process, once its card answers."""
    command = [
        sys.executable,
        "-m",
        "jamjet_temporal",
        "a2a",
        "serve",
        target,
        "--port",
        str(port),
        "--address",
        address,
        *args,
    ]
    output = log.open("ab") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=output, stderr=output
    )
    url = f"http://127.0.0.1:{port}/.well-known/agent-card.json"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            detail = log.read_text() if log is not None and log.exists() else ""
            raise RuntimeError(f"jamjet a2a serve did not start (exit {process.poll()}) {detail}")
        time.sleep(0.1)


def message(value: Any, skill: str | None = None, message_id: str | None = None) -> Message:
    """A user message: text for a string, one data part otherwise."""
    if isinstance(value, str):
        part = Part(text=value)
    else:
        part = Part(data=json_format.ParseDict(value, Value()))
    sent = Message(message_id=message_id or uuid.uuid4().hex, role=Role.ROLE_USER, parts=[part])
    if skill is not None:
        sent.metadata.update({"skill": skill})
    return sent


@contextlib.asynccontextmanager
async def plain_client(
    url: str, *, streaming: bool, headers: dict[str, str] | None = None
) -> AsyncIterator[A2AClient]:
    """The a2a-sdk's own client, as any A2A caller would use it."""
    async with httpx.AsyncClient(headers=headers or {}, timeout=30) as http:
        yield await create_client(
            url, client_config=ClientConfig(streaming=streaming, httpx_client=http)
        )


async def send(client: A2AClient, request: SendMessageRequest) -> list[StreamResponse]:
    """Every event a send answers with."""
    return [event async for event in client.send_message(request)]


async def card_of(url: str) -> AgentCard:
    """The agent's card, as a2a-sdk reads it."""
    async with httpx.AsyncClient(timeout=10) as http:
        return await A2ACardResolver(http, url).get_agent_card()
