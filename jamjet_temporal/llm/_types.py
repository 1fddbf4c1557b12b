"""Payloads of the built-in LLM activity (pure data: they cross into workflow history).

Only what is needed to reproduce a call goes in: model, messages, tool schemas, limits. The
API key and endpoint never do; the worker resolves them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue

__all__ = ["ChatRequest", "ChatResult", "ToolCall", "Usage"]


class ToolCall(BaseModel):
    """A tool call proposed by the model."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: dict[str, JsonValue] = Field(default_factory=dict)


class Usage(BaseModel):
    """Token usage of one model call, as the provider reported it."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0


class ChatRequest(BaseModel):
    """One chat-completion call.

    Attributes:
        model: Model id.
        messages: OpenAI-format messages (role, content, tool_calls, tool_call_id).
        tools: OpenAI-format tool schemas the model may call.
        max_tokens: Upper bound on output tokens.
        temperature: Sampling temperature; None leaves the provider default.
        json_output: Ask for a JSON object answer.
        response_schema: Ask for an answer matching this JSON schema (OpenAI's structured
            output, ``strict``); takes precedence over ``json_output``.
        response_schema_name: The schema's name, as the provider shows it to the model.
    """

    model_config = ConfigDict(frozen=True)

    model: str
    messages: list[dict[str, JsonValue]]
    tools: list[dict[str, JsonValue]] = Field(default_factory=list)
    max_tokens: int | None = None
    temperature: float | None = None
    json_output: bool = False
    response_schema: dict[str, JsonValue] | None = None
    response_schema_name: str = "answer"


class ChatResult(BaseModel):
    """The model's answer to one call, with its token usage."""

    model_config = ConfigDict(frozen=True)

    model: str
    content: str | None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
