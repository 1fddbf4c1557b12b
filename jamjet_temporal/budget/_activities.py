"""``jamjet.budget.quote``: the worker's price for a model (activity side)."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from jamjet_temporal._shared._wire import QUOTE_ACTIVITY
from jamjet_temporal.budget._prices import ModelPrice, PriceTable
from jamjet_temporal.errors import UnknownModelPriceError


class BudgetActivities:
    """Quotes prices from one plugin's price table (genai-prices plus its overrides)."""

    def __init__(self, table: PriceTable) -> None:
        self._table = table

    @activity.defn(name=QUOTE_ACTIVITY)
    async def quote(self, model: str) -> ModelPrice:
        """The model's price per million tokens; an unknown model is a final error."""
        try:
            return self._table.price(model)
        except UnknownModelPriceError as err:
            raise ApplicationError(
                err.reason or str(err), type="UnknownModelPriceError", non_retryable=True
            ) from err
