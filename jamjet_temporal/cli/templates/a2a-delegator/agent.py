"""A tiny local A2A agent for this project: ``python agent.py`` serves it on 127.0.0.1:7700.

Built with the ``a2a-sdk`` server side (protocol 1.0, JSON-RPC): its card is at
``/.well-known/agent-card.json`` and it has one skill, ``summarize``, which answers without any
model: the first sentence of the text it is sent, and how long the text was. Replace it with
any A2A agent (another team's, another framework's) by changing the URL in workflow.yaml.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

import uvicorn
from a2a.helpers.proto_helpers import (
    get_data_parts,
    get_text_parts,
    new_task_from_user_message,
    new_text_part,
)
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, AgentSkill
from starlette.applications import Starlette


def summarize(given: Any) -> str:
    """The first sentence of the text and its length in words."""
    if isinstance(given, dict):
        task = str(given.get("message", ""))
        text = str(given.get("text", ""))
    else:
        task, text = "", str(given)
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    words = len(text.split())
    return f"{task + ': ' if task else ''}{first} ({words} words summarised)"


class Summarizer(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        assert message is not None
        task = context.current_task or new_task_from_user_message(message)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        data = get_data_parts(list(message.parts))
        given: Any = data[0] if data else "\n".join(get_text_parts(list(message.parts)))
        await updater.add_artifact([new_text_part(summarize(given))], name="summary")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id is not None and context.context_id is not None
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def app(port: int) -> Starlette:
    card = AgentCard(
        name="summarizer",
        description="Summarises the text it is sent (offline, no model).",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(
                url=f"http://127.0.0.1:{port}/", protocol_binding="JSONRPC", protocol_version="1.0"
            )
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id="summarize",
                name="Summarizer",
                description="Summarizes provided text",
                tags=["summary"],
            )
        ],
    )
    handler = DefaultRequestHandler(Summarizer(), InMemoryTaskStore(), card)
    return Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/")])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=7700)
    port = parser.parse_args().port
    uvicorn.run(app(port), host="127.0.0.1", port=port, log_level="warning")
