"""The Starlette app: OpenAI-compatible ``/v1`` endpoints plus ``/jamjet`` test controls."""

from __future__ import annotations

import asyncio
import hmac
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jamjet_temporal._shared._extras import missing_extra

try:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route
except ImportError as _missing:  # the extra is not installed
    raise missing_extra("cli", _missing) from _missing

from jamjet_temporal.modelserver._engine import ChatRequest, ScriptEngine, error_body
from jamjet_temporal.modelserver._script import Script, ScriptError, load_script, parse_script

__all__ = ["MODEL_IDS", "build_app", "create_app"]

MODEL_IDS = ("gpt-4o-mini", "gpt-4o", "local-scripted")
# Fixed so /v1/models is as deterministic as the completions.
_MODELS_CREATED = 1_700_000_000


def _error(status: int, message: str, *, param: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param=param), status_code=status)


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "We could not parse the JSON body of your request.")


def build_app(engine: ScriptEngine, *, api_key: str | None = None) -> Starlette:
    """Build the app around an existing engine (``ModelServer`` keeps the engine to script it).

    Args:
        engine: Rules, counters and call log the app serves from.
        api_key: If set, every endpoint but ``/healthz`` requires ``Authorization: Bearer
            <api_key>``; otherwise any key (or none) is accepted.

    Returns:
        The Starlette app.
    """

    def denied(request: Request) -> Response | None:
        if api_key is None:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), api_key):
            return None
        return _error(401, "Incorrect API key provided for the local jamjet model server.")

    async def chat_completions(request: Request) -> Response:
        if (refusal := denied(request)) is not None:
            return refusal
        raw = await _json_body(request)
        if isinstance(raw, Response):
            return raw
        if not isinstance(raw, dict):
            return _error(400, "The request body must be a JSON object.")
        if raw.get("stream") is True:
            return _error(
                400,
                "Streaming is not supported by the local jamjet model server; "
                "send the request with stream=false.",
                param="stream",
            )
        try:
            chat = ChatRequest.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(part) for part in first["loc"]) or None
            return _error(400, f"Invalid value for '{param}': {first['msg']}.", param=param)
        reply = engine.complete(chat, raw)
        if reply.delay_ms:
            await asyncio.sleep(reply.delay_ms / 1000)
        return JSONResponse(reply.body, status_code=reply.status)

    def model_entry(model_id: str) -> dict[str, Any]:
        return {
            "id": model_id,
            "object": "model",
            "created": _MODELS_CREATED,
            "owned_by": "jamjet-local",
        }

    async def list_models(request: Request) -> Response:
        if (refusal := denied(request)) is not None:
            return refusal
        return JSONResponse({"object": "list", "data": [model_entry(m) for m in MODEL_IDS]})

    async def get_model(request: Request) -> Response:
        if (refusal := denied(request)) is not None:
            return refusal
        model_id = str(request.path_params["model_id"])
        if model_id not in MODEL_IDS:
            return _error(404, f"The model '{model_id}' does not exist.", param="model")
        return JSONResponse(model_entry(model_id))

    async def add_script(request: Request) -> Response:
        if (refusal := denied(request)) is not None:
            return refusal
        raw = await _json_body(request)
        if isinstance(raw, Response):
            return raw
        try:
            script = parse_script(raw, source="POST /jamjet/script")
        except ScriptError as exc:
            return _error(400, str(exc))
        total = engine.add_rules(script.rules)
        return JSONResponse({"added": len(script.rules), "runtime_rules": total})

    async def clear_script(request: Request) -> Response:
        if (refusal := denied(request)) is not None:
            return refusal
        engine.reset()
        return JSONResponse({"cleared": True})

    async def list_calls(request: Request) -> Response:
        if (refusal := denied(request)) is not None:
            return refusal
        return JSONResponse(engine.calls())

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def http_error(request: Request, exc: Exception) -> Response:
        # Unknown routes and wrong methods get OpenAI-shaped errors, which the client parses.
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return _error(status, f"{request.method} {request.url.path}: {exc}")

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
            Route("/jamjet/script", add_script, methods=["POST"]),
            Route("/jamjet/script", clear_script, methods=["DELETE"]),
            Route("/jamjet/calls", list_calls, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )


def create_app(
    *,
    script: Script | str | Path | None = None,
    latency_ms: int = 0,
    api_key: str | None = None,
) -> Starlette:
    """Create a standalone model-server app (to mount or serve with any ASGI server).

    Args:
        script: A script file (YAML or JSON) or an already-validated ``Script``.
        latency_ms: Delay before every answer unless a scripted response sets ``delay_ms``.
        api_key: If set, require ``Authorization: Bearer <api_key>``.

    Returns:
        The Starlette app.

    Raises:
        ScriptError: The script file is unreadable or invalid.
    """
    loaded = script if isinstance(script, Script) or script is None else load_script(script)
    return build_app(ScriptEngine(loaded, latency_ms=latency_ms), api_key=api_key)
