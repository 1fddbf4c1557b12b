"""The docs show the code the tests run, and the public API is the deliberate list."""

from __future__ import annotations

from pathlib import Path

import jamjet_temporal

ROOT = Path(__file__).resolve().parent.parent


def test_docs_example_is_the_tested_file() -> None:
    page = (ROOT / "docs" / "index.md").read_text()
    code = (ROOT / "workflows" / "crash_safe.py").read_text()
    assert f"```python\n{code}```" in page


def test_public_api_is_pinned() -> None:
    assert sorted(jamjet_temporal.__all__) == [
        "JamJetConfig",
        "JamJetError",
        "JamJetPlugin",
        "acting_as",
        "agent",
        "default_task_config",
        "engram",
        "guard",
        "idempotency_key",
        "llm",
        "mcp",
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
        "SQLMemory",
        "context_for",
        "facts",
        "forget",
        "open_memory",
        "record",
        "remember",
    ]


FEATURE_PACKAGES = [
    "a2a",
    "approvals",
    "audit",
    "budget",
    "cli",
    "llm",
    "mcp",
    "memory",
    "pipeline",
    "plugin",
    "policy",
    "tracing",
]


def test_every_public_name_of_every_package_resolves() -> None:
    """Each package's ``__all__`` is what its lazy exports serve, and every name imports."""
    import importlib

    for short in ["", *FEATURE_PACKAGES]:
        package = importlib.import_module(f"jamjet_temporal{'.' if short else ''}{short}")
        exported = set(package.__all__)
        assert exported <= set(dir(package)), (short, exported - set(dir(package)))
        for name in package.__all__:
            assert getattr(package, name) is not None, (short, name)


def test_approval_config_is_public() -> None:
    """The type of a public config field is importable from a public module."""
    from jamjet_temporal import JamJetConfig
    from jamjet_temporal.approvals import ApprovalConfig

    assert JamJetConfig(approvals=ApprovalConfig()).approvals == ApprovalConfig()
