"""``guard.requires_approval``: suspend a run durably until a human decides.

Workflow side (pure). The implementation lives in ``jamjet_temporal.authoring`` (it asks the
run's gate, which keeps the ``ApprovalBook``); ``jamjet_temporal.approvals`` exports it too.
"""

from jamjet_temporal.authoring._guard import requires_approval

__all__ = ["requires_approval"]
