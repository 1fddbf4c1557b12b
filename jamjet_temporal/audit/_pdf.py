"""A PDF report of an audit bundle, for people (client side; the JSON bundle is the evidence).

The report shows the run, the counts, the bundle digest (sha256 of its canonical JSON, so a
reader can match the PDF to the signed bundle), then a timeline, the tool and model calls,
the policy decisions and the approvals.

reportlab ships no type hints; with ``types-reportlab`` installed the ignores below go unused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from jamjet_temporal._shared._extras import missing_extra

try:
    from reportlab.lib import colors  # type: ignore[import-untyped, unused-ignore]
    from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped, unused-ignore]
    from reportlab.lib.styles import getSampleStyleSheet  # type: ignore[import-untyped, unused-ignore]
    from reportlab.lib.units import mm  # type: ignore[import-untyped, unused-ignore]
    from reportlab.platypus import (  # type: ignore[import-untyped, unused-ignore]
        Flowable,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )
except ImportError as _missing:  # the extra is not installed
    raise missing_extra("pdf", _missing) from _missing

from jamjet_temporal.audit._export import canonical_text

__all__ = ["bundle_digest", "write_pdf"]

_STYLES = getSampleStyleSheet()
_CELL = _STYLES["BodyText"].clone("cell", fontSize=7, leading=8.5)


def bundle_digest(bundle: dict[str, Any]) -> str:
    """``"sha256:"`` + hex sha256 of the bundle's canonical JSON (as ``write_bundle`` writes it).

    Args:
        bundle: The bundle.

    Returns:
        The digest.
    """
    return "sha256:" + hashlib.sha256(canonical_text(bundle).encode("utf-8")).hexdigest()


def _text(value: object) -> str:
    text = value if isinstance(value, str) else "" if value is None else canonical_text(value)
    if len(text) > 160:
        text = text[:157] + "..."
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _table(header: list[str], rows: list[list[object]], widths: list[float]) -> Flowable:
    if not rows:
        return Paragraph("(none)", _STYLES["BodyText"])
    data = [[Paragraph(f"<b>{h}</b>", _CELL) for h in header]]
    data += [[Paragraph(_text(cell), _CELL) for cell in row] for row in rows]
    table = Table(data, colWidths=[w * mm for w in widths], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def write_pdf(bundle: dict[str, Any], path: Path) -> None:
    """Render an audit bundle as a PDF report.

    Args:
        bundle: The bundle from ``export_bundle`` (verify it first: the PDF only shows it).
        path: The PDF file to write (replaced if it exists).
    """
    events: list[dict[str, Any]] = [e for e in bundle.get("events", []) if isinstance(e, dict)]
    summary: dict[str, Any] = bundle.get("summary") or {}
    policy: dict[str, Any] = summary.get("policy") or {}
    statement: dict[str, Any] = bundle.get("statement") or {}
    h1, h2, body = _STYLES["Title"], _STYLES["Heading2"], _STYLES["BodyText"]
    run_id = _text(bundle.get("run_id"))
    story: list[Flowable] = [
        Paragraph(f"JamJet audit report: {run_id}", h1),
        _table(
            ["Field", "Value"],
            [
                ["Run id", bundle.get("run_id")],
                ["Exported at", bundle.get("exported_at")],
                ["Events", summary.get("events", len(events))],
                ["Tool calls", summary.get("tool_calls")],
                ["Model calls", summary.get("model_calls")],
                ["Refused tool calls", summary.get("refused")],
                ["Policy evaluated", policy.get("evaluated")],
                ["Policy allowed", policy.get("allowed")],
                ["Policy blocked", policy.get("blocked")],
                ["Awaiting approval", policy.get("waiting_for_approval")],
                ["Approvals", len(summary.get("approvals") or [])],
                ["Budget checks", len(summary.get("budget") or [])],
                ["Redacted values", len(bundle.get("redactions") or [])],
                ["Chain head", statement.get("chain_head")],
                ["Signing key", statement.get("public_key_fingerprint")],
                ["Bundle digest", bundle_digest(bundle)],
            ],
            [45, 200],
        ),
        Spacer(1, 4 * mm),
        Paragraph(
            "This report summarises the signed JSON bundle with the digest above; check that "
            "bundle with 'jamjet audit verify --trusted-key FINGERPRINT' for the evidence, "
            "pinning the fingerprint the exporter published (the signing key printed here "
            "only counts if it is that one).",
            body,
        ),
        PageBreak(),
        Paragraph("Timeline", h2),
        _table(
            ["#", "Time", "Kind", "Event id", "Subject", "Actor"],
            [
                [
                    n,
                    e.get("at"),
                    e.get("kind"),
                    e.get("id"),
                    (e.get("data") or {}).get("tool") or (e.get("data") or {}).get("subject"),
                    (e.get("actor") or {}).get("user") or (e.get("actor") or {}).get("agent"),
                ]
                for n, e in enumerate(events, 1)
            ],
            [10, 45, 35, 45, 50, 60],
        ),
        Paragraph("Tool and model calls", h2),
        _table(
            ["Time", "Tool", "Activity", "Outcome", "Attempt", "Latency ms", "Args"],
            [
                [
                    e.get("at"),
                    d.get("tool"),
                    d.get("activity_id"),
                    d.get("outcome"),
                    d.get("attempt"),
                    d.get("latency_ms"),
                    d.get("args"),
                ]
                for e in events
                if e.get("kind") in ("tool.call", "model.call", "tool.refused")
                for d in [e.get("data") or {}]
            ],
            [42, 35, 18, 20, 15, 20, 95],
        ),
        Paragraph("Policy decisions", h2),
        _table(
            ["Time", "Kind", "Subject", "Decision", "Rule", "Scope", "Reason"],
            [
                [
                    e.get("at"),
                    e.get("kind"),
                    d.get("subject"),
                    d.get("decision"),
                    d.get("rule"),
                    d.get("scope"),
                    d.get("reason"),
                ]
                for e in events
                if str(e.get("kind", "")).startswith("policy.")
                for d in [e.get("data") or {}]
            ],
            [42, 30, 35, 30, 25, 28, 55],
        ),
        Paragraph("Approvals", h2),
        _table(
            ["Time", "Kind", "Approval", "Action", "Approver", "Decision", "Digest"],
            [
                [
                    a.get("time"),
                    a.get("kind"),
                    a.get("approval_id"),
                    a.get("action"),
                    a.get("approver"),
                    a.get("decision"),
                    a.get("digest"),
                ]
                for a in summary.get("approvals") or []
                if isinstance(a, dict)
            ],
            [42, 32, 25, 30, 40, 22, 54],
        ),
    ]
    doc = SimpleDocTemplate(
        str(path),
        pagesize=landscape(A4),
        title=f"JamJet audit report {bundle.get('run_id')}",
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
    )
    doc.build(story)
