"""``JamJetPlugin`` wiring: per-instance config, converter, misuse errors."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import timedelta

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.errors import ConfigError
from jamjet_temporal.modelserver import ModelServer
from jamjet_temporal.pipeline import PIPELINE_WORKFLOW, PipelineResult, PipelineRun, parse_pipeline
from jamjet_temporal.plugin import LLMConfig

ASK = """
workflow: {id: ask, start: ask}
nodes:
  ask: {type: model, prompt: "{{ state.q }}", output_key: answer}
"""


async def test_two_plugins_with_different_configs_coexist(
    temporal_server: DevServer, model_server: ModelServer
) -> None:
    async with ModelServer() as other:
        servers = {"first": model_server, "second": other}
        markers = {name: f"{name}-{uuid.uuid4().hex}" for name in servers}
        spec = parse_pipeline(ASK, "ask.yaml")
        for name, server in servers.items():
            plugin = JamJetPlugin(JamJetConfig(llm=LLMConfig(base_url=server.base_url)))
            client = await Client.connect(temporal_server.address, plugins=[plugin])
            queue = f"coexist-{name}-{uuid.uuid4().hex[:6]}"
            async with Worker(client, task_queue=queue):
                await client.execute_workflow(
                    PIPELINE_WORKFLOW,
                    PipelineRun(spec=spec, input={"q": markers[name]}),
                    id=f"coexist-{uuid.uuid4().hex[:8]}",
                    task_queue=queue,
                    result_type=PipelineResult,
                )
        for name, server in servers.items():
            seen = str(server.calls())
            assert markers[name] in seen
            other_name = "second" if name == "first" else "first"
            assert markers[other_name] not in seen


async def test_the_plugin_on_both_the_client_and_its_worker_registers_once(
    temporal_server: DevServer, model_server: ModelServer
) -> None:
    """Temporal applies a client's plugin to its workers; a team that also lists it on the
    worker gets a worker that starts and runs pipelines (not duplicate activity names)."""
    plugin = JamJetPlugin(JamJetConfig(llm=LLMConfig(base_url=model_server.base_url)))
    client = await Client.connect(temporal_server.address, plugins=[plugin])
    queue = f"twice-{uuid.uuid4().hex[:6]}"
    marker = f"twice-{uuid.uuid4().hex}"
    async with Worker(client, task_queue=queue, plugins=[plugin]):
        result = await client.execute_workflow(
            PIPELINE_WORKFLOW,
            PipelineRun(spec=parse_pipeline(ASK, "ask.yaml"), input={"q": marker}),
            id=f"twice-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
            result_type=PipelineResult,
        )
    assert marker in str(model_server.calls())
    assert "answer" in result.state


class _Marker(PayloadCodec):
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


def test_converter_keeps_the_users_codec_and_adds_pydantic() -> None:
    codec = _Marker()
    mine = dataclasses.replace(DataConverter.default, payload_codec=codec)
    plugin = JamJetPlugin()
    config = plugin.configure_client({"data_converter": mine})  # type: ignore[typeddict-item]
    converter = config["data_converter"]
    assert converter.payload_codec is codec
    assert issubclass(converter.payload_converter_class, PydanticPayloadConverter)


def test_the_pydantic_converter_is_built_once_and_shared() -> None:
    """Temporal makes a payload converter per serialization context: each must not rebuild
    pydantic's converters (and an empty TypeAdapter cache)."""
    config = JamJetPlugin().configure_client({})  # type: ignore[typeddict-item]
    made = config["data_converter"].payload_converter_class
    first, second = made(), made()
    assert first is not second
    assert first.converters[b"json/plain"] is second.converters[b"json/plain"]
    assert first.to_payloads([{"a": 1}]) == second.to_payloads([{"a": 1}])


def test_bad_config_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="http"):
        LLMConfig(base_url="localhost:8000")
    with pytest.raises(ConfigError, match="positive"):
        LLMConfig(timeout=timedelta(0))

    async def not_a_task() -> None: ...

    with pytest.raises(ConfigError, match="not a @task"):
        JamJetPlugin(tasks=[not_a_task])
