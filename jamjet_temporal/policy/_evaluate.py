"""Policy decisions: pure functions of the scopes in force and a name.

Workflow-side (pure and deterministic): the same scopes and name give the same
:class:`~jamjet_temporal.policy.Decision` on every replay.
"""

from __future__ import annotations

from ._model import Decision, PolicyScopes, Verdict

__all__ = ["decide_model", "decide_tool"]


def decide_tool(scopes: PolicyScopes, tool: str) -> Decision:
    """Decides whether ``tool`` may be called under ``scopes``.

    In order:

    1. ``blocked_tools`` of any scope blocks, and no scope can undo it (the least specific
       matching scope is reported).
    2. ``require_approval_for`` of any scope asks for a human, and no scope can undo that
       either: an agent's allow-list narrows what it may use, it never skips an approval.
    3. From the most specific scope outwards, the first scope with a matching rule decides;
       within a scope the first match wins.
       An allow-list scope (:meth:`Policy.allow_list`) that matches nothing blocks the tool
       itself: less specific scopes are not asked.
    4. Nothing matched: blocked if any scope has rules or an allow-list (default deny),
       otherwise allowed (no policy, or only ``blocked_tools`` / ``require_approval_for``).

    Args:
        scopes: The policies in force, least specific first.
        tool: The tool name.

    Returns:
        The decision, with the deciding scope, rule and policy version.
    """
    for name, policy in scopes.scopes:
        entry = policy._compiled.blocked.first(tool)
        if entry is not None:
            return Decision(
                decision="BLOCKED",
                subject=tool,
                rule=entry.glob,
                rule_kind="block",
                scope=name,
                policy_version=policy.version_id,
                reason=entry.reason,
            )
    for name, policy in scopes.scopes:
        entry = policy._compiled.approval.first(tool)
        if entry is not None:
            return Decision(
                decision="WAITING_FOR_APPROVAL",
                subject=tool,
                rule=entry.glob,
                rule_kind="require_approval",
                scope=name,
                policy_version=policy.version_id,
                reason=entry.reason,
            )
    for name, policy in scopes._reversed:
        compiled = policy._compiled
        entry = compiled.rules.first(tool)
        if entry is not None:
            return Decision(
                decision=entry.verdict,
                subject=tool,
                rule=entry.glob,
                rule_kind=entry.action,
                scope=name,
                policy_version=compiled.version_id,
                reason=entry.reason,
            )
        if policy.closed:
            return Decision(
                decision="BLOCKED",
                subject=tool,
                rule=None,
                rule_kind=None,
                scope=name,
                policy_version=compiled.version_id,
                reason="tool not in allow-list",
            )
    verdict: Verdict
    if scopes._has_rules:
        verdict, reason = "BLOCKED", "no rule allows it (default deny)"
    elif scopes._has_tool_config:
        verdict, reason = "ALLOWED", "no rule matched and no scope sets rules or an allow-list"
    else:
        verdict, reason = "ALLOWED", "no policy configured"
    return Decision(
        decision=verdict,
        subject=tool,
        rule=None,
        rule_kind=None,
        scope="default",
        policy_version=scopes._version_id,
        reason=reason,
    )


def decide_model(scopes: PolicyScopes, model: str) -> Decision:
    """Decides whether ``model`` may be called under ``scopes``.

    The most specific scope that sets ``model_allowlist`` decides; with none, any model is
    allowed.

    Args:
        scopes: The policies in force, least specific first.
        model: The model name, as sent to the provider.

    Returns:
        The decision.
    """
    for name, policy in scopes._reversed:
        compiled = policy._compiled
        if compiled.models is None:
            continue
        entry = compiled.models.first(model)
        if entry is None:
            return Decision(
                decision="BLOCKED",
                subject=model,
                rule=None,
                rule_kind=None,
                scope=name,
                policy_version=compiled.version_id,
                reason="model not in model_allowlist",
            )
        return Decision(
            decision="ALLOWED",
            subject=model,
            rule=entry.glob,
            rule_kind="allow",
            scope=name,
            policy_version=compiled.version_id,
            reason=entry.reason,
        )
    return Decision(
        decision="ALLOWED",
        subject=model,
        rule=None,
        rule_kind=None,
        scope="default",
        policy_version=scopes._version_id,
        reason="no model_allowlist configured",
    )
