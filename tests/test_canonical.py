"""One canonical JSON, one digest: every former encoder agrees with ``_shared._canonical``.

The property tests feed arbitrary JSON values (non-ASCII text included) to every call site
that used to have its own ``json.dumps``; the ASCII tests pin that, for ASCII data, nothing
recorded before (gate digests, checkpoint statements, policy versions) changed.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from jamjet_temporal._shared import _canonical
from jamjet_temporal._shared._canonical import canonical_json, digest
from jamjet_temporal.approvals._identity import SigningIdentity, action_digest
from jamjet_temporal.audit._chain import canonical_json as chain_canonical_json
from jamjet_temporal.audit._chain import link_hash
from jamjet_temporal.audit._checkpoint import checkpoint_statement
from jamjet_temporal.audit._export import bundle_chain, canonical_text, digest_of
from jamjet_temporal.audit._types import AuditEvent
from jamjet_temporal.gate._workflow import digest as gate_digest
from jamjet_temporal.pipeline._template import render
from jamjet_temporal.policy import Policy, PolicyScopes

WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

# Text from every plane hypothesis draws from (no lone surrogates: JSON text is UTF-8).
TEXT = st.text(max_size=12)
# ASCII without DEL (0x7f): the encoders that escaped non-ASCII escaped DEL too (``\u007f``),
# the one ASCII character whose digest changes (checkpoint statements never hold it).
ASCII = st.text(alphabet=st.characters(max_codepoint=126), max_size=12)
# Integral floats are written as integers by action_digest (50000.0 is 50000): leave them out
# where the approvals digest is compared, keep them elsewhere.
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
FRACTIONS = FLOATS.filter(lambda f: not f.is_integer())


def json_values(text: st.SearchStrategy[str], floats: st.SearchStrategy[float]) -> Any:
    scalars = st.none() | st.booleans() | st.integers() | floats | text
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=20,
    )


JSON = json_values(TEXT, FLOATS)
OBJECTS = st.dictionaries(TEXT, JSON, max_size=5)


def reference(value: object) -> str:
    """The audit chain's persisted encoding, written out: what must never change."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def event(data: dict[str, Any], actor: dict[str, Any] | None = None) -> AuditEvent:
    return AuditEvent(
        id="evt_" + "0" * 16,
        run_id="run-é",
        workflow_run_id="r1",
        kind="tool.call",
        at=WHEN,
        actor=actor or {},
        data=data,
    )


# -- every call site agrees -----------------------------------------------------------------


@settings(max_examples=300)
@given(JSON)
def test_canonical_json_is_the_audit_chain_encoding(value: object) -> None:
    text = canonical_json(value)
    assert text == reference(value)
    assert digest(value) == sha(text)
    assert json.loads(text) == value


@settings(max_examples=300)
@given(JSON)
def test_bundle_encoders_are_the_canonical_ones(value: object) -> None:
    assert canonical_text(value) == canonical_json(value)
    assert digest_of(value) == digest(value)


@settings(max_examples=300)
@given(JSON)
def test_gate_digest_is_the_canonical_digest(value: object) -> None:
    assert gate_digest(value) == digest(value)
    assert gate_digest([value, "ü"]) == digest([value, "ü"])


@settings(max_examples=300)
@given(TEXT, st.dictionaries(TEXT, json_values(TEXT, FRACTIONS), max_size=5))
def test_approval_action_digest_is_the_canonical_digest(action: str, args: Any) -> None:
    assert action_digest(action, args) == digest({"action": action, "args": args})


@settings(max_examples=200)
@given(OBJECTS, st.dictionaries(TEXT, TEXT, max_size=3))
def test_chain_text_of_an_event_is_the_canonical_json_of_its_dump(
    data: dict[str, Any], actor: dict[str, Any]
) -> None:
    built = event(data, actor)
    text = chain_canonical_json(built)
    assert text == canonical_json(built.model_dump(mode="json"))
    assert text == reference(built.model_dump(mode="json"))
    # The bundle's chain over an event's JSON object is the store's chain over the event.
    dumped = json.loads(text)
    assert bundle_chain([dumped]) == [link_hash("0" * 64, text)]


@settings(max_examples=200)
@given(JSON)
def test_template_writes_non_text_values_as_canonical_json(value: object) -> None:
    rendered = render("{{ state.v }}", {"v": value})
    assert rendered == (value if isinstance(value, str) else canonical_json(value))


@given(TEXT, TEXT)
def test_signed_decision_bytes_are_canonical_json(approver: str, comment: str) -> None:
    identity = SigningIdentity.generate("alice@example.com")
    decision = identity.sign(
        approval_id="apr_1",
        run_id="run-ü",
        workflow_run_id="r1",
        nonce="n",
        digest=digest({"x": approver}),
        decision="approved",
        comment=comment,
        signed_at=WHEN,
    )
    signed = json.loads(decision.signing_bytes())
    assert decision.signing_bytes() == canonical_json(signed).encode("utf-8")


def test_policy_version_digest_is_the_canonical_digest() -> None:
    policy = Policy(blocked_tools=("löschen_*", "delete_*"), require_approval_for=("転送",))
    dumped = policy.model_dump(mode="json", exclude={"source"})
    assert policy.version_id == "pol_" + digest(dumped).removeprefix("sha256:")[:12]
    scopes = PolicyScopes(scopes=(("run", policy),))
    used = [["run", policy.version_id]]
    assert scopes.version_id == "pol_" + digest(used).removeprefix("sha256:")[:12]


# -- nothing recorded on ASCII data changed -------------------------------------------------


@settings(max_examples=300)
@given(json_values(ASCII, FLOATS))
def test_gate_digest_of_ascii_data_is_unchanged(value: object) -> None:
    """The gate's digest used to escape non-ASCII (``ensure_ascii``): on ASCII, no change."""
    before = json.dumps(
        to_jsonable_python(value, fallback=repr), sort_keys=True, separators=(",", ":")
    )
    assert gate_digest(value) == "sha256:" + hashlib.sha256(before.encode()).hexdigest()


@given(ASCII, st.integers(min_value=0), st.text(alphabet="0123456789abcdef", max_size=64))
def test_checkpoint_statement_of_ascii_data_is_unchanged(
    store_id: str, seq: int, head: str
) -> None:
    signer = "sha256:" + "ab" * 32
    statement = {
        "type": "jamjet.audit.checkpoint/v1",
        "store_id": store_id,
        "seq": seq,
        "head": head,
        "signed_at": WHEN.isoformat(),
        "signer": signer,
    }
    before = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode("utf-8")
    assert checkpoint_statement(store_id, seq, head, WHEN, signer) == before


GLOBS = st.text(
    alphabet=st.characters(categories=("L", "N")) | st.sampled_from("*?_.-"), min_size=1
)


@given(st.lists(GLOBS, min_size=1, max_size=4, unique=True))
def test_policy_version_is_unchanged(globs: list[str]) -> None:
    """Policy versions already kept non-ASCII as is: unchanged for any text."""
    policy = Policy(blocked_tools=tuple(globs))
    before = json.dumps(
        policy.model_dump(mode="json", exclude={"source"}),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert policy.version_id == "pol_" + hashlib.sha256(before.encode()).hexdigest()[:12]


def test_pinned_digests() -> None:
    """Known answers, computed with the encoders these replaced."""
    assert action_digest("wire_transfer", {"amount": 50000.0, "to": "ACME"}) == (
        "sha256:f6102a487ffe3424be58aae50540c9c5f3d2ad12de701e41eb89d8d354687a1d"
    )
    assert action_digest("wire_transfer", {"amount": 50000, "to": "Zürich AG ✓"}) == (
        "sha256:544b1ddf5c1f9a826c93c6e01a62854dcea6ca0e1ba67e5cf9dc6f1bae41f699"
    )
    assert canonical_json({"b": "é", "a": [1, 2.5, None]}) == '{"a":[1,2.5,null],"b":"é"}'


# -- what canonical JSON refuses or converts ------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, {"x": [math.nan]}])
def test_nan_and_infinities_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="NaN or an infinity"):
        canonical_json(bad)
    with pytest.raises(ValueError, match="NaN or an infinity"):
        digest(bad)


def test_values_that_are_not_json_are_refused_unless_a_fallback_is_given() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "Opaque()"

    with pytest.raises(TypeError, match="canonical JSON"):
        canonical_json({"x": Opaque()})
    assert canonical_json({"x": Opaque()}, fallback=repr) == '{"x":"Opaque()"}'


def test_models_datetimes_and_non_text_keys_are_written_as_pydantic_writes_json() -> None:
    class Model(BaseModel):
        when: datetime
        name: str

    value = {"m": Model(when=WHEN, name="ü"), 2: (1, 2)}
    assert canonical_json(value) == '{"2":[1,2],"m":{"name":"ü","when":"2025-03-01T12:00:00Z"}}'
    assert canonical_json(value) == canonical_json(to_jsonable_python(value))


def test_gate_digest_still_decides_calls_canonical_json_cannot_hold() -> None:
    """A NaN argument used to digest as ``NaN``; it must not fail the workflow task now."""
    assert gate_digest([math.nan]) == digest({"repr": "[nan]"})
    assert gate_digest([b"\xff"]) == digest({"repr": "[b'\\xff']"})


def test_module_is_workflow_safe() -> None:
    """Pure: nothing but hashing, json and pydantic_core."""
    imported = {
        name
        for name, value in vars(_canonical).items()
        if type(value).__name__ == "module" and not name.startswith("__")
    }
    assert imported <= {"hashlib", "json"}
