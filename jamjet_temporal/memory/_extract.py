"""Fact extraction: the prompt, the JSON schema and the parse (pure: runs in workflow code).

The model is asked for structured output (OpenAI ``json_schema``, strict) listing durable facts
about the user, each with the turn numbers it came from; the answer becomes ``FactInput``s
whose ``sources`` are those turns' ``dia_id``s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from jamjet_temporal.errors import ExtractionError
from jamjet_temporal.llm._types import ChatRequest
from jamjet_temporal.memory._types import FactInput, Message

__all__ = ["EXTRACTION_SCHEMA", "extraction_request", "parse_extraction"]

#: The structured-output schema the model answers in.
EXTRACTION_SCHEMA: dict[str, JsonValue] = {
    "type": "object",
    "properties": {
        "facts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "attribute": {"type": ["string", "null"]},
                    "value": {"type": "string"},
                    "turns": {"type": "array", "items": {"type": "integer"}},
                },
                "required": ["attribute", "value", "turns"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["facts"],
    "additionalProperties": False,
}

_SYSTEM = """\
You maintain long-term memory about a user. From the conversation below, list the durable facts
worth remembering in later sessions: preferences, personal details, projects, decisions, plans,
events that happened. Skip small talk and anything true only for this moment.
For a fact that is a value of a property that can change later (location, employer, role,
project, team, tool of choice), give "attribute" (short, lower case, e.g. "location") and the
value alone in "value" (e.g. "Amsterdam"). For any other fact, set "attribute" to null and write
one short self-contained statement in "value", naming the user (e.g. "{user} prefers concise
answers"). In "turns", give the numbers of the turns the fact comes from.
Answer in JSON only."""


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")

    attribute: str | None = None
    value: str
    turns: list[int] = []


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    facts: list[_Item]


def dia_ids(session: str, messages: Sequence[Message]) -> list[str]:
    """Each message's ``dia_id`` (given, or ``<session>:<n>``)."""
    return [m.dia_id or f"{session}:{n}" for n, m in enumerate(messages, start=1)]


def extraction_request(
    user: str, session: str, messages: Sequence[Message], model: str
) -> ChatRequest:
    """The chat request that asks ``model`` for the facts in ``messages``."""
    lines = []
    for n, message in enumerate(messages, start=1):
        speaker = message.speaker or (user if message.role == "user" else "assistant")
        lines.append(f"[{n}] {speaker}: {message.content}")
    return ChatRequest(
        model=model,
        messages=[
            {"role": "system", "content": _SYSTEM.replace("{user}", user)},
            {
                "role": "user",
                "content": f"User: {user}\nSession: {session}\n\n" + "\n".join(lines),
            },
        ],
        temperature=0,
        response_schema=EXTRACTION_SCHEMA,
        response_schema_name="memory_facts",
    )


def parse_extraction(
    answer: str | None, session: str, messages: Sequence[Message]
) -> list[FactInput]:
    """The facts in the model's answer, sources mapped to ``dia_id``s.

    Raises:
        ExtractionError: The answer is not the JSON asked for (the raw answer is attached).
    """
    if not answer:
        raise ExtractionError("fact extraction: the model gave no answer", answer=answer)
    try:
        parsed = _Answer.model_validate_json(answer)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "the answer"
        raise ExtractionError(
            f"fact extraction: the model's answer is not the JSON asked for ({where}: "
            f"{problem['msg']}); answer starts {json.dumps(answer[:80])}. Use a model that "
            "supports structured output (json_schema)",
            answer=answer,
        ) from None
    ids = dia_ids(session, messages)
    facts: list[FactInput] = []
    for item in parsed.facts:
        if not item.value.strip():
            continue
        attribute = item.attribute.strip() if item.attribute and item.attribute.strip() else None
        sources = [ids[n - 1] for n in item.turns if 1 <= n <= len(ids)]
        facts.append(FactInput(attribute=attribute, value=item.value, sources=sources))
    return facts
