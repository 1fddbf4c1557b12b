"""Cost budgets that stop *before* overspending.

Prices (``genai-prices``, plus your overrides) are quoted by the worker; every budgeted model
call is projected (counted input tokens x input price + max output tokens x output price)
and halted before it could cross a cap; real usage is charged afterwards. Workflow-side state,
so a crash neither loses nor double-counts spend.
"""

from ._errors import BudgetConfigError, BudgetExceededError, UnknownModelPriceError
from ._ledger import Budget, BudgetDecision, BudgetLedger, CallCost, Projection, money
from ._prices import ModelPrice, PriceTable
from ._workflow import child_budget

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
]
