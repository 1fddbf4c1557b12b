"""``guard.requires_approval``: suspend a run durably until a human decides.

Workflow code only. Approvers, thresholds and timeouts come from the plugin's approvals
config (``JamJetConfig(approvals=...)``); decisions arrive as the signal
``jamjet.approval.decide`` or the update ``jamjet.approval.submit``, signed by the approver.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import JsonValue
from pydantic_core import to_jsonable_python

from jamjet_temporal.errors import ApprovalRequiredError, ConfigError

if TYPE_CHECKING:
    from jamjet_temporal.approvals._workflow import ApprovalDecision

__all__ = ["requires_approval"]


async def requires_approval(
    action: str,
    *,
    timeout: timedelta | None = None,  # noqa: ASYNC109 - a durable Temporal timer
    **args: JsonValue,
) -> ApprovalDecision:
    """Wait, durably, until approvers approve ``action`` with exactly these arguments.

    Example::

        await guard.requires_approval(action="wire_transfer", amount=amount, to=to)

    Args:
        action: The action's name; the approvals config's first rule whose glob matches it
            says who may approve, how many approvers are needed and the timeout.
        timeout: Overrides the rule's timeout for this request.
        **args: What the approvers are shown; a decision is bound to their digest, so an
            approval of these arguments cannot approve different ones.

    Returns:
        Who approved, when, and their comments.

    Raises:
        ApprovalRejectedError: An approver rejected it (or no rule covers the action).
        ApprovalTimeoutError: Nobody decided in time (after any escalation).
        ApprovalRequiredError: The worker has no approvals config.
        ConfigError: Called outside a workflow running on a worker with ``JamJetPlugin``.
    """
    # Imported on use: a worker without the plugin can still load a workflow module that
    # imports the authoring API (the gate pulls in signature checks and token counting).
    from jamjet_temporal.gate._workflow import current_gate

    gate = current_gate()
    if gate is None:
        raise ConfigError(
            "guard.requires_approval() must run in workflow code on a worker with JamJetPlugin"
        )
    if gate.approvals is None:
        raise ApprovalRequiredError(
            action,
            "approval required but the worker has no approvals config "
            "(JamJetConfig(approvals=...))",
            scope="approval",
        )
    plain = to_jsonable_python(args)
    assert isinstance(plain, dict)
    return await gate.approvals.request(action, plain, timeout)
