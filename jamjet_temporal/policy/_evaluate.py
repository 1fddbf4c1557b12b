"""Policy decisions: pure functions of the scopes in force and a name.

Workflow-side (pure and deterministic): the same scopes and name give the same
:class:`~jamjet_temporal.policy.Decision` on every replay.

Scopes only narrow. Every scope is asked on its own and the most restrictive answer wins
(``BLOCKED`` over ``WAITING_FOR_APPROVAL`` over ``AUDIT`` over ``ALLOWED``): a policy that a
pipeline file or workflow code brings (scopes ``workflow``, ``node:<id>``, ``agent:<name>``)
can take away what the operator's ``run`` policy allows, never give back what it refuses.
"""

from __future__ import annotations

from typing import Final

from jamjet_temporal.policy._types import Action, Decision, Policy, PolicyScopes, Verdict, fold_name

__all__ = ["decide_memory", "decide_model", "decide_tool"]

_SEVERITY: Final[dict[Verdict, int]] = {
    "ALLOWED": 0,
    "AUDIT": 1,
    "WAITING_FOR_APPROVAL": 2,
    "BLOCKED": 3,
}


def _scope_verdict(
    policy: Policy, name: str, holds: frozenset[str] | None = None, *, named_only: bool = False
) -> tuple[Verdict, str | None, Action | None, str] | None:
    """What one scope says about a tool: (verdict, glob, rule kind, reason), or None.

    ``named_only``: only entries that match the name answer (no allow-list or default deny).
    """
    compiled = policy._compiled
    entry = compiled.blocked.first(name)
    if entry is not None:
        return "BLOCKED", entry.glob, "block", entry.reason
    entry = compiled.approval.first(name)
    if entry is not None:
        return "WAITING_FOR_APPROVAL", entry.glob, "require_approval", entry.reason
    entry = compiled.rules.first(name, holds)
    if entry is not None:
        return entry.verdict, entry.glob, entry.action, entry.reason
    if named_only:
        return None
    if policy.closed:
        return "BLOCKED", None, None, "tool not in allow-list"
    if compiled.has_rules:
        return "BLOCKED", None, None, "no rule allows it (default deny)"
    return None


def decide_memory(scopes: PolicyScopes, subject: str) -> Decision:
    """Decides a memory call (``engram.read``, ``engram.write`` or ``engram.forget``).

    As :func:`decide_tool`, but only entries that match the name answer (``blocked_tools``,
    ``require_approval_for``, rules): an allow-list or a scope's default deny is about tools,
    and a run's own user's memory is the run's unless a policy says otherwise. A catch-all rule
    (``match: "*"``) does match.

    Args:
        scopes: The policies in force, least specific first.
        subject: The memory call's name.

    Returns:
        The decision.
    """
    return decide_tool(scopes, subject, named_only=True)


def decide_tool(
    scopes: PolicyScopes,
    tool: str,
    *,
    holds: frozenset[str] | None = None,
    named_only: bool = False,
) -> Decision:
    """Decides whether ``tool`` may be called under ``scopes``.

    Each scope answers on its own, in this order: its ``blocked_tools`` block; its
    ``require_approval_for`` asks for a human; else its first matching rule decides; else an
    allow-list (:meth:`Policy.allow_list`) or a scope with rules blocks (default deny); a scope
    with none of these says nothing. The most restrictive answer wins; among equally
    restrictive refusals the least specific scope (the operator's) is reported, among equal
    permissions the most specific one. Nobody answering: allowed. Names are matched without
    regard to case or Unicode compatibility forms (``Delete_Database`` is ``delete_database``).

    Args:
        scopes: The policies in force, least specific first.
        tool: The tool name.
        holds: The conditions true of the tool (for an MCP tool, from the annotations its
            server listed: ``destructive``, ``read_only``, ...), which rules with ``when:``
            test; None: nothing is known, and those rules do not apply.
        named_only: Only entries matching the name answer (see :func:`decide_memory`).

    Returns:
        The decision, with the deciding scope, rule and policy version.
    """
    folded = fold_name(tool)
    best: tuple[int, str, Policy, tuple[Verdict, str | None, Action | None, str]] | None = None
    for scope, policy in scopes.scopes:
        said = _scope_verdict(policy, folded, holds, named_only=named_only)
        if said is None:
            continue
        severity = _SEVERITY[said[0]]
        # Refusals: keep the first (least specific) scope; permissions: the last (most specific).
        if best is None or severity > best[0] or (severity == best[0] and severity < 2):
            best = (severity, scope, policy, said)
    if best is not None:
        _, scope, policy, (verdict, rule, kind, reason) = best
        return Decision(
            decision=verdict,
            subject=tool,
            rule=rule,
            rule_kind=kind,
            scope=scope,
            policy_version=policy.version_id,
            reason=reason,
        )
    if named_only:
        reason = "no rule names this memory call (the run's user's own memory)"
    elif scopes._has_tool_config:
        reason = "no rule matched and no scope sets rules or an allow-list"
    else:
        reason = "no policy configured"
    return Decision(
        decision="ALLOWED",
        subject=tool,
        rule=None,
        rule_kind=None,
        scope="default",
        policy_version=scopes._version_id,
        reason=reason,
    )


def decide_model(scopes: PolicyScopes, model: str) -> Decision:
    """Decides whether ``model`` may be called under ``scopes``.

    Every scope that sets ``model_allowlist`` must list the model: the least specific one that
    does not blocks it; when all do, the most specific one is reported. With none, any model is
    allowed. Matching ignores case, as for tools.

    Args:
        scopes: The policies in force, least specific first.
        model: The model name, as sent to the provider.

    Returns:
        The decision.
    """
    folded = fold_name(model)
    allowed: Decision | None = None
    for name, policy in scopes.scopes:
        compiled = policy._compiled
        if compiled.models is None:
            continue
        entry = compiled.models.first(folded)
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
        allowed = Decision(
            decision="ALLOWED",
            subject=model,
            rule=entry.glob,
            rule_kind="allow",
            scope=name,
            policy_version=compiled.version_id,
            reason=entry.reason,
        )
    if allowed is not None:
        return allowed
    return Decision(
        decision="ALLOWED",
        subject=model,
        rule=None,
        rule_kind=None,
        scope="default",
        policy_version=scopes._version_id,
        reason="no model_allowlist configured",
    )
