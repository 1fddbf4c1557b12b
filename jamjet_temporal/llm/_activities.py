"""The built-in LLM activity: chat completions through the official ``openai`` client.

Runs on the worker. The endpoint and key are resolved here, from the plugin config and the
worker's environment, never from activity arguments, so no credential reaches history.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any, cast

import openai
from openai import omit
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)
from temporalio import activity
from temporalio.exceptions import ApplicationError

from jamjet_temporal._shared._activity import auto_heartbeat
from jamjet_temporal._shared._observe import observer
from jamjet_temporal._shared._wire import CHAT_ACTIVITY
from jamjet_temporal.llm._types import ChatRequest, ChatResult, ToolCall, Usage

#: Client errors that a retry cannot fix.
_FINAL_STATUSES = frozenset({400, 401, 403, 404, 413, 422})


class LLMActivities:
    """Holds one lazily created ``AsyncOpenAI`` client per plugin instance.

    Args:
        base_url: The OpenAI-compatible endpoint; None: ``OPENAI_BASE_URL``, else OpenAI.
        timeout: Timeout of one HTTP request to the model.
    """

    def __init__(self, base_url: str | None, timeout: timedelta) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._client: openai.AsyncOpenAI | None = None

    @activity.defn(name=CHAT_ACTIVITY)
    async def chat(self, request: ChatRequest) -> ChatResult:
        """Run one chat completion and return the answer with its token usage."""
        async with auto_heartbeat():
            return await self.complete(request)

    async def complete(self, request: ChatRequest) -> ChatResult:
        """One chat completion on this plugin's model endpoint (the client made on first use).

        Also what a task's own model calls go through, once the gate has cleared them.
        """
        if self._client is None:
            self._client = make_client(self._base_url, self._timeout)
        client = self._client
        watch = observer()  # tracing: a `chat {model}` span around the call (None when off)
        if watch is None:
            return await complete(client, request)
        return await watch.chat(request, lambda: complete(client, request), str(client.base_url))


def make_client(base_url: str | None, timeout: timedelta) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` client for ``base_url`` (or ``OPENAI_BASE_URL``), key from the env.

    Raises:
        ApplicationError: (non-retryable, type ``ConfigError``) no endpoint is configured.
    """
    base_url = base_url or os.environ.get("OPENAI_BASE_URL")
    api_key = os.environ.get("OPENAI_API_KEY")
    if not api_key:
        if not base_url:
            raise ApplicationError(
                "no model endpoint: set OPENAI_API_KEY for OpenAI, or OPENAI_BASE_URL "
                "for an OpenAI-compatible server (run 'jamjet dev' for the local one)",
                type="ConfigError",
                non_retryable=True,
            )
        api_key = "local"  # the local and most self-hosted servers accept any key
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        # Temporal retries the activity with backoff; a second retry layer inside it would
        # hide failures from history and multiply the wait.
        max_retries=0,
        timeout=timeout.total_seconds(),
    )


def _response_format(request: ChatRequest) -> Any:
    if request.response_schema is not None:
        return {
            "type": "json_schema",
            "json_schema": {
                "name": request.response_schema_name,
                "schema": request.response_schema,
                "strict": True,
            },
        }
    return {"type": "json_object"} if request.json_output else omit


async def complete(client: openai.AsyncOpenAI, request: ChatRequest) -> ChatResult:
    """One chat completion; client errors a retry cannot fix become non-retryable."""
    try:
        completion: ChatCompletion = await client.chat.completions.create(
            model=request.model,
            messages=cast("list[ChatCompletionMessageParam]", request.messages),
            tools=cast("list[ChatCompletionToolParam]", request.tools) if request.tools else omit,
            max_tokens=request.max_tokens if request.max_tokens is not None else omit,
            temperature=request.temperature if request.temperature is not None else omit,
            response_format=_response_format(request),
        )
    except openai.APIStatusError as err:
        if err.status_code in _FINAL_STATUSES:
            raise ApplicationError(
                f"model request refused by {client.base_url} ({err.status_code}): {err.message}",
                type="LLMRequestError",
                non_retryable=True,
            ) from err
        # Retried by Temporal. Said without the HTTP library's exception chain: the failure
        # must name the endpoint and fit in history (a long chain exceeds its size limit).
        raise ApplicationError(
            f"model endpoint {client.base_url} answered {err.status_code}: {err.message} "
            "(retrying)",
            type="LLMUnavailableError",
        ) from None
    except openai.APITimeoutError:
        raise ApplicationError(
            f"model endpoint {client.base_url} did not answer within {client.timeout}s "
            "(retrying; JamJetConfig(llm=LLMConfig(timeout=...)) sets the limit)",
            type="LLMUnavailableError",
        ) from None
    except openai.APIConnectionError as err:
        why = err.__cause__ or err
        raise ApplicationError(
            f"model endpoint {client.base_url} cannot be reached ({type(why).__name__}: "
            f"{why}); start it ('jamjet dev' runs the local one) or point OPENAI_BASE_URL "
            "at yours; the step is retried until it answers",
            type="LLMUnavailableError",
        ) from None
    return _to_result(completion)


def _to_result(completion: ChatCompletion) -> ChatResult:
    choice = completion.choices[0]
    calls: list[ToolCall] = []
    for call in choice.message.tool_calls or []:
        if call.type != "function":
            continue
        try:
            args = json.loads(call.function.arguments or "{}")
        except json.JSONDecodeError as err:
            raise ApplicationError(
                f"model returned malformed JSON arguments for tool '{call.function.name}': {err}",
                type="LLMResponseError",
            ) from err
        calls.append(ToolCall(id=call.id, name=call.function.name, arguments=args))
    usage = completion.usage
    return ChatResult(
        model=completion.model,
        content=choice.message.content,
        tool_calls=calls,
        finish_reason=choice.finish_reason,
        usage=Usage(
            input_tokens=usage.prompt_tokens if usage else 0,
            cached_input_tokens=(
                (usage.prompt_tokens_details.cached_tokens or 0)
                if usage and usage.prompt_tokens_details
                else 0
            ),
            output_tokens=usage.completion_tokens if usage else 0,
            reasoning_tokens=(
                (usage.completion_tokens_details.reasoning_tokens or 0)
                if usage and usage.completion_tokens_details
                else 0
            ),
        ),
    )
