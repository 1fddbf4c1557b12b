"""Attack (a reader of the worker's disk): the audit store kept arguments and results in plain
text outside the payload codec. A team that encrypts Temporal payloads found them readable in
``.jamjet/audit.db``, which ``JamJetPlugin()`` created in the working directory unannounced.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.worker import Worker

from jamjet_temporal import JamJetConfig, JamJetPlugin
from jamjet_temporal.audit import open_store, unseal
from jamjet_temporal.audit._seal import is_sealed
from jamjet_temporal.cli._devserver import DevServer
from jamjet_temporal.modelserver import ModelServer
from jamjet_temporal.plugin import AuditConfig, LLMConfig
from tests.security.security_workflows import onboard, open_account

IBAN = "DE89370400440532013000"
PASSWORD = "correct horse battery staple"
PIN = "4921-7733"


class AesGcmCodec(PayloadCodec):
    """What a team encrypting its payloads uses (AES-GCM, a random nonce per payload)."""

    def __init__(self, key: bytes) -> None:
        self._aes = AESGCM(key)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            nonce = os.urandom(12)
            sealed = self._aes.encrypt(nonce, payload.SerializeToString(), None)
            out.append(Payload(metadata={"encoding": b"binary/aes-gcm"}, data=nonce + sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != b"binary/aes-gcm":
                out.append(payload)
                continue
            plain = self._aes.decrypt(payload.data[:12], payload.data[12:], None)
            out.append(Payload.FromString(plain))
        return out


async def run_onboarding(
    temporal_server: DevServer, config: JamJetConfig, codec: PayloadCodec | None
) -> tuple[Client, str]:
    client = await Client.connect(
        temporal_server.address,
        plugins=[JamJetPlugin(config)],
        data_converter=DataConverter(payload_codec=codec) if codec else DataConverter.default,
    )
    queue, run_id = f"q-{uuid.uuid4().hex[:6]}", f"onboard-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[onboard], activities=[open_account]):
        result = await client.execute_workflow(
            onboard.run, args=[IBAN, PASSWORD], id=run_id, task_queue=queue
        )
    assert result == {"account": f"acct for {IBAN}", "pin": PIN}
    return client, run_id


def raw(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


async def test_audited_payloads_are_encrypted_at_rest_with_the_payload_codec(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    db = tmp_path / "audit.db"
    config = JamJetConfig(
        llm=LLMConfig(base_url=model_server.base_url), audit=AuditConfig(store=f"sqlite:///{db}")
    )
    client, run_id = await run_onboarding(
        temporal_server, config, AesGcmCodec(AESGCM.generate_key(bit_length=256))
    )
    on_disk = raw(db)
    for secret in (IBAN, PASSWORD, PIN):
        assert secret.encode() not in on_disk, f"{secret} is readable in the audit store"
    store = open_store(f"sqlite:///{db}")
    try:
        call = next(s.event for s in await store.events(run_id) if s.event.kind == "tool.call")
        assert (await store.verify()).ok
    finally:
        await store.close()
    assert is_sealed(call.data["args"]) and is_sealed(call.data["result"])
    # The team's own codec opens them again.
    assert await unseal(call.data["args"], client.data_converter) == [IBAN, PASSWORD]
    assert await unseal(call.data["result"], client.data_converter) == {
        "account": f"acct for {IBAN}",
        "pin": PIN,
    }


async def test_redaction_rules_apply_before_an_event_is_stored(
    temporal_server: DevServer, model_server: ModelServer, tmp_path: Path
) -> None:
    db = tmp_path / "audit.db"
    config = JamJetConfig(
        llm=LLMConfig(base_url=model_server.base_url),
        audit=AuditConfig(store=f"sqlite:///{db}", redact=["pin", "data.args"]),
    )
    _, run_id = await run_onboarding(temporal_server, config, None)
    on_disk = raw(db)
    assert PASSWORD.encode() not in on_disk and PIN.encode() not in on_disk
    store = open_store(f"sqlite:///{db}")
    try:
        call = next(s.event for s in await store.events(run_id) if s.event.kind == "tool.call")
    finally:
        await store.close()
    assert call.data["args"] == "[REDACTED]"
    assert call.data["result"] == {"account": f"acct for {IBAN}", "pin": "[REDACTED]"}
    assert call.data["redacted"] == ["data.result.pin", "data.args"]


def test_a_bad_redaction_rule_is_refused_when_the_plugin_is_built() -> None:
    from jamjet_temporal.errors import ConfigError

    with pytest.raises(ConfigError, match=r"audit\.redact"):
        JamJetPlugin(JamJetConfig(audit=AuditConfig(redact=["id.x"])))


async def test_the_default_audit_store_is_announced_with_its_path(
    temporal_server: DevServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        plugin = JamJetPlugin()
    finally:
        os.chdir(cwd)
    client = await Client.connect(temporal_server.address, plugins=[plugin])
    with caplog.at_level(logging.WARNING, logger="jamjet_temporal"):
        async with Worker(client, task_queue=f"q-{uuid.uuid4().hex[:6]}", workflows=[onboard]):
            pass
    announced = [r.getMessage() for r in caplog.records if r.name == "jamjet_temporal"]
    assert any(str(tmp_path / ".jamjet" / "audit.db") in m for m in announced), announced
