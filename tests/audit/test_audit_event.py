"""The event model, event ids and canonical JSON (pure, no store)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import JsonValue, ValidationError

from jamjet_temporal import audit
from jamjet_temporal.audit import AuditEvent, canonical_json, event_id

AT = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)


def event(**changes: object) -> AuditEvent:
    fields: dict[str, object] = {
        "id": event_id("wf", "run", "act-1", "tool.call"),
        "run_id": "exec_7f3a",
        "workflow_run_id": "0195-run",
        "kind": "tool.call",
        "at": AT,
    }
    return AuditEvent.model_validate(fields | changes)


def test_event_id_is_deterministic_and_separates_parts() -> None:
    eid = event_id("exec_7f3a", "run-1", "3", "tool.call")
    digest = hashlib.sha256(b"exec_7f3a\x1frun-1\x1f3\x1ftool.call").hexdigest()
    assert eid == "evt_" + digest[:20]
    assert eid == event_id("exec_7f3a", "run-1", "3", "tool.call")
    assert event_id("ab", "c") != event_id("a", "bc")
    with pytest.raises(ValueError, match="separator"):
        event_id("a\x1fb")
    with pytest.raises(ValueError, match="at least one"):
        event_id()


def test_event_fields_are_checked() -> None:
    assert event(actor={"user": "ana"}, data={"ok": True}).data == {"ok": True}
    for bad in (
        {"id": "evt_xyz"},
        {"id": "evt_ABCDEF0123456789"},
        {"id": "e_" + "0" * 20},
        {"run_id": ""},
        {"kind": ""},
        {"at": datetime(2025, 1, 1)},  # noqa: DTZ001 - a naive datetime is what is refused
        {"surprise": 1},
        {"data": {"x": float("nan")}},
        {"data": {"x": float("inf")}},
        {"data": {"x": "\ud800"}},
        {"actor": {"x": object()}},
    ):
        with pytest.raises(ValidationError):
            event(**bad)


def test_event_time_is_kept_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    e = event(at=datetime(2025, 3, 1, 14, 0, 0, 250000, tzinfo=plus_two))
    assert e.at == AT
    assert e.at.tzinfo == UTC


def test_event_is_frozen() -> None:
    e = event()
    with pytest.raises(ValidationError):
        e.kind = "other"


def test_canonical_json_is_sorted_compact_and_unescaped() -> None:
    e = event(data={"b": 1, "a": ["é", 2.5, None]}, actor={"z": {"y": True, "x": "☕"}})
    assert canonical_json(e) == (
        '{"actor":{"z":{"x":"☕","y":true}},"at":"2025-03-01T12:00:00.250000Z",'
        '"data":{"a":["é",2.5,null],"b":1},"id":"' + e.id + '","kind":"tool.call",'
        '"run_id":"exec_7f3a","workflow_run_id":"0195-run"}'
    )


json_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(data=st.dictionaries(st.text(), json_values, max_size=5))
def test_canonical_json_survives_a_round_trip(data: dict[str, JsonValue]) -> None:
    # Stores keep the canonical text and read events back from it.
    e = event(data=data)
    text = canonical_json(e)
    again = AuditEvent.model_validate_json(text)
    assert again == e
    assert canonical_json(again) == text
    assert json.loads(text)["data"] == json.loads(json.dumps(data))


def test_public_names() -> None:
    assert sorted(audit.__all__) == [
        "AuditEvent",
        "AuditStore",
        "AuditTamperedError",
        "ChainVerdict",
        "CheckpointSigner",
        "ExportResult",
        "GATHER_S",
        "PostgresAuditStore",
        "SQLiteAuditStore",
        "StoredEvent",
        "Verdict",
        "canonical_json",
        "event_id",
        "export",
        "export_bundle",
        "load_or_create_signing_key",
        "open_store",
        "read_bundle",
        "unseal",
        "verify_bundle",
        "write_bundle",
    ]
