"""Model calls that work on both sides of the determinism boundary.

``llm.call`` / ``llm.chat`` in workflow code schedule the built-in chat activity (decided by
the policy gate and the budget); in a task or ordinary code they call the model directly. The
payloads (``ChatRequest``, ``ChatResult``, ``ToolCall``, ``Usage``) are pure data that cross into
workflow history. ``LLMActivities`` (the worker's OpenAI client) is loaded only by the plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal.llm._call import DEFAULT_MODEL, call, chat
    from jamjet_temporal.llm._types import ChatRequest, ChatResult, ToolCall, Usage

__all__ = ["DEFAULT_MODEL", "ChatRequest", "ChatResult", "ToolCall", "Usage", "call", "chat"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "._call": ["DEFAULT_MODEL", "call", "chat"],
        "._types": ["ChatRequest", "ChatResult", "ToolCall", "Usage"],
    },
)
