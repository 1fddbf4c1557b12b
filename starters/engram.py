"""Run gate 6 end to end: seven sessions remembered, the eighth starts from memory.

    .venv/bin/python -m starters.engram

Each earlier session is remembered by a workflow (``engram.remember``: its turns are kept and a
model call with structured output extracts the durable facts; the local model server scripts
those answers). Session 8 asks ``engram.context_for(user="sunil", topic="release notes",
budget_tokens=400)`` and prints the context block.

Where it runs (``starters/_stack.py``): on the Temporal server already up (``jamjet dev``,
./dev-server.sh, or ``TEMPORAL_ADDRESS``), recording in the audit store ``jamjet audit`` reads,
else on a throwaway dev server of its own. It prints the run id first and, last, the ``jamjet``
commands that show the run.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin, acting_as
from jamjet_temporal.approvals import ApprovalConfig, SigningIdentity, TrustedClient
from jamjet_temporal.memory import Context, Message
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule
from jamjet_temporal.plugin import AuditConfig, LLMConfig, MemoryConfig
from starters._stack import stack
from workflows.engram import answer, remember_session

USER = "sunil"

# (session, date, turns as (role, text), facts the extraction finds as (attribute, value, turns))
SESSIONS: list[
    tuple[str, datetime, list[tuple[str, str]], list[tuple[str | None, str, list[int]]]]
] = [
    (
        "s1",
        datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
        [
            (
                "user",
                "Hi, I'm sunil. I lead JamJet Cloud, the hosted control plane for our agent "
                "runtime, and I write our release notes every sprint: what shipped, what changed "
                "for operators, and what users must do before they upgrade. They go out on "
                "Thursdays to the customer list and the community forum.",
            ),
            ("assistant", "Nice to meet you, sunil. How can I help?"),
            (
                "user",
                "Keep release notes short: I prefer concise answers in general, bullet points "
                "over paragraphs, plain verbs, no marketing adjectives anywhere, and the breaking "
                "changes first so nobody misses them.",
            ),
            ("assistant", "Understood, brief and to the point."),
        ],
        [(None, "sunil prefers concise answers", [3]), ("project", "JamJet Cloud", [1])],
    ),
    (
        "s2",
        datetime(2026, 3, 9, 10, 0, tzinfo=UTC),
        [
            ("user", "Working from Pune this quarter, so mornings suit me for calls."),
            ("assistant", "Got it: mornings, India time."),
            ("user", "Also training for a half marathon, ha."),
        ],
        [("location", "Pune", [1]), (None, "sunil is training for a half marathon", [3])],
    ),
    (
        "s3",
        datetime(2026, 3, 16, 10, 0, tzinfo=UTC),
        [
            ("user", "Our dashboards live in Grafana; can you explain histogram buckets?"),
            ("assistant", "Buckets count observations at or below each bound."),
        ],
        [(None, "sunil's team runs Grafana dashboards", [1])],
    ),
    (
        "s4",
        datetime(2026, 3, 23, 10, 0, tzinfo=UTC),
        [("user", "What's a good way to load-test a gRPC service?")],
        [],
    ),
    (
        "s5",
        datetime(2026, 3, 30, 10, 0, tzinfo=UTC),
        [
            ("user", "I switched my editor to Helix last week."),
            ("assistant", "Helix has good tree-sitter support."),
        ],
        [(None, "sunil uses the Helix editor", [1])],
    ),
    (
        "s6",
        datetime(2026, 4, 6, 10, 0, tzinfo=UTC),
        [
            ("user", "Big news: I moved to Amsterdam, so CET hours from now on."),
            ("assistant", "Congratulations on the move!"),
        ],
        [("location", "Amsterdam", [1])],
    ),
    (
        "s7",
        datetime(2026, 4, 13, 10, 0, tzinfo=UTC),
        [
            (
                "user",
                "We shipped the policy violations panel this week, and it leads the next "
                "release notes. It lists every denied or approval-gated tool call with the rule "
                "that matched, the run, the agent and the time; you can filter by tool, by "
                "policy scope and by outcome, jump from a row to the run's timeline, and export "
                "the filtered view to CSV or to a signed audit bundle for the compliance team. "
                "It stays fast on runs with ten thousand events, even on small, shared "
                "worker hosts.",
            ),
            ("assistant", "That sounds like a strong headline."),
        ],
        [(None, "shipped policy violations panel", [1])],
    ),
]

TOPIC = "release notes"
QUESTION = "Draft the release notes for this sprint."


def extraction_rules() -> list[ScriptRule]:
    """What the model answers to each session's extraction (structured output)."""
    rules = []
    for session, _, _, facts in SESSIONS:
        found = [{"attribute": a, "value": v, "turns": t} for a, v, t in facts]
        rules.append(
            ScriptRule(
                marker=f"Session: {session}\n",
                responses=[ScriptResponse(content=json.dumps({"facts": found}))],
            )
        )
    return rules


async def main(
    memory_url: str | None = None, *, quiet: bool = False, address: str | None = None
) -> Context:
    """Remember sessions 1-7, then print session 8's context; returns it.

    Args:
        memory_url: The memory store; None: a new temporary one.
        quiet: Print nothing.
        address: The Temporal server; None: the configured one if up, else a throwaway one.
    """
    memory_url = memory_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'memory.db'}"
    marker = uuid.uuid4().hex[:8]
    run_ids = [f"engram-demo-{session}-{marker}" for session, *_ in SESSIONS]
    run_ids.append(f"engram-demo-s8-{marker}")
    async with stack(address, quiet=quiet) as where, ModelServer() as model:
        where.announce(*run_ids)
        model.add_rules(extraction_rules())
        # The assistant's front end signs whom each run acts for; memory calls are bound
        # to that user, so a run can only read and write its own user's memory.
        frontend = SigningIdentity.generate("assistant-frontend")
        config = JamJetConfig(
            llm=LLMConfig(base_url=model.base_url),
            audit=AuditConfig(store=where.audit_store),
            memory=MemoryConfig(store=memory_url),
            approvals=ApprovalConfig(
                clients=(
                    TrustedClient(
                        id="assistant-frontend",
                        public_key=frontend.public_key,
                        acts_for=(USER,),
                    ),
                )
            ),
        )
        client = await where.connect(plugins=[JamJetPlugin(config)])
        queue = "engram-demo"
        async with Worker(client, task_queue=queue, workflows=[remember_session, answer]):
            with acting_as(USER, signer=frontend):
                for (session, at, turns, _), run_id in zip(SESSIONS, run_ids[:-1], strict=True):
                    await client.execute_workflow(
                        remember_session.run,
                        args=[
                            USER,
                            session,
                            at,
                            [Message(role=r, content=c) for r, c in turns],  # type: ignore[arg-type]
                        ],
                        id=run_id,
                        task_queue=queue,
                    )
                context, _ = await client.execute_workflow(
                    answer.run,
                    args=[USER, TOPIC, QUESTION],
                    id=run_ids[-1],
                    task_queue=queue,
                    result_type=tuple[Context, str],
                )
    if not quiet:
        print(context, flush=True)
    where.inspect(run_ids[-1], also=run_ids[:-1])
    return context


if __name__ == "__main__":
    asyncio.run(main())
