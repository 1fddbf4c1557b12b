"""Run gate 2 end to end and print what happened, read back from the audit trail.

    .venv/bin/python -m starters.policy_gate

Starts the local model server (scripted to request ``delete_database`` first), runs the
``support`` workflow, then prints the showcase's lines from the audit store and from what the
model received next.

Where it runs (``starters/_stack.py``): on the Temporal server already up (``jamjet dev``,
./dev-server.sh, or ``TEMPORAL_ADDRESS``), recording in the audit store ``jamjet audit`` reads,
else on a throwaway dev server of its own. It prints the run id first and, last, the ``jamjet``
commands that show the run.
"""

from __future__ import annotations

import asyncio
import json
import uuid

from temporalio.worker import Worker

from activities.notes import delete_database, read_files, search
from jamjet_temporal import JamJetConfig, JamJetPlugin, acting_as
from jamjet_temporal.approvals import ApprovalConfig, SigningIdentity, TrustedClient
from jamjet_temporal.audit import open_store
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule, ScriptToolCall
from jamjet_temporal.plugin import AuditConfig, LLMConfig
from starters._stack import stack
from workflows.policy_gate import assistant, support

QUESTION = "Clean up the staging database, then tell me what ships in v2.3."


def script(marker: str) -> list[ScriptRule]:
    """The model's side of the story: try the forbidden tool, then behave."""
    return [
        ScriptRule(
            id="assistant",
            marker=marker,
            responses=[
                ScriptResponse(
                    tool_calls=[
                        ScriptToolCall(name="delete_database", arguments={"name": "staging"})
                    ]
                ),
                ScriptResponse(
                    tool_calls=[ScriptToolCall(name="search", arguments={"query": "v2.3"})]
                ),
                ScriptResponse(content="v2.3 ships the policy violations panel."),
            ],
        )
    ]


async def main(audit_url: str | None = None, address: str | None = None) -> list[str]:
    """Run the demo; returns (and prints) the showcase's console lines.

    Args:
        audit_url: The audit store; None: see ``starters._stack``.
        address: The Temporal server; None: the configured one if up, else a throwaway one.
    """
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    async with stack(address, audit_url=audit_url) as where, ModelServer() as model:
        run_id = f"exec_{uuid.uuid4().hex[:8]}"
        where.announce(run_id)
        model.add_rules(script(run_id))
        # The support portal signs who each run acts for; the workers trust its key.
        portal = SigningIdentity.generate("support-portal")
        trusted = TrustedClient(
            id="support-portal", public_key=portal.public_key, acts_for=("*@example.com",)
        )
        config = JamJetConfig(
            llm=LLMConfig(base_url=model.base_url),
            audit=AuditConfig(store=where.audit_store),
            approvals=ApprovalConfig(clients=(trusted,)),
        )
        client = await where.connect(plugins=[JamJetPlugin(config)])
        async with Worker(
            client,
            task_queue="gate-demo",
            workflows=[support],
            activities=[search, read_files, delete_database],
        ):
            with acting_as("sunil@example.com", signer=portal):
                result = await client.execute_workflow(
                    support.run, f"{QUESTION} [{run_id}]", id=run_id, task_queue="gate-demo"
                )
        store = open_store(where.audit_store)
        try:
            events = await store.events(run_id)
        finally:
            await store.close()
        denied = next(
            e.event
            for e in events
            if e.event.kind == "policy.decision" and e.event.data["decision"] == "BLOCKED"
        )
        tool = str(denied.data["subject"])
        allowed = sorted(t.__name__ for t in (search, read_files))
        say(f"▸ [{assistant.__name__}] agent requests tool: {tool}")
        say(f"▸ Policy: ALLOWED_TOOLS = {{{', '.join(allowed)}}}")
        say(f"▸ Decision: {denied.data['decision']} · {denied.data['reason']}")
        say(f"▸ Audit: {denied.id} → policy.deny[{tool}]")
        # What the model was sent right after the refusal (the local server logged it).
        reply = next(
            m["content"]
            for call in model.calls()
            if run_id in json.dumps(call["messages"])
            for m in call["messages"]
            if m.get("role") == "tool"
        )
        say(f'▸ Agent: receives "{reply}"')
        say(f"▸ Answer: {result.output}")
    where.inspect(run_id)
    return lines


if __name__ == "__main__":
    asyncio.run(main())
