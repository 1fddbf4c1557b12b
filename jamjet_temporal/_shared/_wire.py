"""Stable wire names: what running workflows and recorded histories depend on (pure).

Every activity type, header, signal, update, query, search attribute, workflow type, audit
event kind and marker that crosses into Temporal lives here, once. Renaming one breaks the
replay of every run recorded with the old name: these never change (add new names instead).
"""

from __future__ import annotations

import unicodedata
from typing import Final

from temporalio.common import SearchAttributeKey

# Activity types. The reserved namespace is ``jamjet.``; only the runtime schedules its names,
# except the model call, the MCP tool call and the A2A delegation, which are governed calls like
# any tool (see ``_shared._runtime``).
RESERVED_PREFIX: Final = "jamjet."
CHAT_ACTIVITY: Final = "jamjet.llm.chat"
#: One call of one MCP server's tool: decided by the gate as the tool ``ALIAS.TOOL``.
MCP_CALL_ACTIVITY: Final = "jamjet.mcp.call_tool"
#: Listing an MCP server's tools: runtime-internal (not a tool call, not decided).
MCP_LIST_ACTIVITY: Final = "jamjet.mcp.list_tools"
#: One delegation to a remote A2A agent (send the message, follow its task to the end): decided
#: by the gate as the tool ``a2a:ALIAS.SKILL``.
A2A_SEND_ACTIVITY: Final = "jamjet.a2a.send"
#: The reserved names that are governed calls, decided by the gate like any tool.
GOVERNED_ACTIVITIES: Final = frozenset({CHAT_ACTIVITY, MCP_CALL_ACTIVITY, A2A_SEND_ACTIVITY})
RECORD_ACTIVITY: Final = "jamjet.audit.record"
QUOTE_ACTIVITY: Final = "jamjet.budget.quote"
CONTEXT_ACTIVITY: Final = "jamjet.engram.context"
INGEST_ACTIVITY: Final = "jamjet.engram.ingest"
FACTS_ACTIVITY: Final = "jamjet.engram.facts"
FORGET_ACTIVITY: Final = "jamjet.engram.forget"
#: What a policy calls each memory activity: memory calls are decided (and audited) by these.
MEMORY_SUBJECTS: Final = {
    CONTEXT_ACTIVITY: "engram.read",
    FACTS_ACTIVITY: "engram.read",
    INGEST_ACTIVITY: "engram.write",
    FORGET_ACTIVITY: "engram.forget",
}
ENGRAM_ACTIVITIES: Final = frozenset(MEMORY_SUBJECTS)
#: The runtime's own activities: only the runtime schedules them. Of these only the memory
#: calls are decided by the gate (as ``MEMORY_SUBJECTS``); the rest is bookkeeping.
INTERNAL_ACTIVITIES: Final = frozenset(
    {RECORD_ACTIVITY, QUOTE_ACTIVITY, MCP_LIST_ACTIVITY, *ENGRAM_ACTIVITIES}
)

# Headers.
#: The gate's decision, carried to the activity.
GATE_HEADER: Final = "JamJetGate"
#: A run's (or a child's) budget.
BUDGET_HEADER: Final = "JamJetBudget"
#: The user a run acts for: a signed ``RunUser``.
USER_HEADER: Final = "JamJetUser"
#: Put by the gate on the runtime's own activities.
INTERNAL_HEADER: Final = "JamJetInternal"
#: The model's tool call id an agent's tool activity answers (set only with tracing on).
TOOL_CALL_HEADER: Final = "JamJetToolCall"

# Approvals: the signal and update that carry a decision, the query listing pending requests,
# and the search attribute by which pending runs are found.
DECIDE_SIGNAL: Final = "jamjet.approval.decide"
DECIDE_UPDATE: Final = "jamjet.approval.submit"
PENDING_QUERY: Final = "jamjet.approval.pending"
PENDING_ATTRIBUTE: Final = SearchAttributeKey.for_bool("JamJetApprovalPending")

# Workflow types, markers, heartbeat details and audit event kinds.
PIPELINE_WORKFLOW: Final = "JamJetPipeline"
#: An external event for a pipeline's ``wait`` node (``jamjet resume RUN --event NAME``).
PIPELINE_EVENT_SIGNAL: Final = "jamjet.pipeline.event"
#: The events a pipeline run waits for now.
PIPELINE_WAITING_QUERY: Final = "jamjet.pipeline.waiting"
#: The nodes a pipeline run has visited so far, with their outcomes.
PIPELINE_NODES_QUERY: Final = "jamjet.pipeline.nodes"
#: Prefix of the patch marker that pins a run's governance.
GOVERNANCE_PATCH: Final = "jamjet.governance"
#: Heartbeat detail key under which a governed activity keeps its model spend.
SPEND_DETAIL: Final = "jamjet.spend"
#: Heartbeat detail key under which an A2A delegation keeps the remote task it follows (its id,
#: state and last status text): a retried attempt follows that task instead of sending again.
A2A_TASK_DETAIL: Final = "jamjet.a2a.task"
#: Keys in A2A metadata: the budget slice a delegation's request carries (``{max_cost,
#: max_tokens}``), what the served task spent (in the task's metadata), and the approval a served
#: task waits for (in its ``auth-required`` status message's metadata).
A2A_BUDGET_META: Final = "jamjet.dev/budget"
A2A_SPEND_META: Final = "jamjet.dev/spend"
A2A_APPROVAL_META: Final = "jamjet.dev/approval"
#: Memo key of a workflow that serves an A2A task (its context, skill, message id, caller).
A2A_TASK_MEMO: Final = "jamjet.a2a.served"
#: Query answering what a run with a run budget has spent against it (``RunSpend``).
BUDGET_QUERY: Final = "jamjet.budget.spent"
#: The audit event that closes a run's trail (completed or failed).
RUN_CLOSED: Final = "run.closed"
#: The audit event kind recording each memory call once it is done.
MEMORY_EVENT_KINDS: Final = {
    CONTEXT_ACTIVITY: "memory.read",
    FACTS_ACTIVITY: "memory.read",
    INGEST_ACTIVITY: "memory.write",
    FORGET_ACTIVITY: "memory.forget",
}
#: Patch marker of the runs whose ``run.closed`` the worker records as it completes the run
#: (``_shared._closing``); runs without it recorded it with a local activity and replay so.
CLOSED_BY_WORKER_PATCH: Final = "jamjet.run-closed-by-worker"
#: Key, in an MCP ``tools/call`` request's ``_meta``, of the call's idempotency key.
MCP_IDEMPOTENCY_META: Final = "jamjet.dev/idempotency-key"


def fold_name(name: str) -> str:
    """The form names and globs are compared in: NFKC, then case-folded.

    Args:
        name: A tool, model, activity or action name (or a glob).

    Returns:
        The folded text.
    """
    return unicodedata.normalize("NFKC", name).casefold()
