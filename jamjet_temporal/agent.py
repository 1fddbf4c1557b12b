"""Agents with tools, durably: the model proposes tool calls, tools run, results go back.

Workflow side (pure): ``agent.run`` runs in workflow code; each tool is a ``@task`` activity
decided by the policy gate. The implementation lives in ``jamjet_temporal.authoring``.
"""

from jamjet_temporal.authoring._agent import AgentResult, AgentToolCall, run, tool_schema

__all__ = ["AgentResult", "AgentToolCall", "run", "tool_schema"]
