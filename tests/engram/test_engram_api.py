"""``engram.*`` in workflow code (as activities, on the real dev server) and in ordinary code."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer, Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin, acting_as, engram
from jamjet_temporal.approvals._load import ApprovalConfig
from jamjet_temporal.errors import EngramError, ExtractionError
from jamjet_temporal.memory import Message
from jamjet_temporal.modelserver import ModelServer, ScriptResponse, ScriptRule
from jamjet_temporal.plugin import AuditConfig, LLMConfig, MemoryConfig
from tests.engram import engram_workflows as wf
from tests.identities import PORTAL, TRUSTED_PORTAL

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def extraction(model: ModelServer, user: str, facts: list[dict[str, object]] | str) -> None:
    content = facts if isinstance(facts, str) else json.dumps({"facts": facts})
    model.add_rules(
        [ScriptRule(marker=f"User: {user}\n", responses=[ScriptResponse(content=content)])]
    )


async def test_remember_in_a_workflow_keeps_turns_and_extracted_facts(
    client: Client,
    task_queue: str,
    model_server: ModelServer,
    session_memory_url: str,
    jamjet_config: JamJetConfig,
) -> None:
    user = f"sunil-{uuid.uuid4().hex[:6]}"
    extraction(
        model_server,
        user,
        [
            {"attribute": None, "value": f"{user} prefers concise answers", "turns": [1]},
            {"attribute": "project", "value": "JamJet Cloud", "turns": [2, 9]},
        ],
    )
    messages = [
        Message(content="Please keep answers concise."),
        Message(content="I lead JamJet Cloud."),
        Message(role="assistant", content="Got it."),
    ]
    async with Worker(client, task_queue=task_queue, workflows=[wf.remember]):
        with acting_as(user, signer=PORTAL):
            handle = await client.start_workflow(
                wf.remember.run,
                args=[user, "s1", AT, messages],
                id=f"wf-{user}",
                task_queue=task_queue,
            )
        ingested = await handle.result()
    assert ingested.episodes == 3
    assert [(f.attribute, f.value, f.sources) for f in ingested.facts] == [
        (None, f"{user} prefers concise answers", ["s1:1"]),
        ("project", "JamJet Cloud", ["s1:2"]),  # turn 9 does not exist: dropped
    ]
    stored = await engram.facts(user, store=session_memory_url)
    assert {f.value for f in stored} == {f"{user} prefers concise answers", "JamJet Cloud"}
    assert all(f.valid_from == AT for f in stored)
    replayer = Replayer(workflows=[wf.remember], plugins=[JamJetPlugin(jamjet_config)])
    await replayer.replay_workflow(await handle.fetch_history())


async def test_extraction_asks_for_structured_output(
    model_server: ModelServer, tmp_path: Path
) -> None:
    # No script rule: the model server answers with an instance of the JSON schema it was
    # sent. Without the json_schema response format it would answer plain text.
    user = f"schema-{uuid.uuid4().hex[:6]}"
    ingested = await engram.remember(
        user,
        "s1",
        [{"role": "user", "content": "hello there"}],
        store=f"sqlite:///{tmp_path}/m.db",
    )
    assert ingested.episodes == 1
    assert all(isinstance(f.value, str) for f in ingested.facts)


async def test_a_bad_extraction_answer_is_a_clear_error(
    model_server: ModelServer, tmp_path: Path
) -> None:
    user = f"bad-{uuid.uuid4().hex[:6]}"
    extraction(model_server, user, "sure! here are the facts: ...")
    with pytest.raises(ExtractionError, match="not the JSON asked for") as caught:
        await engram.remember(
            user, "s1", [Message(content="hi")], store=f"sqlite:///{tmp_path}/m.db"
        )
    assert caught.value.answer == "sure! here are the facts: ..."


async def test_record_and_context_in_a_workflow_replays_cleanly(
    client: Client, task_queue: str, jamjet_config: JamJetConfig
) -> None:
    user = f"sunil-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=task_queue, workflows=[wf.record_then_context]):
        with acting_as(user, signer=PORTAL):
            handle = await client.start_workflow(
                wf.record_then_context.run,
                args=[user, "where does the user live"],
                id=f"wf-{user}",
                task_queue=task_queue,
            )
        history, context = await handle.result()
    assert [(f.value, f.current) for f in history] == [
        ("Pune", False),
        ("Amsterdam", True),
        (f"{user} prefers concise answers", True),
    ]
    assert context.facts[0].text == "location: Amsterdam"
    assert "▸ location: Amsterdam (superseded Pune, s6)" in str(context)
    assert context.tokens_used <= 400
    replayer = Replayer(workflows=[wf.record_then_context], plugins=[JamJetPlugin(jamjet_config)])
    await replayer.replay_workflow(await handle.fetch_history())


async def test_invalid_arguments_in_a_workflow_fail_it_with_a_typed_error(
    client: Client, task_queue: str
) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[wf.bad_budget]):
        with pytest.raises(WorkflowFailureError) as caught:
            with acting_as("sunil", signer=PORTAL):
                await client.execute_workflow(
                    wf.bad_budget.run,
                    "sunil",
                    id=f"wf-{uuid.uuid4().hex[:6]}",
                    task_queue=task_queue,
                )
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "EngramError"
    assert "budget_tokens" in cause.message


async def test_forget_in_a_workflow(
    client: Client, task_queue: str, session_memory_url: str
) -> None:
    user = f"gone-{uuid.uuid4().hex[:6]}"
    await engram.record(
        user, "Lisbon", attribute="location", session="s1", store=session_memory_url
    )
    async with Worker(client, task_queue=task_queue, workflows=[wf.forget]):
        with acting_as(user, signer=PORTAL):
            forgotten = await client.execute_workflow(
                wf.forget.run, user, id=f"wf-{user}", task_queue=task_queue
            )
    assert forgotten.facts == 1
    assert await engram.facts(user, include_superseded=True, store=session_memory_url) == []


async def test_ordinary_code_uses_the_store_directly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    await engram.record(
        "sunil",
        "Pune",
        attribute="location",
        session="s2",
        at=datetime(2026, 1, 2, tzinfo=UTC),
        store=url,
    )
    await engram.record(
        "sunil",
        "Amsterdam",
        attribute="location",
        session="s6",
        at=datetime(2026, 2, 2, tzinfo=UTC),
        store=url,
    )
    context = await engram.context_for(user="sunil", topic="location", budget_tokens=100, store=url)
    assert str(context).splitlines()[1] == "▸ location: Amsterdam (superseded Pune, s6)"
    assert (await engram.forget("sunil", store=url)).facts == 2
    with pytest.raises(EngramError, match="budget_tokens"):
        await engram.context_for(user="sunil", topic="x", budget_tokens=-1, store=url)
    with pytest.raises(EngramError, match="user"):
        await engram.record("", "x", session="s1", store=url)


async def test_memory_off_fails_with_a_clear_non_retryable_error(
    temporal_server: object, model_server: ModelServer, task_queue: str
) -> None:
    config = JamJetConfig(
        llm=LLMConfig(base_url=model_server.base_url),
        audit=AuditConfig(store=None),
        memory=MemoryConfig(store=None),
        approvals=ApprovalConfig(clients=(TRUSTED_PORTAL,)),
    )
    client = await Client.connect(
        temporal_server.address,
        plugins=[JamJetPlugin(config)],  # type: ignore[attr-defined]
    )
    async with Worker(client, task_queue=task_queue, workflows=[wf.forget]):
        with pytest.raises(WorkflowFailureError) as caught:
            with acting_as("x", signer=PORTAL):
                await client.execute_workflow(
                    wf.forget.run, "x", id=f"wf-{uuid.uuid4().hex[:6]}", task_queue=task_queue
                )
    assert "memory is off" in str(caught.value.cause.cause)  # type: ignore[union-attr]
