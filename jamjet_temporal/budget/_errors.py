"""Errors of the budget package, rooted in the jamjet-temporal hierarchy.

``UnknownModelPriceError`` and ``BudgetConfigError`` are configuration errors (a price or a
budget value is missing or invalid). ``BudgetExceededError`` is a gate refusal: the runtime
raises it in workflow code when a projected call would cross a cap, before the call is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError, GateError

if TYPE_CHECKING:
    from ._ledger import BudgetDecision

__all__ = ["BudgetConfigError", "BudgetExceededError", "UnknownModelPriceError"]


class UnknownModelPriceError(ConfigError):
    """No per-token price is known for a model, so its cost cannot be bounded (fail closed).

    Attributes:
        model: The model id that was looked up.
        provider: The provider the lookup was restricted to, if any.
        reason: Why no price was found.
    """

    def __init__(self, model: str, *, provider: str | None = None, reason: str = "") -> None:
        self.model = model
        self.provider = provider
        self.reason = reason
        where = f" from provider '{provider}'" if provider else ""
        why = f": {reason}" if reason else ""
        super().__init__(
            f"no price known for model '{model}'{where}{why}; the budget cannot bound its "
            f"cost, so the call is refused (fix: add a price override: "
            f"JamJetConfig(prices={{'{model}': {{'input_per_mtok': '0.50', "
            f"'output_per_mtok': '1.50'}}}}), prices in USD per million tokens)"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_unknown_price, (self.model, self.provider, self.reason))


def _rebuild_unknown_price(model: str, provider: str | None, reason: str) -> UnknownModelPriceError:
    return UnknownModelPriceError(model, provider=provider, reason=reason)


class BudgetConfigError(ConfigError):
    """A budget value or a budget slice request is invalid; the message names the fix."""


class BudgetExceededError(GateError):
    """A model call was refused before it was made: its projected cost would cross a cap.

    ``subject`` is the model, ``reason`` the decision's own line (for instance
    ``"$0.41 + projected $0.18 > cap $0.50"``), ``rule`` the cap that was crossed
    (``"budget.max_cost"``, ``"budget.max_tokens"`` or both, comma-separated).

    Attributes:
        decision: The refused ``BudgetDecision`` (not carried across a Temporal failure, whose
            message and type are; it survives pickling).
    """

    def __init__(
        self,
        decision: BudgetDecision,
        *,
        scope: str = "default",
        event_id: str | None = None,
    ) -> None:
        self.decision = decision
        super().__init__(
            decision.projected.model,
            f"over budget: {decision.reason}",
            rule=",".join(decision.crossed) or None,
            scope=scope,
            event_id=event_id,
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_exceeded, (self.decision, self.scope, self.event_id))


def _rebuild_exceeded(
    decision: BudgetDecision, scope: str, event_id: str | None
) -> BudgetExceededError:
    return BudgetExceededError(decision, scope=scope, event_id=event_id)
