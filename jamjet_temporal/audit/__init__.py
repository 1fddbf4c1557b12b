"""The audit trail: an append-only, hash-chained store of every governed fact.

Gate decisions, tool and model calls, approvals and budget checks are stored as
``AuditEvent`` rows, each chained to the one before by ``sha256(prev_hash +
canonical_json(event))``, so ``verify()`` finds any edited, removed or reordered event. The
database itself refuses UPDATE and DELETE. Events carry deterministic ids (``event_id``), so a
retried activity or a replayed workflow stores nothing twice.

Where it runs: ``AuditEvent``, ``event_id`` and ``canonical_json`` are pure and may be used in
workflow code; the stores do I/O and belong in activities.

With a payload codec on the client, arguments and results are stored sealed by it;
``unseal(value, data_converter)`` opens one again.

Stores: ``SQLiteAuditStore`` (default; worker processes of one host) and
``PostgresAuditStore`` (workers on several hosts); ``open_store(url)`` picks one from a URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal.audit._api import ExportResult, export
    from jamjet_temporal.audit._chain import ChainVerdict, canonical_json
    from jamjet_temporal.audit._checkpoint import CheckpointSigner
    from jamjet_temporal.audit._export import export_bundle, read_bundle, write_bundle
    from jamjet_temporal.audit._keys import load_or_create_signing_key
    from jamjet_temporal.audit._open import open_store
    from jamjet_temporal.audit._postgres import PostgresAuditStore
    from jamjet_temporal.audit._seal import unseal
    from jamjet_temporal.audit._sqlite import SQLiteAuditStore
    from jamjet_temporal.audit._store import GATHER_S, AuditStore
    from jamjet_temporal.audit._types import AuditEvent, StoredEvent, event_id
    from jamjet_temporal.audit._verify import Verdict, verify_bundle
    from jamjet_temporal.errors import AuditTamperedError

__all__ = [
    "GATHER_S",
    "AuditEvent",
    "AuditStore",
    "AuditTamperedError",
    "ChainVerdict",
    "CheckpointSigner",
    "ExportResult",
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

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "._keys": ["load_or_create_signing_key"],
        "._api": ["ExportResult", "export"],
        "._chain": ["ChainVerdict", "canonical_json"],
        "._checkpoint": ["CheckpointSigner"],
        "jamjet_temporal.errors": ["AuditTamperedError"],
        "._types": ["AuditEvent", "StoredEvent", "event_id"],
        "._export": ["export_bundle", "read_bundle", "write_bundle"],
        "._open": ["open_store"],
        "._postgres": ["PostgresAuditStore"],
        "._seal": ["unseal"],
        "._sqlite": ["SQLiteAuditStore"],
        "._store": ["GATHER_S", "AuditStore"],
        "._verify": ["Verdict", "verify_bundle"],
    },
)
