"""The PDF report of an audit bundle, read back with ``pdftotext`` (poppler-utils)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jamjet_temporal.audit import AuditStore
from jamjet_temporal.audit._export import export_bundle
from jamjet_temporal.audit._pdf import bundle_digest, write_pdf
from tests.audit.test_export import RUN, key, store

__all__ = ["key", "store"]  # fixtures shared with test_export


async def test_pdf_report_shows_the_run_and_its_counts(
    store: AuditStore, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.skip("pdftotext not installed (apt-get install -y poppler-utils)")
    bundle = await export_bundle(store, RUN, key=key)
    path = tmp_path / "report.pdf"
    write_pdf(bundle, path)
    assert path.read_bytes().startswith(b"%PDF")
    proc = await asyncio.create_subprocess_exec(
        pdftotext, "-layout", str(path), "-", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    text = out.decode("utf-8")
    assert RUN in text
    lines = [" ".join(line.split()) for line in text.splitlines()]
    for row in ("Events 10", "Tool calls 2", "Model calls 1", "Policy allowed 3"):
        assert any(row in line for line in lines), row
    assert "Policy blocked 1" in "\n".join(lines)
    digest = bundle_digest(bundle)
    assert digest[:30] in text.replace("\n", "")
    assert "ana@example.com" in text and "delete_database" in text
