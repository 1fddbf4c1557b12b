"""Caller identity, enforced: a token signed per delegation (EdDSA JWT, PyJWT), verified by the
served agent against its trusted callers; refused, with the reason and HTTP 401, when missing,
expired, for another audience, from an unknown caller or forged; both audit trails record it;
the card advertises the scheme; a caller sees only its own tasks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from a2a.types.a2a_pb2 import GetTaskRequest, SendMessageRequest
from a2a.utils.errors import TaskNotFoundError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin, acting_as
from jamjet_temporal.a2a import CallerIdentity, TrustedCallers, generate_caller_key
from jamjet_temporal.a2a._token import CallerRefused
from jamjet_temporal.approvals._load import ApprovalConfig
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.errors import KeyFileError
from jamjet_temporal.plugin import AuditConfig
from tests.a2a.a2a_workflows import Delegate
from tests.a2a.served_workflows import summarize
from tests.a2a.serving import audit_events, card_of, message, plain_client, send, serving
from tests.a2a.test_a2a_run import root
from tests.identities import PORTAL, TRUSTED_PORTAL

URL = "http://127.0.0.1:9999"
COORDINATOR = CallerIdentity.generate("coordinator")
STRANGER = CallerIdentity.generate("stranger")


def test_a_token_verifies_for_its_audience_and_names_caller_and_user() -> None:
    trusted = TrustedCallers({"coordinator": COORDINATOR.public_key})
    token, claims = COORDINATOR.sign(URL + "/", user="bob@example.com", message_id="m-1")
    seen = trusted.verify(token, URL)
    assert (seen.agent, seen.user, seen.message_id) == ("coordinator", "bob@example.com", "m-1")
    assert seen.token_id == claims["jti"] and seen.key_id == COORDINATOR.key_id
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("missing", "no caller token"),
        ("not a jwt", "not a JWT"),
        ("expired", "expired at"),
        ("wrong audience", "is for audience 'http://127.0.0.1:1234', not this agent"),
        ("unknown caller", "unknown caller 'stranger'"),
        ("forged", "does not verify with the key trusted for 'coordinator'"),
        ("hmac", "only EdDSA is accepted"),
        ("too long", "accepts at most 900 s"),
        ("future", "not valid yet"),
    ],
)
def test_tokens_that_do_not_prove_a_trusted_caller_are_refused(case: str, said: str) -> None:
    trusted = TrustedCallers({"coordinator": COORDINATOR.public_key})
    now = datetime.now(UTC)
    forger = CallerIdentity("coordinator", Ed25519PrivateKey.generate())
    token: str | None = {
        "missing": lambda: None,
        "not a jwt": lambda: "not-a-token",
        "expired": lambda: COORDINATOR.sign(URL, now=now - timedelta(minutes=10))[0],
        "wrong audience": lambda: COORDINATOR.sign("http://127.0.0.1:1234")[0],
        "unknown caller": lambda: STRANGER.sign(URL)[0],
        "forged": lambda: forger.sign(URL)[0],
        "hmac": lambda: jwt.encode(
            {"sub": "coordinator", "aud": URL, "exp": now + timedelta(minutes=1)},
            "secret-at-least-32-bytes-long-for-hmac",
            algorithm="HS256",
        ),
        "too long": lambda: COORDINATOR.sign(URL, ttl=timedelta(hours=1))[0],
        "future": lambda: COORDINATOR.sign(URL, now=now + timedelta(minutes=5))[0],
    }[case]()
    with pytest.raises(CallerRefused) as refused:
        trusted.verify(token, URL)
    assert said in refused.value.reason


def test_a_caller_key_file_names_its_agent(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "coordinator.a2a.key"
    made = generate_caller_key("coordinator", path)
    loaded = CallerIdentity.load(path)
    assert (loaded.agent, loaded.public_key) == ("coordinator", made.public_key)
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(KeyFileError, match="belongs to agent 'coordinator'"):
        CallerIdentity.load(path, agent="other")
    with pytest.raises(KeyFileError, match="already"):
        generate_caller_key("coordinator", path)


def _rpc(message_id: str) -> dict[str, Any]:
    sent = message("tides", skill="test-served.summarize", message_id=message_id)
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {"message": json_format.MessageToDict(sent)},
    }


async def test_the_served_agent_refuses_with_401_and_records_it(
    temporal_server: DevServer, tmp_path: Path
) -> None:
    trusted = {"coordinator": COORDINATOR.public_key}
    async with serving(
        temporal_server.address, [summarize], [summarize], tmp_path, trusted_callers=trusted
    ) as served:
        # The card is public and advertises the scheme.
        card = await card_of(served.url)
        scheme = card.security_schemes["jamjet-caller"].http_auth_security_scheme
        assert (scheme.scheme, scheme.bearer_format) == ("bearer", "JWT")
        assert "EdDSA" in scheme.description
        assert list(card.security_requirements[0].schemes) == ["jamjet-caller"]

        now = datetime.now(UTC)
        cases = {
            "missing": (None, "no caller token"),
            "expired": (
                COORDINATOR.sign(served.url, now=now - timedelta(minutes=10))[0],
                "expired at",
            ),
            "wrong audience": (COORDINATOR.sign("http://127.0.0.1:1")[0], "is for audience"),
            "unknown key": (STRANGER.sign(served.url)[0], "unknown caller 'stranger'"),
        }
        async with httpx.AsyncClient(timeout=10) as http:
            for case, (token, said) in cases.items():
                headers = {"A2A-Version": "1.0"}
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                answer = await http.post(
                    served.url + "/", json=_rpc(uuid.uuid4().hex), headers=headers
                )
                assert answer.status_code == 401, case
                challenge = answer.headers["www-authenticate"]
                assert challenge.startswith('Bearer realm="test-served.summarize"'), challenge
                assert said in challenge and said in answer.json()["error_description"], case
            good = COORDINATOR.sign(served.url)[0]
            answer = await http.post(
                served.url + "/",
                json=_rpc(uuid.uuid4().hex),
                headers={"Authorization": f"Bearer {good}", "A2A-Version": "1.0"},
            )
            assert answer.status_code == 200 and "result" in answer.json()
        refused = [e.data for e in await served.events() if e.data.get("decision") == "REFUSED"]
        assert len(refused) == 4
        reasons = " | ".join(str(r["reason"]) for r in refused)
        for _, said in cases.values():
            assert said in reasons
        assert {r["caller"] for r in refused} == {None, "coordinator", "stranger"}


async def test_a_caller_sees_only_its_own_tasks(temporal_server: DevServer, tmp_path: Path) -> None:
    trusted = {"coordinator": COORDINATOR.public_key, "stranger": STRANGER.public_key}
    async with serving(
        temporal_server.address, [summarize], [summarize], tmp_path, trusted_callers=trusted
    ) as served:
        mine = {"Authorization": f"Bearer {COORDINATOR.sign(served.url)[0]}"}
        theirs = {"Authorization": f"Bearer {STRANGER.sign(served.url)[0]}"}
        async with plain_client(served.url, streaming=False, headers=mine) as client:
            events = await send(client, SendMessageRequest(message=message("x")))
            task_id = events[-1].task.id
            assert (await client.get_task(GetTaskRequest(id=task_id))).id == task_id
        async with plain_client(served.url, streaming=False, headers=theirs) as client:
            with pytest.raises(TaskNotFoundError):
                await client.get_task(GetTaskRequest(id=task_id))


async def test_a_signed_delegation_is_accepted_and_both_sides_record_it(
    temporal_server: DevServer, tmp_path: Path, task_queue: str
) -> None:
    key_file = tmp_path / "keys" / "coordinator.a2a.key"
    caller = generate_caller_key("coordinator", key_file)
    stranger_file = tmp_path / "keys" / "stranger.a2a.key"
    generate_caller_key("stranger", stranger_file)
    async with serving(
        temporal_server.address,
        [summarize],
        [summarize],
        tmp_path,
        trusted_callers={"coordinator": caller.public_key},
    ) as served:
        caller_audit = f"sqlite:///{tmp_path / 'caller.db'}"
        config = JamJetConfig(
            audit=AuditConfig(store=caller_audit),
            approvals=ApprovalConfig(clients=(TRUSTED_PORTAL,)),
            a2a_agents={
                "research": {
                    "url": served.url,
                    "auth": {"type": "signed", "key_file": str(key_file)},
                },
                "research-as-stranger": {
                    "url": served.url + "/",
                    "auth": {"type": "signed", "key_file": str(stranger_file)},
                },
            },
        )
        client = await Client.connect(temporal_server.address, plugins=[JamJetPlugin(config)])
        async with Worker(client, task_queue=task_queue, workflows=[Delegate]):
            run_id = f"signed-{uuid.uuid4().hex[:8]}"
            with acting_as("bob@example.com", signer=PORTAL):
                result = await client.execute_workflow(
                    Delegate.run,
                    args=["research", "test-served.summarize", "tides", None, {}],
                    id=run_id,
                    task_queue=task_queue,
                )
            assert result == {"topic": "tides", "summary": "NOTES ON TIDES"}

            refused_id = f"stranger-{uuid.uuid4().hex[:8]}"
            with pytest.raises(WorkflowFailureError) as failed:
                await client.execute_workflow(
                    Delegate.run,
                    args=["research-as-stranger", "test-served.summarize", "x", None, {}],
                    id=refused_id,
                    task_queue=task_queue,
                )
            error = root(failed.value.cause)  # type: ignore[arg-type]
            assert error.type == "RemoteAgentError" and error.non_retryable
            assert "refused this caller (HTTP 401)" in error.message
            assert "unknown caller 'stranger'" in error.message

        # The caller's trail: the token it signed (for whom, for which audience).
        signed = [
            e.data for e in await audit_events(caller_audit, run_id) if e.kind == "a2a.identity"
        ]
        assert [s["decision"] for s in signed] == ["SIGNED"]
        assert signed[0]["caller"] == "coordinator" and signed[0]["user"] == "bob@example.com"
        assert signed[0]["audience"] == served.url and signed[0]["tool"] == (
            "a2a:research.test-served.summarize"
        )
        refusals = [
            e.data["decision"]
            for e in await audit_events(caller_audit, refused_id)
            if e.kind == "a2a.identity"
        ]
        assert refusals == ["SIGNED", "REFUSED_BY_AGENT"]
        # The callee's trail: the task accepted for that caller and user, with that token.
        accepted = [e for e in await served.events() if e.data.get("decision") == "ACCEPTED"]
        assert len(accepted) == 1
        data = accepted[0].data
        assert (data["caller"], data["user"]) == ("coordinator", "bob@example.com")
        assert data["token_id"] == signed[0]["token_id"]


def test_the_cli_makes_caller_keys_and_refuses_to_serve_nobody_in_particular(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    from tests.a2a.serving import ROOT

    key = tmp_path / "coordinator.a2a.key"
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "jamjet_temporal",
            "a2a",
            "keygen",
            "coordinator",
            "--out",
            str(key),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert made.returncode == 0, made.stderr
    public = CallerIdentity.load(key).public_key
    assert f"--trust coordinator={public}" in made.stdout
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "jamjet_temporal",
            "a2a",
            "serve",
            "tests.a2a.served_workflows:plan",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert refused.returncode == 2
    assert "whom does this agent serve? give --trust NAME=PUBLIC_KEY" in refused.stderr
