"""Model calls that work on both sides of the determinism boundary.

In workflow code, ``await llm.call(...)`` schedules the built-in ``jamjet.llm.chat`` activity
(so the call is durable, retried, and in history). In a task (an activity on a worker with
``JamJetPlugin``) it goes through the same gate as a workflow's call, on the worker: decided
against the run's model allow-lists, projected against its budget, recorded in the audit trail,
its cost charged to the run. In any other code it calls the model directly through the
``openai`` client (endpoint and key from the environment).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta

from pydantic import JsonValue
from temporalio import activity, workflow

from jamjet_temporal._shared._activity import DEFAULT_RETRY_POLICY
from jamjet_temporal._shared._runtime import require_plugin
from jamjet_temporal._shared._wire import CHAT_ACTIVITY
from jamjet_temporal.errors import ConfigError
from jamjet_temporal.llm._types import ChatRequest, ChatResult

__all__ = ["DEFAULT_MODEL", "call", "chat"]

DEFAULT_MODEL = "gpt-4o-mini"
_TIMEOUT = timedelta(seconds=120)


async def chat(request: ChatRequest, *, attempt_timeout: timedelta | None = None) -> ChatResult:
    """Run one chat completion, durably when called from a workflow.

    Args:
        request: Model, messages, tools and limits.
        attempt_timeout: How long one attempt may take from workflow code (its activity's
            start-to-close timeout; 120 s by default). Raise it for slow self-hosted models,
            with ``LLMConfig.timeout`` (each HTTP request) on the workers.

    Returns:
        The answer, tool calls and token usage.

    Raises:
        ConfigError: Called inside an activity that no ``JamJetPlugin`` gate cleared.
    """
    if workflow.in_workflow():
        require_plugin(
            "llm.call()/llm.chat()",
            "the model call is the plugin's activity jamjet.llm.chat, decided by its gate",
        )
        result: ChatResult = await workflow.execute_activity(
            CHAT_ACTIVITY,
            request,
            result_type=ChatResult,
            start_to_close_timeout=attempt_timeout or _TIMEOUT,
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=DEFAULT_RETRY_POLICY,
            summary=f"chat {request.model}",
        )
        return result
    from jamjet_temporal.gate._activities import (
        current_activity_gate,  # I/O side: never imported by workflows
    )
    from jamjet_temporal.llm._activities import complete, make_client

    gate = current_activity_gate()
    if gate is not None:
        return await gate.chat(request)
    if activity.in_activity():
        raise ConfigError(
            "llm.call() in an activity that JamJetPlugin's gate did not clear: its model call "
            "would skip the policy, the budget and the audit trail; run the task on a worker "
            "with JamJetPlugin (or call the model from workflow code)"
        )
    async with make_client(None, attempt_timeout or _TIMEOUT) as client:
        return await complete(client, request)


async def call(
    prompt: str | Mapping[str, JsonValue],
    *,
    model: str = DEFAULT_MODEL,
    system: str | None = None,
    max_tokens: int | None = None,
    attempt_timeout: timedelta | None = None,
) -> str:
    """Ask the model one question and return its text answer.

    Args:
        prompt: The question; a mapping is sent as canonical JSON.
        model: Model id.
        system: Optional system message.
        max_tokens: Optional cap on the answer's tokens.
        attempt_timeout: How long one attempt may take (see :func:`chat`); 120 s by default.

    Returns:
        The answer text ("" when the model answered only with tool calls).
    """
    text = prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)
    messages: list[dict[str, JsonValue]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": text})
    request = ChatRequest(model=model, messages=messages, max_tokens=max_tokens)
    result = await chat(request, attempt_timeout=attempt_timeout)
    return result.content or ""
