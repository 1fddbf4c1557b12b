"""Request handling independent of HTTP: rule matching, default answers, completion payloads.

Everything here is a pure function of the request and the engine's rule/counter state; no
clock and no randomness feed the content, ids or ``created`` of a response.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jamjet_temporal.modelserver._script import Script, ScriptResponse, ScriptRule

__all__ = ["ChatRequest", "Reply", "ScriptEngine", "error_body"]

# Fixed base for ``created`` so values look like plausible Unix timestamps (late 2023 on).
_CREATED_BASE = 1_700_000_000
_CREATED_SPAN = 31_536_000
_GIST_LIMIT = 200
# Bounds the call log of a long-running demo server; tests look at far fewer calls.
_MAX_RECORDED_CALLS = 10_000
_LEAD_LIMIT = 140
# Guards against self-referencing ``$ref`` cycles in response_format schemas.
_MAX_SCHEMA_DEPTH = 16

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]{3,}")
_STOPWORDS = frozenset(
    """
    about above after again against also among because been before being below between both
    could does doing down during each either every from further have having here hers herself
    himself into itself just more most much must myself nor only other ours ourselves over own
    please same shall should some such than that their theirs them themselves then there these
    they this those through under until upon very want were what when where which while whom
    whose will with within without would your yours yourself yourselves give make provide using
    """.split()
)


class ChatRequest(BaseModel):
    """The fields of a chat-completions request the server looks at; others are accepted."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    stream: bool | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    response_format: dict[str, Any] | None = None


@dataclass(frozen=True)
class Reply:
    """What to send back: HTTP status, JSON body and the latency to apply first."""

    status: int
    body: dict[str, Any]
    delay_ms: int


@dataclass
class _Slot:
    rule: ScriptRule
    label: str
    hits: int = 0


def error_body(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """Build an OpenAI-style error body.

    Args:
        status: The HTTP status the body is sent with; picks the error ``type``.
        message: Human-readable explanation.
        param: The request parameter at fault, if any.
        code: Machine-readable error code; a status-specific default when omitted.

    Returns:
        ``{"error": {"message", "type", "param", "code"}}``.
    """
    if status >= 500:
        kind, default_code = "server_error", None
    elif status == 429:
        kind, default_code = "rate_limit_error", "rate_limit_exceeded"
    elif status == 403:
        kind, default_code = "permission_error", None
    elif status == 401:
        kind, default_code = "invalid_request_error", "invalid_api_key"
    else:
        kind, default_code = "invalid_request_error", None
    return {
        "error": {
            "message": message,
            "type": kind,
            "param": param,
            "code": code if code is not None else default_code,
        }
    }


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        return "\n".join(parts)
    return ""


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _prompt_chars(request: ChatRequest) -> int:
    total = 0
    for message in request.messages:
        total += len(_content_text(message.get("content")))
        if message.get("tool_calls"):
            total += len(_canonical(message["tool_calls"]))
    if request.tools:
        total += len(_canonical(request.tools))
    return total


def _lead(text: str, limit: int) -> tuple[str, bool]:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat, False
    cut = flat[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…", True


def _key_terms(text: str, count: int = 3) -> list[str]:
    frequency: dict[str, int] = {}
    for found in _WORD.finditer(text):
        word = found.group().lower().strip("'-")
        if len(word) >= 4 and word not in _STOPWORDS:
            frequency[word] = frequency.get(word, 0) + 1
    # Most frequent, then longest (more specific); dicts keep first-occurrence order and
    # sorted() is stable, so remaining ties stay deterministic.
    ranked = sorted(frequency.items(), key=lambda item: (-item[1], -len(item[0])))
    return [word for word, _ in ranked[:count]]


def gist(text: str) -> str:
    """Summarise ``text`` deterministically in at most 200 characters.

    Short text is echoed (whitespace collapsed); long text is cut at a word boundary and
    followed by its key terms (most frequent, then longest, words).

    Args:
        text: The text to summarise.

    Returns:
        The gist.
    """
    lead, truncated = _lead(text, _LEAD_LIMIT)
    if not lead:
        return "(empty prompt)"
    if truncated:
        terms = _key_terms(text)
        with_terms = f"{lead} (key terms: {', '.join(terms)})"
        if terms and len(with_terms) <= _GIST_LIMIT:
            return with_terms
    return lead


def _tool_names(messages: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            if not isinstance(call, dict):
                continue
            function = call.get("function")
            if isinstance(call.get("id"), str) and isinstance(function, dict):
                names[call["id"]] = str(function.get("name", "tool"))
    return names


def _default_gist(messages: Sequence[Mapping[str, Any]]) -> str:
    if messages[-1].get("role") != "tool":
        return gist(_last_user_text(messages) or _content_text(messages[-1].get("content")))
    # After tool results the default answer reads as a final answer built on them.
    results: list[Mapping[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.append(message)
    results.reverse()
    names_by_id = _tool_names(messages)
    names: list[str] = []
    for result in results:
        name = names_by_id.get(str(result.get("tool_call_id")), "tool")
        if name not in names:
            names.append(name)
    text = "\n".join(_content_text(result.get("content")) for result in results)
    return f"Based on the {', '.join(names)} results: {gist(text)}"


def _resolve_ref(root: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for raw in ref[1:].split("/"):
        if not raw:
            continue
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return {}
    return node


def _merge_all_of(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema.get("allOf") or []:
        if isinstance(part, dict) and "$ref" in part:
            part = _resolve_ref(root, str(part["$ref"]))
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _number(schema: Mapping[str, Any], integer: bool) -> int | float:
    # A number with both bounds is a rating scale: the top of it, so an offline run's judge
    # (score 1..5) passes unless a test scripts otherwise. Otherwise the lowest valid value.
    if isinstance(schema.get("maximum"), int | float) and isinstance(
        schema.get("minimum"), int | float
    ):
        top: int | float = schema["maximum"]
        return math.floor(top) if integer else top
    value: int | float = 0
    if isinstance(schema.get("minimum"), int | float):
        value = schema["minimum"]
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        value = schema["exclusiveMinimum"] + (1 if integer else 0.5)
    if isinstance(schema.get("maximum"), int | float) and value > schema["maximum"]:
        value = schema["maximum"]
    return math.ceil(value) if integer else value


def _string(schema: Mapping[str, Any], text: str) -> str:
    formats = {
        "date-time": "2024-01-01T00:00:00Z",
        "date": "2024-01-01",
        "time": "00:00:00Z",
        "email": "user@example.com",
        "uri": "https://example.com/",
        "url": "https://example.com/",
        "uuid": "00000000-0000-0000-0000-000000000000",
    }
    value = formats.get(str(schema.get("format")), text)
    if isinstance(schema.get("maxLength"), int):
        value = value[: schema["maxLength"]]
    if isinstance(schema.get("minLength"), int) and len(value) < schema["minLength"]:
        value = value.ljust(schema["minLength"], "x")
    return value


def schema_instance(schema: object, root: Mapping[str, Any], text: str, depth: int = 0) -> Any:
    """Build a small JSON value satisfying ``schema``'s types and required properties.

    Best effort: ``pattern``, ``multipleOf`` and similar fine constraints are not solved.

    Args:
        schema: The (sub)schema.
        root: The whole schema, for resolving ``$ref``.
        text: Placeholder for free-text strings.
        depth: Recursion depth, bounding ``$ref`` cycles.

    Returns:
        The instance.
    """
    if not isinstance(schema, dict):
        return text
    if depth > _MAX_SCHEMA_DEPTH:
        return None
    if "$ref" in schema:
        target = _resolve_ref(root, str(schema["$ref"]))
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        merged = {**target, **siblings} if isinstance(target, dict) else siblings
        return schema_instance(merged, root, text, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return schema_instance((non_null or options)[0], root, text, depth + 1)
    if "allOf" in schema:
        return schema_instance(_merge_all_of(schema, root), root, text, depth + 1)

    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"

    if kind == "object":
        properties = schema.get("properties") or {}
        required = [name for name in schema.get("required") or [] if isinstance(name, str)]
        return {
            name: schema_instance(properties.get(name, {}), root, text, depth + 1)
            for name in dict.fromkeys(required)
        }
    if kind == "array":
        prefix = schema.get("prefixItems") or []
        items = schema.get("items")
        minimum = schema.get("minItems", 0)
        # One element rather than none makes the demo output read like an answer.
        wanted = max(minimum, 1) if schema.get("maxItems", 1) > 0 and items else minimum
        values = [schema_instance(p, root, text, depth + 1) for p in prefix]
        while len(values) < wanted and isinstance(items, dict):
            values.append(schema_instance(items, root, text, depth + 1))
        return values
    if kind == "integer":
        return _number(schema, integer=True)
    if kind == "number":
        return _number(schema, integer=False)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return _string(schema, text)


def _default_content(request: ChatRequest) -> str:
    summary = _default_gist(request.messages)
    response_format = request.response_format or {}
    kind = response_format.get("type")
    if kind == "json_object":
        return json.dumps({"answer": summary}, ensure_ascii=False)
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        root = schema if isinstance(schema, dict) else {}
        return json.dumps(schema_instance(root, root, summary), ensure_ascii=False)
    return f"[{request.model}] {summary}"


def _safe_label(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", label)


class ScriptEngine:
    """Rules, per-rule call counters and the call log of one server.

    Thread-safe, so a server running in its own thread can be scripted from another.

    Args:
        script: Rules loaded from a file (tried after runtime rules).
        latency_ms: Delay applied to every answer unless a response sets ``delay_ms``.
    """

    def __init__(self, script: Script | None = None, *, latency_ms: int = 0) -> None:
        if latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
        self.latency_ms = latency_ms
        self._lock = threading.Lock()
        rules = script.rules if script is not None else []
        self._file_slots = [_Slot(r, r.id or f"file{i}") for i, r in enumerate(rules)]
        self._runtime_slots: list[_Slot] = []
        self._calls: deque[dict[str, Any]] = deque(maxlen=_MAX_RECORDED_CALLS)

    def add_rules(self, rules: Iterable[ScriptRule]) -> int:
        """Append runtime rules (tried before file rules, in insertion order).

        Args:
            rules: The rules to add.

        Returns:
            How many runtime rules there are now.
        """
        with self._lock:
            for rule in rules:
                label = rule.id or f"rt{len(self._runtime_slots)}"
                self._runtime_slots.append(_Slot(rule, label))
            return len(self._runtime_slots)

    def reset(self) -> None:
        """Drop runtime rules, zero every rule's counter and forget recorded calls."""
        with self._lock:
            self._runtime_slots.clear()
            for slot in self._file_slots:
                slot.hits = 0
            self._calls.clear()

    def calls(self) -> list[dict[str, Any]]:
        """Return a copy of the recorded requests (the last 10,000), oldest first."""
        with self._lock:
            return copy.deepcopy(list(self._calls))

    def complete(self, request: ChatRequest, raw: Mapping[str, Any]) -> Reply:
        """Answer one chat-completions request.

        Args:
            request: The validated request.
            raw: The request body as received, hashed into the response id.

        Returns:
            The reply to send.
        """
        last_user = _last_user_text(request.messages)
        texts = [_content_text(m.get("content")) for m in request.messages]
        with self._lock:
            slot = next(
                (
                    s
                    for s in (*self._runtime_slots, *self._file_slots)
                    if _matches(s.rule, request.model, last_user, texts)
                ),
                None,
            )
            index = None
            response = None
            if slot is not None:
                index = slot.hits
                slot.hits += 1
                response = slot.rule.responses[min(index, len(slot.rule.responses) - 1)]
            label = slot.label if slot is not None else None
            reply = _build_reply(request, raw, label, index, response, self.latency_ms)
            self._calls.append(
                {
                    "model": request.model,
                    "messages": copy.deepcopy(request.messages),
                    "tools": copy.deepcopy(request.tools),
                    "max_tokens": raw.get("max_tokens"),
                    "temperature": raw.get("temperature"),
                    "response_format": copy.deepcopy(raw.get("response_format")),
                    "rule_id": label,
                    "response_index": index,
                    "status": reply.status,
                }
            )
            return reply


def _matches(rule: ScriptRule, model: str, last_user: str, texts: Sequence[str]) -> bool:
    if rule.model is not None and rule.model != model:
        return False
    if rule.marker is not None and not any(rule.marker in text for text in texts):
        return False
    return rule.match is None or re.search(rule.match, last_user) is not None


def _build_reply(
    request: ChatRequest,
    raw: Mapping[str, Any],
    label: str | None,
    index: int | None,
    response: ScriptResponse | None,
    latency_ms: int,
) -> Reply:
    delay = latency_ms
    if response is not None and response.delay_ms is not None:
        delay = response.delay_ms
    if response is not None and response.status is not None:
        message = response.content or (
            f"scripted HTTP {response.status} from rule {label!r} (call {index})"
        )
        return Reply(response.status, error_body(response.status, message), delay)

    digest = hashlib.sha256(f"{_canonical(raw)}\x00{label}\x00{index}".encode()).hexdigest()
    content: str | None
    tool_calls: list[dict[str, Any]] | None = None
    if response is not None and (response.content is not None or response.tool_calls):
        content = response.content
        if response.tool_calls:
            tool_calls = [
                {
                    "id": f"call_{_safe_label(label or 'default')}_{index}_{i}",
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": call.arguments
                        if isinstance(call.arguments, str)
                        else json.dumps(call.arguments, ensure_ascii=False),
                    },
                }
                for i, call in enumerate(response.tool_calls)
            ]
    else:
        content = _default_content(request)

    finish_reason = "tool_calls" if tool_calls else "stop"
    completion_chars = len(content or "")
    if tool_calls:
        completion_chars += len(_canonical([call["function"] for call in tool_calls]))
    usage = response.usage if response is not None else None
    prompt_tokens = _tokens(_prompt_chars(request))
    completion_tokens = _tokens(completion_chars)
    if usage is not None and usage.prompt_tokens is not None:
        prompt_tokens = usage.prompt_tokens
    if usage is not None and usage.completion_tokens is not None:
        completion_tokens = usage.completion_tokens

    limit = request.max_completion_tokens or request.max_tokens
    # Tool calls are never cut: truncated arguments would only exercise invalid-JSON paths.
    if limit is not None and content is not None and not tool_calls:
        if _tokens(len(content)) > limit:
            content = content[: limit * 4]
            finish_reason = "length"
            completion_tokens = limit

    body: dict[str, Any] = {
        "id": f"chatcmpl-{digest[:24]}",
        "object": "chat.completion",
        "created": _CREATED_BASE + int(digest[24:32], 16) % _CREATED_SPAN,
        "model": request.model,
        "system_fingerprint": "fp_jamjet_local",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "tool_calls": tool_calls,
                },
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {
                "cached_tokens": usage.cached_tokens if usage is not None else 0
            },
            "completion_tokens_details": {
                "reasoning_tokens": usage.reasoning_tokens if usage is not None else 0
            },
        },
    }
    return Reply(200, body, delay)
