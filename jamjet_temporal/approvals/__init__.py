"""Durable human approvals: four-eyes rules, signed decisions, CLI, Temporal UI and a web page.

Workflow side (pure): ``requires_approval`` suspends a run until the decisions its rule asks
for arrive (signal or update), each checked against ``ApprovalConfig``. Client side:
``generate_identity`` / ``load_identity`` (an approver's Ed25519 key), ``find_pending``,
``sign`` and ``submit`` (what ``jamjet approve`` does). ``load_approvals`` reads
``approvals.yaml`` at worker start and names the file, line and fix of any mistake.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal.approvals._client import find_pending, list_pending, sign, submit
    from jamjet_temporal.approvals._identity import (
        SignedDecision,
        SigningIdentity,
        generate_identity,
        load_identity,
    )
    from jamjet_temporal.approvals._load import (
        ApprovalConfig,
        ApprovalRule,
        Approver,
        Threshold,
        TrustedClient,
        load_approvals,
        parse_approvals,
    )
    from jamjet_temporal.approvals._workflow import ApprovalDecision, PendingApproval, SubmitResult
    from jamjet_temporal.authoring._guard import requires_approval

__all__ = [
    "ApprovalConfig",
    "ApprovalDecision",
    "ApprovalRule",
    "Approver",
    "PendingApproval",
    "SignedDecision",
    "SigningIdentity",
    "SubmitResult",
    "Threshold",
    "TrustedClient",
    "find_pending",
    "generate_identity",
    "list_pending",
    "load_approvals",
    "load_identity",
    "parse_approvals",
    "requires_approval",
    "sign",
    "submit",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "._client": ["find_pending", "list_pending", "sign", "submit"],
        "jamjet_temporal.authoring._guard": ["requires_approval"],
        "._identity": ["SignedDecision", "SigningIdentity", "generate_identity", "load_identity"],
        "._load": [
            "ApprovalConfig",
            "ApprovalRule",
            "Approver",
            "Threshold",
            "TrustedClient",
            "load_approvals",
            "parse_approvals",
        ],
        "._workflow": ["ApprovalDecision", "PendingApproval", "SubmitResult"],
    },
)
