"""Budget arithmetic (pure: runs in workflow code, deterministic, no I/O, no clock).

Before each model call the runtime projects its worst-case cost::

    projected = counted input tokens x input price + max output tokens x output price

and asks the ledger; if ``spent + projected`` would cross a cap the call is refused *before*
it is made. After the call the real cost (reported usage x price) is charged. The ledger is an
immutable value (replaced on every step), so it can live in workflow state and in history.

Money is ``Decimal`` (JSON strings through pydantic, exact round trip). Arithmetic runs in a
fixed 60-digit context that rounds costs *up* and what is left *down*, so no rounding ever
lets a run spend more than its cap, and no thread's ambient decimal context changes a result.
"""

from __future__ import annotations

from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from jamjet_temporal.budget._prices import ModelPrice
from jamjet_temporal.errors import BudgetConfigError
from jamjet_temporal.llm._types import Usage

__all__ = [
    "Budget",
    "BudgetDecision",
    "BudgetLedger",
    "CallCost",
    "Money",
    "Projection",
    "billed_tokens",
    "call_cost",
    "cost_of",
    "money",
    "project",
]

#: An amount in USD: a finite, non-negative ``Decimal`` (a JSON string on the wire).
Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
_Count = Annotated[int, Field(ge=0)]

_TRAPS: list[type[DecimalException]] = [InvalidOperation, DivisionByZero, Overflow]
_UP = Context(prec=60, rounding=ROUND_CEILING, traps=_TRAPS)
_DOWN = Context(prec=60, rounding=ROUND_FLOOR, traps=_TRAPS)
_ZERO = Decimal(0)
#: Slices are cut to this many decimal places (rounded down) so they stay short in history.
_SLICE_PLACES = 12


class Budget(BaseModel):
    """Caps for one run (or one child's slice of it). ``None`` means no cap on that measure.

    Attributes:
        max_cost: Most the run may spend, in USD.
        max_tokens: Most tokens (input + output) the run may use.

    A zero cap is valid (what is left of an exhausted budget): it refuses every call that
    could cost anything.
    """

    model_config = ConfigDict(frozen=True)

    max_cost: Money | None = None
    max_tokens: _Count | None = None


class Projection(BaseModel):
    """The worst case of one call, computed before it is made.

    Attributes:
        model: The model to be called.
        input_tokens: Counted prompt tokens.
        max_output_tokens: The call's output token limit.
        cost: Worst-case cost in USD (every input token at the uncached price).
        tokens: ``input_tokens + max_output_tokens``.
    """

    model_config = ConfigDict(frozen=True)

    model: str
    input_tokens: _Count
    max_output_tokens: _Count
    cost: Money
    tokens: _Count


class CallCost(BaseModel):
    """What one finished call really cost.

    Attributes:
        model: The model called.
        usage: Token usage as the provider reported it.
        cost: ``cost_of(price, usage)`` in USD.
    """

    model_config = ConfigDict(frozen=True)

    model: str
    usage: Usage
    cost: Money


class BudgetDecision(BaseModel):
    """The answer to "may this call go ahead?", with the figures behind it.

    Attributes:
        allowed: True iff spent + projected stays within every cap that is set.
        spent_cost: USD spent before this call.
        spent_tokens: Tokens used before this call.
        projected: The call's worst case.
        cap_cost: The cost cap, if any.
        cap_tokens: The token cap, if any.
        reason: One human line, e.g. ``"$0.41 + projected $0.18 > cap $0.50"``.
    """

    model_config = ConfigDict(frozen=True)

    allowed: bool
    spent_cost: Money
    spent_tokens: _Count
    projected: Projection
    cap_cost: Money | None
    cap_tokens: _Count | None
    reason: str

    @property
    def crossed(self) -> tuple[str, ...]:
        """The caps this call would cross: ``"budget.max_cost"`` and/or ``"budget.max_tokens"``."""
        names: list[str] = []
        if self.cap_cost is not None and _over_cost(
            self.spent_cost, self.projected.cost, self.cap_cost
        ):
            names.append("budget.max_cost")
        if (
            self.cap_tokens is not None
            and self.spent_tokens + self.projected.tokens > self.cap_tokens
        ):
            names.append("budget.max_tokens")
        return tuple(names)


def project(price: ModelPrice, input_tokens: int, max_output_tokens: int) -> Projection:
    """The worst-case cost and tokens of a call, before it is made.

    Every input token is priced at the higher of the uncached and cached input prices (the
    cache may miss), every possible output token at the output price.

    Args:
        price: The model's price (looked up on the worker, recorded in history).
        input_tokens: Counted prompt tokens (``count_message_tokens``).
        max_output_tokens: The call's output limit (``max_tokens`` of the request).

    Returns:
        The projection.

    Raises:
        BudgetConfigError: A token count is negative.
    """
    if input_tokens < 0 or max_output_tokens < 0:
        raise BudgetConfigError(
            f"project(): token counts must be >= 0, got input_tokens={input_tokens}, "
            f"max_output_tokens={max_output_tokens}"
        )
    input_rate = max(price.input_per_mtok, price.cached_input_per_mtok)
    cost = _UP.add(
        _per_mtok(input_tokens, input_rate), _per_mtok(max_output_tokens, price.output_per_mtok)
    )
    return Projection(
        model=price.model,
        input_tokens=input_tokens,
        max_output_tokens=max_output_tokens,
        cost=cost,
        tokens=input_tokens + max_output_tokens,
    )


def cost_of(price: ModelPrice, usage: Usage) -> Decimal:
    """The real cost of a finished call, in USD.

    ``(input - cached) x input price + cached x cached price + output x output price``.
    Reasoning tokens are part of ``output_tokens`` (as OpenAI reports them) and are not
    counted again. If a provider reports more cached than input tokens it reported them
    separately (Anthropic style): both are then charged in full. Negative counts count as 0.

    Args:
        price: The model's price.
        usage: Usage as reported by the provider.

    Returns:
        The cost (exact, or rounded up past 60 digits).
    """
    total_input = max(usage.input_tokens, 0)
    cached = max(usage.cached_input_tokens, 0)
    uncached = total_input - cached if cached <= total_input else total_input
    return _UP.add(
        _UP.add(
            _per_mtok(uncached, price.input_per_mtok),
            _per_mtok(cached, price.cached_input_per_mtok),
        ),
        _per_mtok(max(usage.output_tokens, 0), price.output_per_mtok),
    )


def billed_tokens(usage: Usage) -> int:
    """Tokens a finished call counts against ``Budget.max_tokens``: input + output.

    Cached input tokens are part of input (counted once); reasoning tokens are part of output.

    Args:
        usage: Usage as reported by the provider.

    Returns:
        The token count charged.
    """
    total_input = max(usage.input_tokens, 0)
    cached = max(usage.cached_input_tokens, 0)
    if cached > total_input:
        total_input += cached
    return total_input + max(usage.output_tokens, 0)


def call_cost(price: ModelPrice, usage: Usage) -> CallCost:
    """The ``CallCost`` of a finished call (``cost_of`` with the model and usage attached).

    Args:
        price: The model's price.
        usage: Usage as reported by the provider.

    Returns:
        The call's cost record, ready for ``BudgetLedger.charge``.
    """
    return CallCost(model=price.model, usage=usage, cost=cost_of(price, usage))


class BudgetLedger(BaseModel):
    """A run's spending against its budget: an immutable value, replaced on each step.

    Attributes:
        budget: The caps.
        spent_cost: USD charged so far.
        spent_tokens: Tokens charged so far.
        calls: Every charged call, in order.
    """

    model_config = ConfigDict(frozen=True)

    budget: Budget
    spent_cost: Money = _ZERO
    spent_tokens: _Count = 0
    calls: tuple[CallCost, ...] = ()

    def check(self, projection: Projection) -> BudgetDecision:
        """Whether a call with this projection may go ahead.

        Allowed iff ``spent + projected <= cap`` for cost and for tokens, each when capped
        (reaching a cap exactly is allowed).

        Args:
            projection: The call's worst case (``project``).

        Returns:
            The decision, with the figures and a one-line reason.
        """
        cap_cost, cap_tokens = self.budget.max_cost, self.budget.max_tokens
        cost_over = cap_cost is not None and _over_cost(self.spent_cost, projection.cost, cap_cost)
        tokens_over = cap_tokens is not None and self.spent_tokens + projection.tokens > cap_tokens
        allowed = not (cost_over or tokens_over)
        parts: list[str] = []
        if cap_cost is not None and (allowed or cost_over):
            parts.append(_cost_line(self.spent_cost, projection.cost, cap_cost, over=cost_over))
        if cap_tokens is not None and (allowed or tokens_over):
            sign = ">" if tokens_over else "<="
            parts.append(
                f"{self.spent_tokens:,} + projected {projection.tokens:,} tokens "
                f"{sign} cap {cap_tokens:,} tokens"
            )
        return BudgetDecision(
            allowed=allowed,
            spent_cost=self.spent_cost,
            spent_tokens=self.spent_tokens,
            projected=projection,
            cap_cost=cap_cost,
            cap_tokens=cap_tokens,
            reason="; ".join(parts) or "no budget cap set",
        )

    def charge(self, call: CallCost) -> BudgetLedger:
        """The ledger after a finished call is paid for.

        A call that used more than projected (usage misreported, tokenizer mismatch) is still
        charged in full; the next ``check`` then refuses.

        Args:
            call: The call's real cost (``call_cost``).

        Returns:
            A new ledger; this one is unchanged.
        """
        return self.model_copy(
            update={
                "spent_cost": _UP.add(self.spent_cost, call.cost),
                "spent_tokens": self.spent_tokens + billed_tokens(call.usage),
                "calls": (*self.calls, call),
            }
        )

    def remaining(self) -> Budget:
        """What is left of each cap (never below zero); ``None`` where uncapped.

        Returns:
            The remaining budget.
        """
        cap_cost, cap_tokens = self.budget.max_cost, self.budget.max_tokens
        return Budget(
            max_cost=None
            if cap_cost is None
            else max(_DOWN.subtract(cap_cost, self.spent_cost), _ZERO),
            max_tokens=None if cap_tokens is None else max(cap_tokens - self.spent_tokens, 0),
        )

    def slice(
        self,
        fraction: Decimal | None = None,
        *,
        max_cost: Decimal | None = None,
        max_tokens: int | None = None,
    ) -> Budget:
        """A child's budget, carved out of what is left; never more than ``remaining()``.

        With nothing given, the child gets everything that is left. ``fraction`` takes that
        share of each remaining cap (rounded down); ``max_cost`` / ``max_tokens`` cap the
        child further (and give it a cap where this ledger has none). When several apply, the
        smallest wins.

        Args:
            fraction: Share of the remaining budget, ``0 < fraction <= 1``.
            max_cost: Most the child may spend, in USD.
            max_tokens: Most tokens the child may use.

        Returns:
            The child's budget.

        Raises:
            BudgetConfigError: ``fraction`` is outside ``(0, 1]`` or a cap is negative.
        """
        if fraction is not None:
            fraction = _as_decimal(fraction, "fraction")
            if not fraction.is_finite() or not _ZERO < fraction <= 1:
                raise BudgetConfigError(
                    f"slice(fraction={fraction}): a fraction must be > 0 and <= 1 "
                    "(fix: e.g. Decimal('0.25') for a quarter of what is left)"
                )
        if max_cost is not None:
            max_cost = _as_decimal(max_cost, "max_cost")
            if not max_cost.is_finite() or max_cost < 0:
                raise BudgetConfigError(f"slice(max_cost={max_cost}): must be a finite USD >= 0")
        if max_tokens is not None and max_tokens < 0:
            raise BudgetConfigError(f"slice(max_tokens={max_tokens}): must be >= 0")

        left = self.remaining()
        cost = left.max_cost
        tokens = left.max_tokens
        if fraction is not None:
            if cost is not None:
                cost = _round_down(_DOWN.multiply(cost, fraction))
            if tokens is not None:
                share = _DOWN.multiply(Decimal(tokens), fraction)
                tokens = int(share.to_integral_value(rounding=ROUND_FLOOR, context=_DOWN))
        if max_cost is not None:
            cost = max_cost if cost is None else min(cost, max_cost)
        if max_tokens is not None:
            tokens = max_tokens if tokens is None else min(tokens, max_tokens)
        return Budget(max_cost=cost, max_tokens=tokens)


def money(value: Decimal, *, places: int = 2) -> str:
    """A USD amount for people: ``"$0.41"``, ``"$1,234.57"``.

    Rounds *up* (toward +infinity) to ``places`` decimals, so a printed spent or projected
    figure never understates: $0.0001 prints as ``"$0.01"``.

    Args:
        value: The amount in USD.
        places: Decimal places shown (2 by default).

    Returns:
        The formatted amount.
    """
    shown = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING, context=_UP)
    sign = "-" if shown < 0 else ""
    return f"{sign}${abs(shown):,f}"


def _per_mtok(tokens: int, price_per_mtok: Decimal) -> Decimal:
    return _UP.multiply(Decimal(tokens), price_per_mtok).scaleb(-6, _UP)


def _over_cost(spent: Decimal, projected: Decimal, cap: Decimal) -> bool:
    return _UP.add(spent, projected) > cap


def _places(value: Decimal) -> int:
    exponent = value.normalize(_UP).as_tuple().exponent
    return max(2, -exponent) if isinstance(exponent, int) else 2


def _cost_line(spent: Decimal, projected: Decimal, cap: Decimal, *, over: bool) -> str:
    """``"$s + projected $p > cap $c"``, with figures that never contradict the comparison.

    The cap is shown exactly. Spent and projected are rounded up to 2 places, or to two
    significant digits when smaller than a cent (up to 6 places); when that would make an
    allowed call look over the cap, more places are shown until it does not.
    """
    cap_text = money(cap, places=_places(cap))
    # Two significant digits of a small figure (up to 6 places): "$0.0031", not "$0.01".
    shown_spent, shown_projected = _significant(spent), _significant(projected)
    if not over:
        most = max(_places(spent), _places(projected))
        while (
            max(shown_spent, shown_projected) < most
            and _UP.add(_ceil(spent, shown_spent), _ceil(projected, shown_projected)) > cap
        ):
            shown_spent, shown_projected = shown_spent + 1, shown_projected + 1
    sign = ">" if over else "<="
    return (
        f"{money(spent, places=shown_spent)} + projected "
        f"{money(projected, places=shown_projected)} {sign} cap {cap_text}"
    )


def _significant(value: Decimal, digits: int = 2, most: int = 6) -> int:
    """Decimal places showing ``digits`` significant digits of ``value`` (2 to ``most``)."""
    if value <= 0 or value >= Decimal("0.01"):
        return 2
    return min(most, _places(value), -value.adjusted() + digits - 1)


def _ceil(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING, context=_UP)


def _round_down(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -_SLICE_PLACES:
        return value.quantize(
            Decimal(1).scaleb(-_SLICE_PLACES), rounding=ROUND_FLOOR, context=_DOWN
        )
    return value


def _as_decimal(value: Decimal | int | float | str, name: str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BudgetConfigError(f"slice({name}={value!r}): expected a Decimal")
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise BudgetConfigError(f"slice({name}={value!r}): expected a Decimal") from None
