"""The options several ``jamjet`` commands take, declared once (defaults stay at each use)."""

from __future__ import annotations

from typing import Annotated

import typer

AddressOption = Annotated[
    str | None, typer.Option("--address", help="Temporal address (host:port).")
]
PolicyOption = Annotated[
    str | None,
    typer.Option("--policy", help="Tool policy file (YAML) for every run on this worker."),
]
AuditStoreOption = Annotated[
    str,
    typer.Option(
        "--audit-store",
        envvar="JAMJET_AUDIT_STORE",
        help="Audit trail: sqlite:///path or postgresql://...; '' turns it off.",
    ),
]
ApprovalsOption = Annotated[
    str | None,
    typer.Option(
        "--approvals",
        help="Approvals config (YAML): who may approve which actions (human_approval nodes, "
        "require_approval rules).",
    ),
]
