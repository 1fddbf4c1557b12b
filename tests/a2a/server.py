"""A small real A2A agent for the tests: ``python -m tests.a2a.server --port P --log FILE``.

Built with the ``a2a-sdk`` server side (``DefaultRequestHandler`` with an ``AgentExecutor``,
the card and JSON-RPC routes in a Starlette app, uvicorn), protocol 1.0. Its skills, chosen by
the message's ``metadata.skill``:

* ``echo``: the input back, as an artifact (a data part for data, a text part for text);
* ``slow``: reports ``working`` with a progress message every 0.25 s for ``--slow-seconds``
  (3 s), then completes with the text ``slow done: INPUT``; honours cancellation;
* ``fail``: the task fails, its status message saying why;
* ``ask``: the task stops in ``input-required``, asking a question;
* ``reject``: the agent rejects the task.

Every message the agent receives is appended to the ``--log`` file as one JSON line
(``message_id``, ``skill``, ``task_id``, ``authorized``), so a test can count the remote tasks
made for one message id. With ``--token-env NAME``, JSON-RPC calls must carry
``Authorization: Bearer <value of NAME>`` (the card stays public), as a real agent's would.
``--no-streaming`` advertises no streaming (the caller then polls ``tasks/get``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

import uvicorn
from a2a.helpers.proto_helpers import (
    get_data_parts,
    get_text_parts,
    new_data_part,
    new_task_from_user_message,
    new_text_part,
)
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Message,
    Role,
    TaskState,
)
from google.protobuf.json_format import MessageToDict
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

SKILLS = ("echo", "slow", "fail", "ask", "reject")


def _message(text: str) -> Message:
    return Message(
        role=Role.ROLE_AGENT, parts=[new_text_part(text)], message_id=os.urandom(8).hex()
    )


class TestAgent(AgentExecutor):
    def __init__(self, log: Path, slow_seconds: float) -> None:
        self._log = log
        self._slow = slow_seconds

    def _record(self, context: RequestContext, skill: str) -> None:
        headers = context.call_context.state.get("headers", {})
        entry = {
            "message_id": context.message.message_id if context.message else None,
            "skill": skill,
            "task_id": context.task_id,
            "authorized": "authorization" in headers,
        }
        with self._log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        assert message is not None
        skill = str(MessageToDict(message.metadata).get("skill"))  # JamJet's convention
        self._record(context, skill)
        task = context.current_task or new_task_from_user_message(message)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        data = get_data_parts(list(message.parts))
        texts = get_text_parts(list(message.parts))
        given: Any = data[0] if data else "\n".join(texts)
        if skill == "echo":
            part = new_data_part(given) if data else new_text_part(str(given))
            await updater.add_artifact([part], name="echo")
            await updater.complete()
        elif skill == "slow":
            await updater.start_work(_message("starting"))
            steps = max(1, round(self._slow / 0.25))
            for step in range(steps):
                await asyncio.sleep(0.25)
                await updater.update_status(
                    TaskState.TASK_STATE_WORKING, _message(f"step {step + 1} of {steps}")
                )
            await updater.add_artifact([new_text_part(f"slow done: {given}")], name="slow")
            await updater.complete()
        elif skill == "fail":
            await updater.failed(_message("the agent could not do it: disk on fire"))
        elif skill == "ask":
            await updater.requires_input(_message("which year do you mean?"))
        elif skill == "reject":
            await updater.reject(_message("not something this agent does"))
        else:
            await updater.failed(_message(f"no skill {skill!r}"))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id is not None and context.context_id is not None
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.cancel(_message("canceled by the caller"))


def card(url: str, streaming: bool) -> AgentCard:
    return AgentCard(
        name="jamjet-test-agent",
        description="Echoes, works slowly, fails, asks and rejects, for the tests.",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=streaming),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/plain", "application/json"],
        skills=[
            AgentSkill(id=skill, name=skill, description=f"the {skill} skill", tags=["test"])
            for skill in SKILLS
        ],
    )


class _RequireToken(BaseHTTPMiddleware):
    def __init__(self, app: Any, token: str) -> None:
        super().__init__(app)
        self._expected = f"Bearer {token}"

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.method == "POST" and request.headers.get("authorization") != self._expected:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return await call_next(request)


def app(port: int, log: Path, *, streaming: bool, slow: float, token: str | None) -> Starlette:
    agent_card = card(f"http://127.0.0.1:{port}/", streaming)
    handler = DefaultRequestHandler(TestAgent(log, slow), InMemoryTaskStore(), agent_card)
    routes = [*create_agent_card_routes(agent_card), *create_jsonrpc_routes(handler, "/")]
    application = Starlette(routes=routes)
    if token is not None:
        application.add_middleware(_RequireToken, token=token)
    return application


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--no-streaming", action="store_true")
    parser.add_argument("--slow-seconds", type=float, default=3.0)
    parser.add_argument("--token-env")
    args = parser.parse_args()
    token = os.environ[args.token_env] if args.token_env else None
    application = app(
        args.port, args.log, streaming=not args.no_streaming, slow=args.slow_seconds, token=token
    )
    uvicorn.run(application, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
