"""The script format: which canned answer the local model server gives to which request.

A script is a list of rules. Each rule selects requests (by a regex on the last user message,
by model, by a marker substring) and lists the responses to give, in order, to the 1st, 2nd,
... matching call; the last response repeats once the list is exhausted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jamjet_temporal.errors import ConfigError

__all__ = [
    "Script",
    "ScriptError",
    "ScriptResponse",
    "ScriptRule",
    "ScriptToolCall",
    "ScriptUsage",
    "load_script",
    "parse_script",
]


class ScriptError(ConfigError, ValueError):
    """A model-server script is invalid.

    The message names the source (file or endpoint) and, for each problem, the dotted path of
    the offending field (for example ``rules.0.responses.1.status``).
    """


class _Strict(BaseModel):
    # Unknown keys are almost always typos (``respones``); failing loudly beats ignoring them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScriptToolCall(_Strict):
    """One tool call the scripted model makes.

    Attributes:
        name: The function name.
        arguments: The arguments, as a mapping (serialised to JSON) or as a raw string sent
            verbatim, which lets a test script malformed arguments on purpose.
    """

    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class ScriptUsage(_Strict):
    """Token usage to report instead of the computed default.

    Attributes:
        prompt_tokens: Prompt tokens; computed from the request when omitted.
        completion_tokens: Completion tokens; computed from the answer when omitted.
        cached_tokens: Reported as ``usage.prompt_tokens_details.cached_tokens``.
        reasoning_tokens: Reported as ``usage.completion_tokens_details.reasoning_tokens``.
    """

    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    cached_tokens: int = Field(default=0, ge=0)
    reasoning_tokens: int = Field(default=0, ge=0)


class ScriptResponse(_Strict):
    """One scripted answer.

    With neither ``content`` nor ``tool_calls`` (and no ``status``) the server gives its
    default deterministic answer, so a response can script just a delay or usage.

    Attributes:
        content: The assistant message text. With ``status`` set, the error message instead.
        tool_calls: Tool calls to make; their ids are ``call_<rule>_<n>_<i>`` (``n`` the
            0-based matching-call index of the rule, ``i`` the 0-based index in this list).
        usage: Token usage to report; computed when omitted.
        delay_ms: Latency before answering; replaces the server-wide latency.
        status: Answer an OpenAI-style error with this HTTP status (400-599) instead.
    """

    content: str | None = None
    tool_calls: list[ScriptToolCall] | None = None
    usage: ScriptUsage | None = None
    delay_ms: int | None = Field(default=None, ge=0)
    status: int | None = Field(default=None, ge=400, le=599)


class ScriptRule(_Strict):
    """A rule: which requests it matches and what to answer them.

    All given conditions must hold. Rules are tried in order and the first match wins;
    rules added at runtime are tried before the rules of the script file.

    Attributes:
        id: Optional name, echoed in ``GET /jamjet/calls`` and used in tool-call ids.
            Unnamed rules are labelled ``file<k>`` / ``rt<k>`` by position.
        match: Regex searched (``re.search``) in the content of the last user message.
        model: Only match requests for exactly this model.
        marker: Plain substring that must appear in the content of some message; lets
            concurrent tests sharing one server isolate their own rules.
        responses: Answers for the 1st, 2nd, ... matching call; the last one repeats.
    """

    id: str | None = Field(default=None, min_length=1)
    match: str | None = None
    model: str | None = Field(default=None, min_length=1)
    marker: str | None = Field(default=None, min_length=1)
    responses: list[ScriptResponse] = Field(min_length=1)

    @field_validator("match")
    @classmethod
    def _check_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value


class Script(_Strict):
    """A whole script: ``{"rules": [...]}``.

    Attributes:
        rules: The rules, tried in order.
    """

    rules: list[ScriptRule] = Field(default_factory=list)


def _describe(exc: ValidationError, source: str) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "<top level>"
        problems.append(f"  {where}: {err['msg']}")
    return f"invalid model-server script ({source}):\n" + "\n".join(problems)


def parse_script(data: object, *, source: str = "<script>") -> Script:
    """Validate already-decoded script data.

    Args:
        data: The decoded YAML/JSON document, expected to be ``{"rules": [...]}``.
        source: Where the data came from, quoted in error messages.

    Returns:
        The validated script.

    Raises:
        ScriptError: The data is not a valid script; the message names each bad field.
    """
    if not isinstance(data, dict):
        raise ScriptError(
            f"invalid model-server script ({source}): expected a mapping with a 'rules' list, "
            f"got {type(data).__name__}"
        )
    try:
        return Script.model_validate(data)
    except ValidationError as exc:
        raise ScriptError(_describe(exc, source)) from None


def load_script(path: str | Path) -> Script:
    """Read and validate a script file.

    ``.json`` files are parsed as JSON, anything else as YAML (a superset of JSON).

    Args:
        path: The script file.

    Returns:
        The validated script.

    Raises:
        ScriptError: The file cannot be read or parsed, or is not a valid script.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"cannot read model-server script {file}: {exc}") from None
    try:
        data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScriptError(f"cannot parse model-server script {file}: {exc}") from None
    return parse_script(data, source=str(file))
