"""The local model server, exercised over real HTTP with the official ``openai`` client.

Tests share one server; each scripts its rules behind a unique ``marker`` so they never see
each other's rules. Tests that need an unshared server start their own.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import openai
import pydantic
import pytest
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
)

import jamjet_temporal.modelserver as modelserver
from jamjet_temporal.modelserver import (
    ModelServer,
    ScriptError,
    ScriptResponse,
    ScriptRule,
    ScriptToolCall,
    ScriptUsage,
    create_app,
)

LISTENING_PREFIX = "jamjet model server listening on http://"


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[ModelServer]:
    async with ModelServer() as srv:
        yield srv


@pytest.fixture(scope="module")
async def oai(server: ModelServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="local", max_retries=0) as c:
        yield c


def _client(srv: ModelServer, api_key: str = "local") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=srv.base_url, api_key=api_key, max_retries=0)


async def _http(method: str, url: str, body: object = None) -> tuple[int, Any]:
    """Call a ``/jamjet`` endpoint with the stdlib (no proxy), returning (status, JSON or text)."""

    def send() -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            url, data=data, method=method, headers={"content-type": "application/json"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    status, raw = await asyncio.to_thread(send)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def _user(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


SEARCH_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}


async def test_default_answer_is_deterministic(oai: openai.AsyncOpenAI) -> None:
    prompt = "Research how Temporal makes AI agents durable across worker crashes."
    first = await oai.chat.completions.create(model="gpt-4o-mini", messages=_user(prompt))
    second = await oai.chat.completions.create(model="gpt-4o-mini", messages=_user(prompt))

    assert first.object == "chat.completion"
    assert first.choices[0].message.content == f"[gpt-4o-mini] {prompt}"
    assert first.choices[0].message.tool_calls is None
    assert first.choices[0].finish_reason == "stop"
    assert first.id.startswith("chatcmpl-")
    assert (first.id, first.created, first.usage) == (second.id, second.created, second.usage)
    assert first.choices[0].message.content == second.choices[0].message.content

    other = await oai.chat.completions.create(model="gpt-4o", messages=_user(prompt))
    assert other.id != first.id
    assert other.choices[0].message.content == f"[gpt-4o] {prompt}"


async def test_default_answer_summarises_long_prompts(oai: openai.AsyncOpenAI) -> None:
    prompt = "Summarise the findings on durable execution. " + "Durable workflows replay. " * 30
    reply = await oai.chat.completions.create(model="gpt-4o-mini", messages=_user(prompt))
    content = reply.choices[0].message.content
    assert content is not None
    assert content.startswith("[gpt-4o-mini] Summarise the findings on durable execution.")
    assert "key terms: durable" in content
    assert len(content) <= len("[gpt-4o-mini] ") + 200


async def test_default_ignores_tools_and_answers_after_tool_results(
    oai: openai.AsyncOpenAI,
) -> None:
    reply = await oai.chat.completions.create(
        model="gpt-4o-mini", messages=_user("Find papers on sagas."), tools=[SEARCH_TOOL]
    )
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].finish_reason == "stop"

    after_tool = await oai.chat.completions.create(
        model="gpt-4o-mini",
        tools=[SEARCH_TOOL],
        messages=[
            *_user("Find papers on sagas."),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "search", "arguments": '{"q": "sagas"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "Sagas (1987), Garcia-Molina."},
        ],
    )
    assert after_tool.choices[0].message.content == (
        "[gpt-4o-mini] Based on the search results: Sagas (1987), Garcia-Molina."
    )


async def test_default_usage_is_computed(oai: openai.AsyncOpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Count the characters in this prompt, roughly."},
    ]
    reply = await oai.chat.completions.create(model="gpt-4o-mini", messages=messages)
    usage = reply.usage
    assert usage is not None
    content = reply.choices[0].message.content or ""
    prompt_chars = sum(len(str(m.get("content"))) for m in messages)
    assert usage.prompt_tokens == math.ceil(prompt_chars / 4)
    assert usage.completion_tokens == math.ceil(len(content) / 4)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0

    with_tools = await oai.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=[SEARCH_TOOL]
    )
    assert with_tools.usage is not None
    assert with_tools.usage.prompt_tokens > usage.prompt_tokens


@pytest.mark.parametrize("limit_param", ["max_tokens", "max_completion_tokens"])
async def test_token_limit_truncates(oai: openai.AsyncOpenAI, limit_param: str) -> None:
    prompt = "Explain event sourcing, deterministic replay and activity retries in depth."
    limits: dict[str, Any] = {limit_param: 3}
    reply = await oai.chat.completions.create(model="gpt-4o-mini", messages=_user(prompt), **limits)
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.content == f"[gpt-4o-mini] {prompt}"[:12]
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 3

    roomy: dict[str, Any] = {limit_param: 1000}
    untouched = await oai.chat.completions.create(
        model="gpt-4o-mini", messages=_user(prompt), **roomy
    )
    assert untouched.choices[0].finish_reason == "stop"


async def test_scripted_tool_calls_parse(server: ModelServer, oai: openai.AsyncOpenAI) -> None:
    server.add_rules(
        [
            ScriptRule(
                id="agent-loop",
                marker="[tool-test]",
                responses=[
                    ScriptResponse(
                        tool_calls=[
                            ScriptToolCall(name="search", arguments={"q": "x", "limit": 3}),
                            ScriptToolCall(name="fetch", arguments='{"url": "https://a.example"}'),
                        ],
                        usage=ScriptUsage(prompt_tokens=120, completion_tokens=40, cached_tokens=7),
                    ),
                    ScriptResponse(content="Found it."),
                ],
            )
        ]
    )
    messages: list[Any] = [*_user("[tool-test] find x")]
    first = await oai.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=[SEARCH_TOOL]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 2
    assert all(isinstance(c, ChatCompletionMessageFunctionToolCall) for c in calls)
    functions = [c.function for c in calls if isinstance(c, ChatCompletionMessageFunctionToolCall)]
    assert [c.id for c in calls] == ["call_agent-loop_0_0", "call_agent-loop_0_1"]
    assert [f.name for f in functions] == ["search", "fetch"]
    assert json.loads(functions[0].arguments) == {"q": "x", "limit": 3}
    assert json.loads(functions[1].arguments) == {"url": "https://a.example"}
    assert first.usage is not None
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (120, 40)
    assert first.usage.total_tokens == 160
    assert first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 7

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": calls[0].id, "content": "x is here"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "page"},
    ]
    second = await oai.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=[SEARCH_TOOL]
    )
    assert second.choices[0].message.content == "Found it."
    assert second.choices[0].finish_reason == "stop"


async def test_responses_in_order_then_last_repeats(
    server: ModelServer, oai: openai.AsyncOpenAI
) -> None:
    server.add_rules(
        [
            ScriptRule(
                marker="[seq-test]",
                responses=[ScriptResponse(content=c) for c in ("one", "two", "three")],
            )
        ]
    )
    answers = [
        (await oai.chat.completions.create(model="gpt-4o-mini", messages=_user("[seq-test] next")))
        .choices[0]
        .message.content
        for _ in range(5)
    ]
    assert answers == ["one", "two", "three", "three", "three"]


async def test_marker_model_and_regex_select_rules(
    server: ModelServer, oai: openai.AsyncOpenAI
) -> None:
    server.add_rules(
        [
            ScriptRule(
                id="iso-a",
                marker="run-A",
                match=r"^Analyze",
                model="gpt-4o",
                responses=[ScriptResponse(content="A")],
            ),
            ScriptRule(id="iso-b", marker="run-B", responses=[ScriptResponse(content="B")]),
        ]
    )

    async def ask(model: str, messages: list[ChatCompletionMessageParam]) -> str | None:
        reply = await oai.chat.completions.create(model=model, messages=messages)
        return reply.choices[0].message.content

    system_a: ChatCompletionMessageParam = {"role": "system", "content": "session run-A"}
    assert await ask("gpt-4o", [system_a, *_user("Analyze this")]) == "A"
    assert await ask("gpt-4o-mini", [system_a, *_user("Analyze this")]) != "A"  # model
    assert await ask("gpt-4o", [system_a, *_user("Please Analyze")]) != "A"  # regex
    assert await ask("gpt-4o", _user("Analyze this")) != "A"  # no marker
    assert await ask("gpt-4o", _user("Analyze this, run-B")) == "B"


async def test_scripted_error_status(server: ModelServer, oai: openai.AsyncOpenAI) -> None:
    server.add_rules(
        [
            ScriptRule(
                marker="[retry-test]",
                responses=[
                    ScriptResponse(status=500),
                    ScriptResponse(status=429, content="slow down"),
                    ScriptResponse(content="recovered"),
                ],
            )
        ]
    )
    messages = _user("[retry-test] go")
    with pytest.raises(openai.InternalServerError) as server_error:
        await oai.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert server_error.value.status_code == 500
    with pytest.raises(openai.RateLimitError, match="slow down"):
        await oai.chat.completions.create(model="gpt-4o-mini", messages=messages)
    reply = await oai.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert reply.choices[0].message.content == "recovered"


class Finding(pydantic.BaseModel):
    claim: str
    confidence: float
    sources: list[str]


class Report(pydantic.BaseModel):
    title: str
    verdict: Literal["supported", "refuted"]
    score: int
    findings: list[Finding]
    notes: str | None


async def test_json_schema_response_format(oai: openai.AsyncOpenAI) -> None:
    parsed = await oai.chat.completions.parse(
        model="gpt-4o-mini",
        messages=_user("Assess: durable execution removes the need for retries."),
        response_format=Report,
    )
    report = parsed.choices[0].message.parsed
    assert isinstance(report, Report)
    assert report.verdict == "supported"
    assert report.title.startswith("Assess: durable execution")
    assert len(report.findings) == 1

    schema: dict[str, object] = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 3},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "ok": {"type": "boolean"},
            "optional": {"type": "string"},
        },
        "required": ["n", "tags", "ok"],
    }
    raw = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=_user("Give numbers."),
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
    )
    value = json.loads(raw.choices[0].message.content or "")
    assert value == {"n": 3, "tags": ["Give numbers.", "Give numbers."], "ok": False}


async def test_json_object_response_format(oai: openai.AsyncOpenAI) -> None:
    reply = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=_user("Reply in JSON please."),
        response_format={"type": "json_object"},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"answer": "Reply in JSON please."}


async def test_calls_endpoint_records_requests() -> None:
    async with ModelServer() as srv, _client(srv) as c:
        srv.add_rules([ScriptRule(id="greet", match="hello", responses=[ScriptResponse()])])
        await c.chat.completions.create(model="gpt-4o", messages=_user("hello there"))
        await c.chat.completions.create(
            model="gpt-4o-mini", messages=_user("bye"), tools=[SEARCH_TOOL]
        )
        status, calls = await _http("GET", f"{srv.url}/jamjet/calls")

    assert status == 200
    assert calls == srv.calls()
    assert [(c["model"], c["rule_id"], c["response_index"]) for c in calls] == [
        ("gpt-4o", "greet", 0),
        ("gpt-4o-mini", None, None),
    ]
    assert calls[0]["messages"] == _user("hello there")
    assert calls[0]["tools"] is None
    assert calls[1]["tools"] == [SEARCH_TOOL]


async def test_script_endpoint_add_and_clear() -> None:
    async with ModelServer() as srv, _client(srv) as c:
        rules = {"rules": [{"id": "http", "match": "ping", "responses": [{"content": "pong"}]}]}
        assert await _http("POST", f"{srv.url}/jamjet/script", rules) == (
            200,
            {"added": 1, "runtime_rules": 1},
        )
        reply = await c.chat.completions.create(model="gpt-4o", messages=_user("ping"))
        assert reply.choices[0].message.content == "pong"

        assert (await _http("DELETE", f"{srv.url}/jamjet/script"))[0] == 200
        assert srv.calls() == []
        reply = await c.chat.completions.create(model="gpt-4o", messages=_user("ping"))
        assert reply.choices[0].message.content == "[gpt-4o] ping"


async def test_runtime_rules_win_over_file_rules(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    rule = {"id": "from-file", "match": "status", "responses": [{"content": "file"}]}
    script.write_text(json.dumps({"rules": [rule]}))
    async with ModelServer(script=script) as srv, _client(srv) as c:

        async def ask() -> str | None:
            reply = await c.chat.completions.create(model="gpt-4o", messages=_user("status?"))
            return reply.choices[0].message.content

        assert await ask() == "file"
        srv.add_rules([ScriptRule(match="status", responses=[ScriptResponse(content="runtime")])])
        assert await ask() == "runtime"
        assert [call["rule_id"] for call in srv.calls()] == ["from-file", "rt0"]


async def test_servers_do_not_share_state() -> None:
    async with ModelServer() as one, ModelServer() as two, _client(one) as c1, _client(two) as c2:
        one.add_rules([ScriptRule(responses=[ScriptResponse(content="only one")])])
        r1 = await c1.chat.completions.create(model="gpt-4o", messages=_user("hi"))
        r2 = await c2.chat.completions.create(model="gpt-4o", messages=_user("hi"))
        assert r1.choices[0].message.content == "only one"
        assert r2.choices[0].message.content == "[gpt-4o] hi"
        assert len(one.calls()) == len(two.calls()) == 1


def test_bad_script_file_names_the_field(tmp_path: Path) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text(
        "rules:\n"
        "  - match: Analyze\n"
        "    responses:\n"
        "      - content: ok\n"
        "      - status: 200\n"
        "  - respones: []\n"
    )
    with pytest.raises(ScriptError) as error:
        ModelServer(script=script)
    message = str(error.value)
    assert str(script) in message
    assert "rules.0.responses.1.status" in message
    assert "rules.1.respones" in message
    assert "rules.1.responses" in message  # missing

    script.write_text("rules:\n  - match: '(unclosed'\n    responses: [{content: x}]\n")
    with pytest.raises(ScriptError, match=r"rules\.0\.match.*invalid regular expression"):
        ModelServer(script=script)

    with pytest.raises(ScriptError, match="cannot read"):
        ModelServer(script=tmp_path / "missing.yaml")
    with pytest.raises(ScriptError, match="invalid regular expression"):
        create_app(script=script)


async def test_bad_script_over_http_names_the_field(server: ModelServer) -> None:
    body: dict[str, Any] = {"rules": [{"responses": [{"tool_calls": [{"arguments": {}}]}]}]}
    status, payload = await _http("POST", f"{server.url}/jamjet/script", body)
    assert status == 400
    assert "rules.0.responses.0.tool_calls.0.name" in payload["error"]["message"]


async def test_stream_is_rejected(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match=r"[Ss]treaming is not supported"):
        await oai.chat.completions.create(model="gpt-4o-mini", messages=_user("hi"), stream=True)


async def test_invalid_request_is_400(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="messages"):
        await oai.chat.completions.create(model="gpt-4o-mini", messages=[])


async def test_models_and_healthz(server: ModelServer, oai: openai.AsyncOpenAI) -> None:
    models = [m.id async for m in oai.models.list()]
    assert models == ["gpt-4o-mini", "gpt-4o", "local-scripted"]
    assert await _http("GET", f"{server.url}/healthz") == (200, "ok")


async def test_api_key_enforced_when_configured() -> None:
    async with ModelServer(api_key="sekret") as srv:
        async with _client(srv, api_key="wrong") as bad:
            with pytest.raises(openai.AuthenticationError):
                await bad.chat.completions.create(model="gpt-4o", messages=_user("hi"))
        async with _client(srv, api_key="sekret") as good:
            reply = await good.chat.completions.create(model="gpt-4o", messages=_user("hi"))
        assert reply.choices[0].message.content == "[gpt-4o] hi"
        assert (await _http("GET", f"{srv.url}/jamjet/calls"))[0] == 401
        assert (await _http("GET", f"{srv.url}/healthz"))[0] == 200


async def test_latency_and_rule_delay() -> None:
    async with ModelServer(latency_ms=300) as srv, _client(srv) as c:
        srv.add_rules(
            [ScriptRule(marker="fast", responses=[ScriptResponse(content="x", delay_ms=0)])]
        )
        started = time.monotonic()
        await c.chat.completions.create(model="gpt-4o", messages=_user("slow"))
        slow = time.monotonic() - started
        started = time.monotonic()
        await c.chat.completions.create(model="gpt-4o", messages=_user("fast"))
        fast = time.monotonic() - started
    assert slow >= 0.3
    assert fast < 0.3


async def test_start_in_thread() -> None:
    srv = ModelServer()
    await asyncio.to_thread(srv.start_in_thread)
    try:
        srv.add_rules([ScriptRule(responses=[ScriptResponse(content="threaded")])])
        async with _client(srv) as c:
            reply = await c.chat.completions.create(model="gpt-4o", messages=_user("hi"))
        assert reply.choices[0].message.content == "threaded"
    finally:
        await asyncio.to_thread(srv.stop_thread)
    with pytest.raises(RuntimeError):
        _ = srv.base_url


async def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "script.yaml"
    script.write_text("rules:\n  - id: cli\n    match: ping\n    responses: [{content: pong}]\n")
    root = Path(modelserver.__file__).parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jamjet_temporal.modelserver",
        "--port",
        "0",
        "--script",
        str(script),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=20)).decode()
        assert line.startswith(LISTENING_PREFIX) and line.endswith("/v1\n"), line
        base_url = line.removeprefix("jamjet model server listening on ").strip()
        async with openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0) as c:
            reply = await c.chat.completions.create(model="gpt-4o", messages=_user("ping"))
        assert reply.choices[0].message.content == "pong"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
        rest, errors = await process.communicate()
        assert rest == b"", rest
        assert errors == b"", errors
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
