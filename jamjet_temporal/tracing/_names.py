"""Our own telemetry names (pure): what dashboards and queries are built on, so they never change.

The GenAI names (``gen_ai.*``), ``error.type`` and ``server.*`` come from
``opentelemetry-semantic-conventions``; these are the ones the conventions have no name for.
"""

from __future__ import annotations

from typing import Final

#: The instrumentation scope of every span and metric we make.
SCOPE: Final = "jamjet_temporal"

# Span events.
#: One gate decision (allowed, blocked, waiting for approval), on the span current when made.
GATE_DECISION_EVENT: Final = "jamjet.gate.decision"
#: A budget refused a model call before it was made.
BUDGET_HALT_EVENT: Final = "jamjet.budget.halt"

# Attributes.
ATTEMPT: Final = "jamjet.activity.attempt"
AUDIT_EVENT_ID: Final = "jamjet.audit.event_id"
DECISION: Final = "jamjet.gate.decision"
DECISION_KIND: Final = "jamjet.gate.kind"
DECISION_SUBJECT: Final = "jamjet.gate.subject"
DECISION_RULE: Final = "jamjet.gate.rule"
DECISION_SCOPE: Final = "jamjet.gate.scope"
DECISION_REASON: Final = "jamjet.gate.reason"
POLICY_VERSION: Final = "jamjet.gate.policy_version"
#: The gate decision that cleared the call a span is (its audit event id).
CLEARED_BY: Final = "jamjet.gate.cleared_by"
COST_USD: Final = "jamjet.cost.usd"
BUDGET_SCOPE: Final = "jamjet.budget.scope"
BUDGET_REASON: Final = "jamjet.budget.reason"
BUDGET_SPENT_USD: Final = "jamjet.budget.spent_usd"
BUDGET_PROJECTED_USD: Final = "jamjet.budget.projected_usd"
BUDGET_CAP_USD: Final = "jamjet.budget.cap_usd"
BUDGET_CAP_TOKENS: Final = "jamjet.budget.cap_tokens"
BUDGET_REMAINING_USD: Final = "jamjet.budget.remaining_usd"
BUDGET_REMAINING_TOKENS: Final = "jamjet.budget.remaining_tokens"
APPROVAL_ID: Final = "jamjet.approval.id"
APPROVAL_ACTION: Final = "jamjet.approval.action"
APPROVAL_OUTCOME: Final = "jamjet.approval.outcome"
APPROVAL_APPROVERS: Final = "jamjet.approval.approvers"
APPROVAL_ELIGIBLE: Final = "jamjet.approval.eligible"
APPROVAL_REQUIRED: Final = "jamjet.approval.required"
APPROVAL_EVENT_IDS: Final = "jamjet.approval.event_ids"
AGENT_TURNS: Final = "jamjet.agent.turns"
AGENT_STOPPED: Final = "jamjet.agent.stopped"
AGENT_TOOL_CALLS: Final = "jamjet.agent.tool_calls"
MCP_SERVER: Final = "jamjet.mcp.server"
A2A_AGENT: Final = "jamjet.a2a.agent"
ENGRAM_BUDGET_TOKENS: Final = "jamjet.engram.budget_tokens"
ENGRAM_TOKENS_USED: Final = "jamjet.engram.tokens_used"
ENGRAM_FACTS: Final = "jamjet.engram.facts"
ENGRAM_EPISODES: Final = "jamjet.engram.episodes"
WORKFLOW_TYPE: Final = "jamjet.workflow.type"

# Metrics.
#: Cost of model calls in USD, by model and workflow type (a counter).
COST_METRIC: Final = "jamjet.gen_ai.client.cost"
