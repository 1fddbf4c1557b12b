"""A local, deterministic, OpenAI-compatible model server.

When no ``OPENAI_API_KEY`` is set, the demo and the tests talk to this server over real HTTP
through the official ``openai`` client, so the production code path is exercised. The same
request always gets the same response: content, ``id``, ``created`` and ``usage`` derive
from the request (and, for scripted rules, from how many times the rule matched before),
never from the clock or randomness.

Endpoints:

* ``POST /v1/chat/completions``: non-streaming chat completions (``stream: true`` → 400).
* ``GET /v1/models``: ``gpt-4o-mini``, ``gpt-4o``, ``local-scripted``.
* ``POST /jamjet/script`` ``{"rules": [...]}``: append runtime rules.
* ``DELETE /jamjet/script``: clear runtime rules, rule counters and recorded calls.
* ``GET /jamjet/calls``: the chat-completion requests received so far.
* ``GET /healthz``: ``ok``.

Rule order: runtime rules (``add_rules`` / ``POST /jamjet/script``) are tried before the
script file's rules; the first matching rule wins. Without a match the server answers
``"[<model>] <gist of the last user message>"`` (or valid JSON when ``response_format``
asks for it) and never calls tools.

Run it standalone with ``python -m jamjet_temporal.modelserver --help``.
"""

from __future__ import annotations

from jamjet_temporal.modelserver._app import create_app
from jamjet_temporal.modelserver._script import (
    Script,
    ScriptError,
    ScriptResponse,
    ScriptRule,
    ScriptToolCall,
    ScriptUsage,
    load_script,
)
from jamjet_temporal.modelserver._server import ModelServer

__all__ = [
    "ModelServer",
    "Script",
    "ScriptError",
    "ScriptResponse",
    "ScriptRule",
    "ScriptToolCall",
    "ScriptUsage",
    "create_app",
    "load_script",
]
