"""A workflow module as a team writes it: plain Temporal, importing jamjet_temporal's public API.

Loaded by a worker *without* our plugin (tests/test_boundary.py): Temporal's sandbox re-imports
this module, and with it ``jamjet_temporal``, for validation and for every run.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

import jamjet_temporal
from jamjet_temporal import (
    JamJetConfig,
    JamJetPlugin,
    acting_as,
    agent,
    default_task_config,
    engram,
    guard,
    idempotency_key,
    llm,
    mcp,
    run_budget,
    strategies,
)
from jamjet_temporal import task as jj_task
from jamjet_temporal import workflow as jj_workflow
from jamjet_temporal.approvals import ApprovalConfig, SigningIdentity
from jamjet_temporal.errors import JamJetError
from jamjet_temporal.plugin import AuditConfig, LLMConfig
from jamjet_temporal.policy import Policy, Rule

# What a module that also builds its worker holds at import time (the README's shape).
EVERYTHING = (
    JamJetConfig,
    JamJetPlugin,
    acting_as,
    default_task_config,
    engram,
    idempotency_key,
    mcp,
    run_budget,
    ApprovalConfig,
    SigningIdentity,
    AuditConfig,
    LLMConfig,
    Policy,
    Rule,
)


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@jj_task
async def whisper(text: str) -> str:
    return text.lower()


@jj_workflow
async def governed(text: str) -> str:
    return await whisper(text)


@workflow.defn
class PlainShout:
    @workflow.run
    async def run(self, text: str) -> str:
        loaded = [jamjet_temporal.__name__, agent.__name__, guard.__name__, llm.__name__]
        loaded.append(strategies.__name__)
        loaded.append(f"{len(EVERYTHING)} names")
        shouted = await workflow.execute_activity(
            shout, text, start_to_close_timeout=timedelta(seconds=10)
        )
        return f"{shouted} ({len(loaded)} modules, errors from {JamJetError.__module__})"


@jj_workflow(name="boundary.asks_model")
async def asks_model(question: str) -> str:
    return await llm.call(question)
