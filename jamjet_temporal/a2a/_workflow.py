"""Delegation to remote A2A agents from workflow code: each is the ``jamjet.a2a.send`` activity.

Runs in the workflow sandbox. The policy gate decides a delegation as the tool
``a2a:ALIAS.SKILL`` before it is scheduled, and records it like any other tool; the worker then
fetches the agent's card, checks the skill, sends one message and follows the remote task to its
end. The message id is the step's idempotency key, so every attempt of the step sends the same
message, and an attempt that finds the remote task id its predecessor recorded follows that
task instead of sending again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from pydantic import JsonValue
from temporalio import workflow

from jamjet_temporal._shared._activity import DEFAULT_RETRY_POLICY, step_key
from jamjet_temporal._shared._wire import A2A_SEND_ACTIVITY
from jamjet_temporal.a2a._config import RemoteAgent, agent_from
from jamjet_temporal.a2a._types import A2ADelegation, is_url
from jamjet_temporal.budget._ledger import Budget
from jamjet_temporal.budget._workflow import child_budget
from jamjet_temporal.errors import BudgetConfigError, ConfigError

__all__ = ["delegate"]

#: Defaults of a delegation; any of them can be overridden per call. A remote task may take a
#: while: ten minutes to finish, a heartbeat every few seconds while it runs.
_DEFAULTS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=10),
    "heartbeat_timeout": timedelta(seconds=30),
    "retry_policy": DEFAULT_RETRY_POLICY,
}


async def delegate(
    target: str,
    *,
    skill: str | None,
    input: JsonValue,
    agents: Mapping[str, Mapping[str, JsonValue] | RemoteAgent] | None = None,
    max_cost: float | str | Decimal | None = None,
    max_tokens: int | None = None,
    **activity_options: Any,
) -> JsonValue:
    """Delegate a task to the remote A2A agent ``target``, durably, and return its result.

    The policy gate decides it as the tool ``a2a:TARGET.SKILL`` (``a2a:TARGET.*`` without a
    skill) before it is scheduled: ``blocked_tools``, ``allowed_tools``,
    ``require_approval_for`` and rules match that name.

    Args:
        target: The agent's alias (declared on the worker, ``JamJetConfig.a2a_agents``, or in
            ``agents``), or its URL.
        skill: The skill to ask for, by the id its card lists; None: the agent chooses.
        input: What to send: a string goes as one text part, anything else as one data part.
        agents: Agents the caller declares, by alias (a pipeline's ``a2a.remote_agents``). Only
            ``target``'s entry travels with the call (URL, card path, the names of credential
            variables: no secrets); a worker that declares the same alias uses its own entry.
            Credentials are read only for agents the worker declares itself.
        max_cost: The most the delegation may spend, in USD; ``max_tokens`` likewise in
            tokens. Under a run budget, this much is set aside from what is left when the
            delegation starts (refused, ``BudgetExceededError``, when what is left cannot
            cover it; without either, everything left is the slice); the slice travels with
            the request as the agent's budget, and what the agent reports it spent is charged
            to the run. Without a run budget, the slice is just the agent's budget.
        **activity_options: Passed to ``workflow.execute_activity`` (``activity_id``,
            ``summary``, ``start_to_close_timeout``, ``heartbeat_timeout``, ``retry_policy``,
            ...); the defaults are 10 minutes, heartbeats every 30 s, the default retry policy.

    Returns:
        The remote task's result as JSON: its artifacts' parts (or, with none, the agent's
        final message): one text part is a string, one data part its value, several a list.

    Raises:
        ActivityError: The delegation failed: ``cause.type`` is ``DelegationError`` when the
            remote task failed, was rejected or canceled, or the card lacks the skill (its
            message lists the card's skills), ``InputRequiredError`` when the agent stopped to
            ask for input, ``RemoteAgentError`` when the agent could not be reached or broke
            the protocol, ``ConfigError`` for an unknown alias or a credential variable that is
            not set, ``ToolDeniedError`` / ``ApprovalRequiredError`` when the gate refused.
        ConfigError: Called outside workflow code.
        ConfigFileError: ``agents[target]`` is not a valid agent declaration.
    """
    if not workflow.in_workflow():
        raise ConfigError(
            "jamjet_temporal.a2a.delegate() is for workflow code (it schedules an activity); "
            "outside a workflow, use the a2a-sdk client directly"
        )
    declared: RemoteAgent | None = None
    if agents is not None and not is_url(target) and target in agents:
        declared = agent_from(target, agents[target], file="a2a.remote_agents")
    budget = _budget(max_cost, max_tokens)
    delegated = f"{target}.{skill}" if skill else target
    options = {"summary": f"delegate {delegated}", **_DEFAULTS, **activity_options}
    if options.get("activity_id") is None:
        # The message id is derived from the activity id, so the id is chosen here (replay-safe:
        # workflow.uuid4 is seeded from the run), not left to the SDK's counter.
        options["activity_id"] = f"a2a-{workflow.uuid4().hex[:16]}"
    info = workflow.info()
    call = A2ADelegation(
        agent=target,
        skill=skill,
        input=input,
        message_id=step_key(info.namespace, info.workflow_id, info.run_id, options["activity_id"]),
        declared=declared,
        budget=budget,
    )
    # Under a run budget the gate sets aside this slice (or everything left) for the call.
    with child_budget(max_cost=max_cost, max_tokens=max_tokens):
        result: JsonValue = await workflow.execute_activity(A2A_SEND_ACTIVITY, call, **options)
    return result


def _budget(max_cost: float | str | Decimal | None, max_tokens: int | None) -> Budget | None:
    if max_cost is None and max_tokens is None:
        return None
    try:
        cost = None if max_cost is None else Decimal(str(max_cost))
    except ArithmeticError:
        raise BudgetConfigError(f"delegate(max_cost={max_cost!r}): not an amount") from None
    if cost is not None and (not cost.is_finite() or cost < 0):
        raise BudgetConfigError(f"delegate(max_cost={max_cost!r}): must be a finite USD >= 0")
    if max_tokens is not None and (isinstance(max_tokens, bool) or max_tokens < 0):
        raise BudgetConfigError(f"delegate(max_tokens={max_tokens!r}): must be >= 0")
    return Budget(max_cost=cost, max_tokens=max_tokens)
