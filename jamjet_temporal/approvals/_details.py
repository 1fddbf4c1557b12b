"""What a run waiting for an approval says in Temporal's Web UI (its current details).

Runs inside the workflow sandbox; pure text from the request as the ``jamjet.approval.pending``
query shows it, so a replay says the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._details import args_text, deadline_text, people

if TYPE_CHECKING:
    from jamjet_temporal.approvals._workflow import PendingApproval


def approval_line(request: PendingApproval, *, several: bool) -> str:
    """One line: what waits for whose approval, and the command that decides it.

    ``waiting for approval of wire_transfer $50,000 (to: ACME GmbH) · needs 1 of
    alice@example.com, bob@example.com · times out 2025-06-02 09:00 UTC ·
    `jamjet approve exec_1a2b --key KEY`

    Args:
        request: The open request.
        several: The run has more than one open request (the command names this one).
    """
    what = " ".join(part for part in (request.action, args_text(request.args)) if part)
    stage = "escalated: needs" if request.stage == "escalated" else "needs"
    parts = [
        f"waiting for approval of {what}",
        f"{stage} {request.required} of {people(request.eligible)}",
    ]
    if request.approved_by:
        parts.append(f"approved so far by {people(request.approved_by)}")
    deadline = deadline_text(request.deadline)
    if deadline is not None:
        parts.append(deadline)
    which = f" --approval {request.approval_id}" if several else ""
    parts.append(f"`jamjet approve {request.run_id}{which} --key KEY`")
    return " · ".join(parts)
