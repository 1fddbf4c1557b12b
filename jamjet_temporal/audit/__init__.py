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

from ._api import ExportResult, export
from ._chain import ChainVerdict, canonical_json
from ._checkpoint import AuditTamperedError
from ._event import AuditEvent, StoredEvent, event_id
from ._export import read_bundle, write_bundle
from ._open import open_store
from ._postgres import PostgresAuditStore
from ._seal import unseal
from ._sqlite import SQLiteAuditStore
from ._store import AuditStore
from ._verify import Verdict, verify_bundle

__all__ = [
    "AuditEvent",
    "AuditStore",
    "AuditTamperedError",
    "ChainVerdict",
    "ExportResult",
    "PostgresAuditStore",
    "SQLiteAuditStore",
    "StoredEvent",
    "Verdict",
    "canonical_json",
    "event_id",
    "export",
    "open_store",
    "read_bundle",
    "unseal",
    "verify_bundle",
    "write_bundle",
]
