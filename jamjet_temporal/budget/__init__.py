"""Cost budgets that stop *before* overspending.

Prices (``genai-prices``, plus your overrides) are quoted by the worker; every budgeted model
call is projected (counted input tokens x input price + max output tokens x output price)
and halted before it could cross a cap; real usage is charged afterwards. Workflow-side state,
so a crash neither loses nor double-counts spend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal.budget._ledger import (
        Budget,
        BudgetDecision,
        BudgetLedger,
        CallCost,
        Projection,
        money,
    )
    from jamjet_temporal.budget._prices import ModelPrice, PriceTable
    from jamjet_temporal.budget._workflow import child_budget, remaining_budget
    from jamjet_temporal.errors import (
        BudgetConfigError,
        BudgetExceededError,
        UnknownModelPriceError,
    )

__all__ = [
    "Budget",
    "BudgetConfigError",
    "BudgetDecision",
    "BudgetExceededError",
    "BudgetLedger",
    "CallCost",
    "ModelPrice",
    "PriceTable",
    "Projection",
    "UnknownModelPriceError",
    "child_budget",
    "money",
    "remaining_budget",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "jamjet_temporal.errors": [
            "BudgetConfigError",
            "BudgetExceededError",
            "UnknownModelPriceError",
        ],
        "._ledger": ["Budget", "BudgetDecision", "BudgetLedger", "CallCost", "Projection", "money"],
        "._prices": ["ModelPrice", "PriceTable"],
        "._workflow": ["child_budget", "remaining_budget"],
    },
)
