"""``audit.export``: a run's signed evidence bundle, as JSON and optionally a PDF (client side).

Files: the JSON bundle (``NAME.json``), its in-toto attestation beside it
(``NAME.intoto.jsonl``: the DSSE envelope on one line) and, for ``format="pdf"``, the report
(``NAME.pdf``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from temporalio.service import RPCError

from jamjet_temporal._shared._connect import connect
from jamjet_temporal.audit._export import CATEGORIES, export_bundle, write_attestation, write_bundle
from jamjet_temporal.audit._keys import load_or_create_signing_key
from jamjet_temporal.audit._open import open_store
from jamjet_temporal.errors import ExportError


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote.

    Attributes:
        path: The requested output (the PDF for ``format="pdf"``, else the JSON bundle).
        bundle_path: The signed JSON bundle (always written: the PDF carries its digest).
        attestation_path: The bundle's in-toto attestation (``<name>.intoto.jsonl``).
        bundle: The bundle itself.
        history_included: Whether Temporal still had the run's history to embed.
    """

    path: Path
    bundle_path: Path
    attestation_path: Path
    bundle: dict[str, Any]
    history_included: bool


def _output_paths(run_id: str, format: str, output: str | Path | None) -> tuple[Path, Path]:
    """The requested output and the JSON bundle's path; refuses names that collide."""
    if format not in ("json", "pdf"):
        raise ExportError(f"format must be json or pdf, not {format!r}")
    path = Path(output) if output else Path(f"audit_{run_id}.{format}")
    if path.suffix.lower() == f".{format}":
        return path, path if format == "json" else path.with_suffix(".json")
    fitting = path.with_suffix(f".{format}")
    if format == "pdf":
        why = (
            f"the PDF report and the signed JSON bundle would both be {path}"
            if path.suffix.lower() == ".json"
            else "a PDF report's name must end in .pdf"
        )
        instead = f"{fitting} (the JSON bundle is written beside it as {path.with_suffix('.json')})"
    else:
        why = "the JSON bundle's name must end in .json"
        instead = f"{fitting}, or ask for format pdf to get a PDF report beside it"
    raise ExportError(f"output {path} does not fit format {format}: {why}; write {instead}")


async def export(
    run_id: str,
    *,
    format: Literal["json", "pdf"] = "json",
    include: Sequence[str] = CATEGORIES,
    store: str = "sqlite:///.jamjet/audit.db",
    output: str | Path | None = None,
    redact: Sequence[str] = (),
    key: str | Path | None = None,
    address: str | None = None,
) -> ExportResult:
    """Build, sign and write the evidence bundle of one run.

    Example::

        bundle = await jamjet_temporal.audit.export(
            run_id="exec_7f3a", format="pdf", include=["events", "tools", "policy", "approvals"]
        )

    Args:
        run_id: The run's workflow id.
        format: ``json``, or ``pdf`` for a readable report beside the JSON bundle.
        include: Event categories: ``events``, ``tools``, ``policy``, ``approvals``, ``budget``.
        store: The audit store URL.
        output: Output path ending in ``.json``, or ``.pdf`` for ``format="pdf"`` (default
            ``audit_<run_id>.json`` / ``.pdf``); the JSON bundle and ``.intoto.jsonl``
            attestation go beside a PDF under the same name.
        redact: Fields to mask (``data.args``, or a key name such as ``password``).
        key: The Ed25519 signing key file (default ``$JAMJET_AUDIT_KEY`` or
            ``~/.jamjet/audit-signing.key``, created on first use).
        address: Temporal address, to embed the run's history while Temporal retains it.

    Returns:
        Where the files went, and the bundle.

    Raises:
        ExportError: The output name does not end in the format's suffix (so a PDF would
            overwrite its JSON bundle), or the bundle cannot be built (see ``export_bundle``).
        SigningKeyError: The signing key is unusable, e.g. readable by other users.
    """
    path, bundle_path = _output_paths(run_id, format, output)
    history: str | None = None
    try:
        client = await connect(address=address)
        history = (await client.get_workflow_handle(run_id).fetch_history()).to_json()
    except (RPCError, RuntimeError):
        history = None  # past retention, or no server: the bundle is still complete evidence
    audit_store = open_store(store)
    try:
        bundle = await export_bundle(
            audit_store,
            run_id,
            include=include,
            history_json=history,
            redact=redact,
            key=load_or_create_signing_key(None if key is None else Path(key)),
        )
    finally:
        await audit_store.close()
    write_bundle(bundle, bundle_path)
    attestation_path = bundle_path.with_suffix(".intoto.jsonl")
    write_attestation(bundle, attestation_path)
    if format == "pdf":
        from jamjet_temporal.audit._pdf import write_pdf  # reportlab: only when a PDF is asked for

        write_pdf(bundle, path)
    return ExportResult(path, bundle_path, attestation_path, bundle, history is not None)
