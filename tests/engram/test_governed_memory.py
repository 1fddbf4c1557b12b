"""Memory is governed like tools: decided by the policy, recorded without its content.

On the real dev server: each ``engram.*`` call a workflow makes is decided as ``engram.read``,
``engram.write`` or ``engram.forget`` (a policy can refuse it, for the run or for one agent),
and writes a decision before it runs and a ``memory.*`` event after it: who, whose, how many
items and tokens, ids; never a topic, a value or a turn.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client
from temporalio.worker import Replayer, Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin, acting_as, engram
from jamjet_temporal.approvals._load import ApprovalConfig
from jamjet_temporal.audit import open_store
from jamjet_temporal.audit._export import export_bundle, seal_bundle
from jamjet_temporal.audit._keys import fingerprint, load_or_create_signing_key
from jamjet_temporal.audit._verify import verify_bundle
from jamjet_temporal.cli import DevServer
from jamjet_temporal.plugin import AuditConfig, MemoryConfig
from jamjet_temporal.policy import Policy, PolicyScopes, Rule, decide_memory
from tests.engram import engram_workflows as wf
from tests.identities import PORTAL, TRUSTED_PORTAL
from tests.test_gate import events_of


def governed_config(tmp_path: Path, policy: Policy | None = None) -> tuple[JamJetConfig, str]:
    audit = f"sqlite:///{tmp_path / 'audit.db'}"
    config = JamJetConfig(
        audit=AuditConfig(store=audit),
        memory=MemoryConfig(store=f"sqlite:///{tmp_path / 'memory.db'}"),
        approvals=ApprovalConfig(clients=(TRUSTED_PORTAL,)),
        policy=policy,
    )
    return config, audit


async def run_as(
    temporal_server: DevServer, config: JamJetConfig, workflow: type, user: str
) -> tuple[object, str, Client]:
    client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
    queue = f"mem-{uuid.uuid4().hex[:8]}"
    run_id = f"exec_{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[workflow]):
        with acting_as(user, signer=PORTAL):
            result = await client.execute_workflow(
                workflow.run,  # type: ignore[attr-defined]
                user,
                id=run_id,
                task_queue=queue,
            )
    return result, run_id, client


async def test_each_memory_call_is_decided_and_recorded_without_its_content(
    tmp_path: Path, temporal_server: DevServer
) -> None:
    config, audit = governed_config(tmp_path)
    user = f"sunil-{uuid.uuid4().hex[:6]}"
    result, run_id, client = await run_as(temporal_server, config, wf.governed, user)
    context, found, forgotten = result  # type: ignore[misc]
    events = [s.event for s in await events_of(audit, run_id)]
    memory = [e for e in events if e.kind.startswith("memory.")]
    assert [(e.kind, e.data["call"]) for e in memory] == [
        ("memory.write", "record"),
        ("memory.write", "record"),
        ("memory.read", "context_for"),
        ("memory.read", "facts"),
        ("memory.forget", "forget"),
    ]
    # Each one after its decision, which names the memory call as a policy sees it.
    decisions = {e.id: e for e in events if e.kind == "policy.decision"}
    order = [e.id for e in events]
    for event in memory:
        decision = decisions[str(event.data["decision_event"])]
        assert decision.data["subject"] == event.data["tool"]
        assert decision.data["decision"] == "ALLOWED"
        assert order.index(decision.id) < order.index(event.id)
    assert [e.data["tool"] for e in memory] == [
        "engram.write",
        "engram.write",
        "engram.read",
        "engram.read",
        "engram.forget",
    ]
    # Who read or wrote whose memory, and how much.
    for event in memory:
        assert event.data["owner"] == {"user": user, "org": None}
        assert event.actor["user"] == user
        assert event.actor["workflow_type"] == "test-engram.governed"
    read = memory[2].data
    assert read["tokens_used"] == context.tokens_used  # type: ignore[attr-defined]
    assert read["facts"] == len(context.facts)  # type: ignore[attr-defined]
    assert memory[3].data["facts"] == len(found) == 2  # type: ignore[arg-type]
    # Forget records what it erased: counts and the ids of the facts.
    erased = memory[4].data
    assert erased["facts"] == forgotten.facts == 2  # type: ignore[attr-defined]
    assert erased["fact_ids"] == sorted(f.id for f in found)  # type: ignore[attr-defined]
    assert erased["session_names"] == ["s2", "s6"]
    # Never the content: no value, no topic, in any event of the run.
    trail = json.dumps([e.model_dump(mode="json") for e in events])
    for content in ("Amsterdam", "Pune", "where does the user live"):
        assert content not in trail
    # Replay-safe.
    history = await client.get_workflow_handle(run_id).fetch_history()
    await Replayer(workflows=[wf.governed], plugins=[JamJetPlugin(config)]).replay_workflow(history)


def resealed_without(
    bundle: dict[str, Any], dropped: dict[str, Any], key: Ed25519PrivateKey
) -> dict[str, Any]:
    """What a dishonest exporter hands over: the bundle without one event, signed again."""
    return seal_bundle(
        bundle["run_id"],
        [e for e in bundle["events"] if e is not dropped],
        include=bundle["include"],
        redactions=[],
        history=bundle["history"],
        key=key,
    )


async def test_a_bundle_missing_a_memory_record_is_incomplete(
    tmp_path: Path, temporal_server: DevServer
) -> None:
    config, audit = governed_config(tmp_path)
    user = f"noor-{uuid.uuid4().hex[:6]}"
    _, run_id, client = await run_as(temporal_server, config, wf.governed, user)
    history = (await client.get_workflow_handle(run_id).fetch_history()).to_json()
    key = load_or_create_signing_key(tmp_path / "keys" / "audit.key")
    store = open_store(audit)
    try:
        bundle = await export_bundle(store, run_id, history_json=history, key=key)
    finally:
        await store.close()
    verdict = verify_bundle(bundle, trusted_keys=[fingerprint(key)])
    assert verdict.problems == [] and verdict.completeness_ok is True
    # A dishonest exporter drops the record of the forget (what was erased) and signs the
    # rest: the history shows the memory call completed, so the bundle is incomplete.
    erased = next(e for e in bundle["events"] if e["kind"] == "memory.forget")
    forged = resealed_without(bundle, erased, key)
    verdict = verify_bundle(forged, trusted_keys=[fingerprint(key)])
    assert verdict.integrity_ok and verdict.completeness_ok is False
    [problem] = verdict.completeness_problems
    assert problem.startswith(f"activity {erased['data']['activity_id']} (jamjet.engram.forget)")
    assert problem.endswith("but has no memory.* event")
    # And without the decision of a read, the read is undecided.
    decision = next(
        e
        for e in bundle["events"]
        if e["kind"] == "policy.decision" and e["data"]["subject"] == "engram.read"
    )
    forged = resealed_without(bundle, decision, key)
    verdict = verify_bundle(forged, trusted_keys=[fingerprint(key)])
    assert verdict.completeness_ok is False
    assert "has no policy decision event" in verdict.completeness_problems[0]
    assert "jamjet.engram." in verdict.completeness_problems[0]


async def test_a_policy_refuses_memory_writes_and_the_refusal_is_recorded(
    tmp_path: Path, temporal_server: DevServer
) -> None:
    policy = Policy(rules=(Rule(match="engram.write", action="block"),))
    config, audit = governed_config(tmp_path, policy)
    user = f"mira-{uuid.uuid4().hex[:6]}"
    result, run_id, _ = await run_as(temporal_server, config, wf.write_then_read, user)
    # The rule refuses the write; reading goes on (a policy with rules does not deny memory
    # calls no rule names).
    assert result == "write refused (engram.write, run); read 0 items"
    events = [s.event for s in await events_of(audit, run_id)]
    refusals = [e for e in events if e.data.get("decision") == "BLOCKED"]
    assert [(e.kind, e.data["subject"], e.data["rule"]) for e in refusals] == [
        ("policy.decision", "engram.write", "engram.write")
    ]
    assert not [e for e in events if e.kind == "memory.write"]
    assert [e.data["call"] for e in events if e.kind == "memory.read"] == ["context_for"]
    store = config.memory.store
    assert store is not None
    assert await engram.facts(user, store=store) == []


async def test_an_agent_with_read_only_memory_is_refused_a_write(
    tmp_path: Path, temporal_server: DevServer
) -> None:
    config, audit = governed_config(tmp_path)
    user = f"ada-{uuid.uuid4().hex[:6]}"
    result, run_id, _ = await run_as(temporal_server, config, wf.agent_reads, user)
    assert result == ("read 1 items; write refused (engram.write, agent:test-engram.reader-agent)")
    events = [s.event for s in await events_of(audit, run_id)]
    refused = [e for e in events if e.data.get("decision") == "BLOCKED"]
    assert len(refused) == 1
    assert refused[0].actor["agent"] == "test-engram.reader-agent"
    # The workflow's own write (outside the agent) went through.
    writes = [e for e in events if e.kind == "memory.write"]
    assert [e.actor.get("agent") for e in writes] == [None]


def test_memory_is_decided_only_by_entries_that_name_it() -> None:
    def decided(*policies: Policy) -> dict[str, str]:
        scopes = PolicyScopes(scopes=tuple((f"s{i}", p) for i, p in enumerate(policies)))
        return {
            name: decide_memory(scopes, name).decision
            for name in ("engram.read", "engram.write", "engram.forget")
        }

    allowed = {"engram.read": "ALLOWED", "engram.write": "ALLOWED", "engram.forget": "ALLOWED"}
    # Rules about tools (default deny for tools) and an allow-list of tools: memory untouched.
    assert decided(Policy(rules=(Rule(match="search", action="allow"),))) == allowed
    assert decided(Policy.allow_list(["search"], source="test")) == allowed
    # A rule, a blocked glob or an approval that names memory decides it.
    assert decided(Policy(blocked_tools=("engram.*",))) == dict.fromkeys(allowed, "BLOCKED")
    assert decided(Policy(require_approval_for=("engram.forget",)))["engram.forget"] == (
        "WAITING_FOR_APPROVAL"
    )
    assert decided(Policy(rules=(Rule(match="*", action="block"),))) == dict.fromkeys(
        allowed, "BLOCKED"
    )
    # Look-alike spellings are the same name (as for tools): folding applies.
    assert decided(Policy(blocked_tools=("ENGRAM.WRITE",)))["engram.write"] == "BLOCKED"
