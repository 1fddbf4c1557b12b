"""Remote agents as configuration, the gate's name for a delegation, the typed errors and the
result shape (pure: no agent, no Temporal)."""

from __future__ import annotations

import pickle
from types import SimpleNamespace
from typing import Any

import pytest
from a2a.types.a2a_pb2 import Part
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Value

from jamjet_temporal import JamJetConfig
from jamjet_temporal._shared._wire import A2A_TASK_DETAIL
from jamjet_temporal.a2a import (
    A2ADelegation,
    ApiKeyAuth,
    BearerAuth,
    DelegationError,
    InputRequiredError,
    RemoteAgent,
    agents_from_mapping,
)
from jamjet_temporal.a2a._activities import kept_task, parts_value
from jamjet_temporal.a2a._types import delegation_problem
from jamjet_temporal.errors import ConfigError, ConfigFileError


def test_a_pipeline_block_declares_agents_by_alias() -> None:
    agents = agents_from_mapping(
        {
            "remote_agents": {
                "research": {
                    "url": "https://agents.example.com/research",
                    "auth": {"type": "bearer", "token_env": "RESEARCH_TOKEN"},
                },
                "risk": {
                    "url": "http://127.0.0.1:9000",
                    "agent_card_path": "/cards/risk.json",
                    "auth": {"type": "api_key", "key_env": "RISK_KEY"},
                    "timeout_seconds": 5,
                },
                "plain": "https://plain.example.com",
            }
        },
        "flow.yaml",
    )
    assert agents["research"].auth == BearerAuth(token_env="RESEARCH_TOKEN")
    assert agents["risk"].auth == ApiKeyAuth(header="X-API-Key", key_env="RISK_KEY")
    assert agents["risk"].agent_card_path == "/cards/risk.json"
    assert agents["plain"] == RemoteAgent(url="https://plain.example.com")
    assert agents_from_mapping(None) == {} and agents_from_mapping({}) == {}


@pytest.mark.parametrize(
    ("block", "said"),
    [
        (["research"], "the a2a block is a list"),
        ({"agents": {}}, "unknown keys: agents"),
        ({"remote_agents": ["x"]}, "a2a.remote_agents is a list"),
        ({"remote_agents": {"re.search": {"url": "https://x"}}}, "alias 're.search'"),
        ({"remote_agents": {"r": {"url": "ftp://x"}}}, "is not an http:// or https:// URL"),
        ({"remote_agents": {"r": {"url": "https://ехample.com"}}}, "outside printable ASCII"),
        ({"remote_agents": {"r": {"url": "https://x", "token": "t"}}}, "token"),
        ({"remote_agents": {"r": {"url": "https://x", "auth": {"type": "oauth"}}}}, "auth"),
        (
            {"remote_agents": {"r": {"url": "https://x", "auth": {"token_env": "sk-live-123"}}}},
            "auth",
        ),
        (
            {
                "remote_agents": {
                    "r": {"url": "https://x", "auth": {"type": "bearer", "token_env": "sk-12"}}
                }
            },
            "never the secret itself",
        ),
        (
            {
                "remote_agents": {
                    "r": {"url": "https://x", "auth": {"type": "api_key", "header": "X Key"}}
                }
            },
            "key_env",
        ),
        ({"remote_agents": {"r": {"url": "https://x", "timeout_seconds": 0}}}, "positive"),
        ({"remote_agents": {"r": 3}}, "is a int, not a mapping"),
    ],
)
def test_a_bad_block_names_the_file_the_agent_and_the_fix(block: Any, said: str) -> None:
    with pytest.raises(ConfigFileError) as raised:
        agents_from_mapping(block, "flow.yaml")
    text = str(raised.value)
    assert said in text and "flow.yaml" in text
    assert raised.value.fix


def test_the_plugin_config_takes_models_or_dicts_and_validates_them() -> None:
    config = JamJetConfig(
        a2a_agents={
            "research": RemoteAgent(url="https://r.example.com"),
            "risk": {"url": "https://k.example.com", "auth": {"type": "bearer", "token_env": "K"}},
        }
    )
    assert config.a2a_agents is not None
    assert config.a2a_agents["risk"] == RemoteAgent(
        url="https://k.example.com", auth=BearerAuth(token_env="K")
    )
    assert JamJetConfig().a2a_agents is None
    assert JamJetConfig(a2a_agents={}).a2a_agents == {}
    with pytest.raises(ConfigError, match=r"JamJetConfig\.a2a_agents"):
        JamJetConfig(a2a_agents={"bad alias": {"url": "https://x"}})
    with pytest.raises(ConfigError, match="must map agent aliases"):
        JamJetConfig(a2a_agents=["research"])  # type: ignore[arg-type]


def test_credentials_are_read_from_the_given_environment_only() -> None:
    agent = RemoteAgent(url="https://x", auth=BearerAuth(token_env="TOK"))
    headers, secrets = agent.headers({"TOK": "abc123"})
    assert headers == {"Authorization": "Bearer abc123"} and secrets == {"abc123": "${TOK}"}
    keyed = RemoteAgent(url="https://x", auth=ApiKeyAuth(header="X-Key", key_env="KEY"))
    assert keyed.headers({"KEY": "k-1"})[0] == {"X-Key": "k-1"}
    assert RemoteAgent(url="https://x").headers({}) == ({}, {})
    with pytest.raises(ConfigError, match="TOK is not set in the worker's environment"):
        agent.headers({})
    # The declaration itself holds names only: it may go through history.
    assert "abc123" not in agent.model_dump_json()


@pytest.mark.parametrize(
    ("agent", "skill", "subject", "problem"),
    [
        ("research", "echo", "a2a:research.echo", None),
        ("research", None, "a2a:research.*", None),
        ("http://127.0.0.1:8000", "echo", "a2a:http://127.0.0.1:8000.echo", None),
        ("re.search", "echo", "a2a:re.search.echo", "alias 're.search'"),
        ("research", "ec*ho", "a2a:research.ec*ho", "skill id 'ec*ho'"),
        ("research", "еcho", "a2a:research.еcho", "skill id"),  # Cyrillic е
        ("https://x/\u200b", "echo", "a2a:https://x/\u200b.echo", "printable ASCII"),
        ("", "echo", "a2a:.echo", "alias ''"),
    ],
)
def test_a_delegation_is_the_tool_a2a_alias_dot_skill(
    agent: str, skill: str | None, subject: str, problem: str | None
) -> None:
    call = A2ADelegation(agent=agent, skill=skill, input="x", message_id="m-1")
    assert call.subject == subject
    found = delegation_problem(call)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_delegation_errors_carry_their_fields_and_pickle() -> None:
    error = InputRequiredError(
        "research", "ask", "which year?", state="input-required", task_id="t-1"
    )
    assert isinstance(error, DelegationError)
    assert str(error) == (
        "delegation to 'research' (skill 'ask') ended input-required (remote task t-1): which year?"
    )
    assert error.details() == {
        "agent": "research",
        "skill": "ask",
        "state": "input-required",
        "task_id": "t-1",
        "reason": "which year?",
    }
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is InputRequiredError and copy.details() == error.details()
    unsent = DelegationError("research", "nope", "the card lists no skill 'nope'")
    assert str(unsent).startswith("delegation to 'research' (skill 'nope') not sent:")


def _data(value: Any) -> Part:
    return Part(data=json_format.ParseDict(value, Value()))


def test_parts_become_one_json_value() -> None:
    assert parts_value([]) is None
    assert parts_value([Part(text='{"stays": "text"}')]) == '{"stays": "text"}'
    assert parts_value([_data({"n": 3, "x": 2.5, "ok": True, "l": [1, None]})]) == {
        "n": 3,
        "x": 2.5,
        "ok": True,
        "l": [1, None],
    }
    assert parts_value([Part(text="a"), _data([1, 2])]) == ["a", [1, 2]]
    assert parts_value([Part(url="https://x/f.pdf", media_type="application/pdf")]) == {
        "url": "https://x/f.pdf",
        "media_type": "application/pdf",
    }
    assert parts_value([Part(raw=b"\x00\x01", filename="b.bin")]) == {
        "raw_base64": "AAE=",
        "filename": "b.bin",
    }


def test_a_retry_finds_the_task_its_step_recorded_and_only_that() -> None:
    kept = {"jamjet": {A2A_TASK_DETAIL: {"task_id": "t-9", "message_id": "m-1"}, "spent": {}}}
    info: Any = SimpleNamespace(heartbeat_details=[kept])
    assert kept_task(info, "m-1") == "t-9"
    assert kept_task(info, "m-2") is None, "another step's task is not followed"
    assert kept_task(SimpleNamespace(heartbeat_details=[]), "m-1") is None  # type: ignore[arg-type]
    assert kept_task(SimpleNamespace(heartbeat_details=["x", {"jamjet": 1}]), "m-1") is None  # type: ignore[arg-type]
