"""The docs show the code the tests run, and the public API is the deliberate list."""

from __future__ import annotations

from pathlib import Path

import jamjet_temporal

ROOT = Path(__file__).resolve().parent.parent


def test_docs_example_is_the_tested_file() -> None:
    page = (ROOT / "docs" / "index.md").read_text()
    code = (ROOT / "workflows" / "crash_safe" / "pipeline.py").read_text()
    assert f"```python\n{code}```" in page


def test_public_api_is_pinned() -> None:
    assert sorted(jamjet_temporal.__all__) == [
        "ChatRequest",
        "ChatResult",
        "JamJetConfig",
        "JamJetError",
        "JamJetPlugin",
        "ToolCall",
        "Usage",
        "acting_as",
        "agent",
        "default_task_config",
        "engram",
        "guard",
        "idempotency_key",
        "llm",
        "run_budget",
        "task",
        "workflow",
    ]
    for name in jamjet_temporal.__all__:
        assert getattr(jamjet_temporal, name) is not None


def test_engram_public_api_is_pinned() -> None:
    from jamjet_temporal import engram

    assert sorted(engram.__all__) == [
        "Context",
        "ContextItem",
        "ContextRequest",
        "DEFAULT_MEMORY_STORE",
        "Episode",
        "Fact",
        "FactInput",
        "Forgotten",
        "IngestRequest",
        "Ingested",
        "Message",
        "context_for",
        "facts",
        "forget",
        "open_memory",
        "record",
        "remember",
    ]
