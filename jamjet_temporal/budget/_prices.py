"""Model prices: looked up on the worker, handed to workflow code as data.

``PriceTable.price(model)`` runs on the worker (activity side): it reads the user's overrides
first (self-hosted models, negotiated rates), then the price table bundled in the
``genai-prices`` wheel. It never touches the network and never auto-updates: the bundled data
is read directly, so an ``UpdatePrices`` background refresh elsewhere in the process does not
change the answer. The resulting ``ModelPrice`` is plain data; passed to a workflow it is
recorded in history, so replaying a run re-uses the price the original run saw even after the
package (and its table) is upgraded.

``ModelPrice`` itself is pure and may be imported in workflow code; ``genai_prices`` is only
imported when a ``PriceTable`` is built.

Money representation: ``Decimal`` everywhere, serialized by pydantic as a JSON *string*
(``"0.075"``), which round-trips exactly. Floats drift (0.1 + 0.2); integer micro-dollars
cannot hold a per-token cost (gpt-4o-mini cached input is $0.000000075 a token, so one call's
cost would have to be rounded, and the rounding would accumulate over a run).

Conservative choices, so that a projection never understates what a call can cost:

* a missing cached-input price falls back to the (higher) input price;
* tiered prices (a higher rate past N input tokens) resolve to their highest tier;
* time-of-day prices (off-peak discounts) resolve to the highest price that can apply on the
  lookup's date, so a call made minutes later across a boundary is still covered;
* request-context variants (batch, priority service tier) are not applied: the standard
  price is used. Per-request and per-search fees are not included (token prices only).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jamjet_temporal.errors import ConfigError, UnknownModelPriceError

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot
    from genai_prices.types import ModelInfo
    from genai_prices.types import ModelPrice as GenaiModelPrice

__all__ = ["OVERRIDE_SOURCE", "ModelPrice", "PerMTok", "PriceTable"]

#: ``ModelPrice.source`` of a price given by the user rather than read from genai-prices.
OVERRIDE_SOURCE = "override"

#: A price in USD per million tokens: a finite, non-negative ``Decimal``.
PerMTok = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]

_OVERRIDE_KEYS = ("input_per_mtok", "cached_input_per_mtok", "output_per_mtok", "provider")


class ModelPrice(BaseModel):
    """What one model costs, in USD per million tokens.

    Attributes:
        model: The model id, as the workflow names it.
        provider: The provider whose price this is (``None`` for an override without one).
        input_per_mtok: Price of uncached input (prompt) tokens.
        cached_input_per_mtok: Price of input tokens served from the provider's prompt cache;
            defaults to ``input_per_mtok`` when not given (conservative).
        output_per_mtok: Price of output tokens (reasoning tokens included).
        source: ``"genai-prices <version>"`` or ``"override"``.
    """

    model_config = ConfigDict(frozen=True)

    model: str = Field(min_length=1)
    provider: str | None = None
    input_per_mtok: PerMTok
    cached_input_per_mtok: PerMTok = Field(
        default_factory=lambda data: data["input_per_mtok"]  # missing or None: the input price
    )
    output_per_mtok: PerMTok
    source: str = OVERRIDE_SOURCE

    @model_validator(mode="before")
    @classmethod
    def _none_cached_is_missing(cls, data: object) -> object:
        if isinstance(data, Mapping) and "cached_input_per_mtok" in data:
            if data["cached_input_per_mtok"] is None:
                return {k: v for k, v in data.items() if k != "cached_input_per_mtok"}
        return data


class PriceTable:
    """Looks model prices up: the user's overrides first, then genai-prices' bundled table.

    Worker (activity) side only: the lookup reads the clock (prices change on dates) and the
    package's data. Hand the resulting ``ModelPrice`` to workflow code as data.

    Example::

        table = PriceTable({"llama3.1:8b": {"input_per_mtok": "0", "output_per_mtok": "0"}})
        table.price("gpt-4o-mini").input_per_mtok   # Decimal('0.15')

    Args:
        overrides: Prices by model id, as ``ModelPrice`` objects or mappings with
            ``input_per_mtok``, ``output_per_mtok`` and optionally ``cached_input_per_mtok``
            and ``provider`` (numbers or decimal strings, USD per million tokens). An override
            wins over genai-prices for the same model id (exact, case-sensitive match).
        provider: Restrict genai-prices lookups to this provider id (``"openai"``,
            ``"anthropic"``, ...); by default the provider is inferred from the model id.

    Raises:
        ConfigError: An override is malformed, or ``provider`` is unknown to genai-prices.
    """

    def __init__(
        self,
        overrides: Mapping[str, ModelPrice | Mapping[str, float | str]] | None = None,
        *,
        provider: str | None = None,
    ) -> None:
        self._overrides: Mapping[str, ModelPrice] = MappingProxyType(
            {model: _coerce_override(model, value) for model, value in (overrides or {}).items()}
        )
        self._provider = provider
        self._snapshot: DataSnapshot | None = None
        if provider is not None:
            from genai_prices.data_snapshot import find_provider_by_id

            if find_provider_by_id(self._data().providers, provider) is None:
                raise ConfigError(
                    f"PriceTable(provider='{provider}'): genai-prices {_genai_version()} knows no "
                    "such provider (fix: use one of its provider ids such as 'openai' or "
                    "'anthropic', or provider=None to infer it from the model id)"
                )

    @property
    def overrides(self) -> Mapping[str, ModelPrice]:
        """The user's prices by model id (read-only)."""
        return self._overrides

    @property
    def provider(self) -> str | None:
        """The provider genai-prices lookups are restricted to, if any."""
        return self._provider

    @property
    def source(self) -> str:
        """``"genai-prices <version>"``: where prices not overridden come from."""
        return f"genai-prices {_genai_version()}"

    def price(self, model: str, *, at: datetime | None = None) -> ModelPrice:
        """The price of ``model``: its override, else genai-prices' price at ``at``.

        Args:
            model: The model id the workflow calls.
            at: When the call happens, to pick dated prices; defaults to now (UTC).

        Returns:
            The model's price, with ``source`` saying where it came from.

        Raises:
            UnknownModelPriceError: Neither an override nor genai-prices has a per-token
                price for ``model``; the message says how to add an override.
        """
        override = self._overrides.get(model)
        if override is not None:
            return override
        from genai_prices.types import TieredPrices

        try:
            provider, info = self._data().find_provider_model(model, None, self._provider, None)
        except LookupError as error:
            raise UnknownModelPriceError(
                model, provider=self._provider, reason=f"genai-prices {_genai_version()}: {error}"
            ) from None
        rates = _candidate_prices(info, at or datetime.now(UTC))

        def highest(key: str) -> Decimal | None:
            found: Decimal | None = None
            for rate in rates:
                value = getattr(rate, key)
                if isinstance(value, TieredPrices):
                    value = max([value.base, *(tier.price for tier in value.tiers)])
                if isinstance(value, Decimal) and (found is None or value > found):
                    found = value
            return found

        input_price = highest("input_mtok")
        output_price = highest("output_mtok")
        if input_price is None or output_price is None:
            raise UnknownModelPriceError(
                model,
                provider=provider.id,
                reason=(
                    f"genai-prices {_genai_version()} has no per-token input and output price "
                    f"for '{info.id}' (priced by image, audio or request?)"
                ),
            )
        cached = highest("cache_read_mtok")
        return ModelPrice(
            model=model,
            provider=provider.id,
            input_per_mtok=input_price,
            cached_input_per_mtok=input_price if cached is None else cached,
            output_per_mtok=output_price,
            source=self.source,
        )

    def _data(self) -> DataSnapshot:
        if self._snapshot is None:
            self._snapshot = _bundled()
        return self._snapshot


def _candidate_prices(info: ModelInfo, at: datetime) -> list[GenaiModelPrice]:
    """Every price of ``info`` that can apply on ``at``'s date (UTC), at any time of day.

    genai-prices applies the last active conditional price. Date constraints are decided by the
    date; time-of-day constraints (off-peak discounts) may switch within minutes, so all of
    those listed after the date-selected price are candidates too.
    """
    from genai_prices.types import ModelPrice as GenaiPrice
    from genai_prices.types import TimeOfDateConstraint

    if isinstance(info.prices, GenaiPrice):
        return [info.prices]
    conditional = info.prices
    base = 0
    for index, entry in enumerate(conditional):
        if entry.constraint is None or (
            not isinstance(entry.constraint, TimeOfDateConstraint) and entry.constraint.active(at)
        ):
            base = index
    candidates = [conditional[base].prices]
    candidates += [
        entry.prices
        for entry in conditional[base + 1 :]
        if isinstance(entry.constraint, TimeOfDateConstraint)
    ]
    return candidates


def _coerce_override(model: str, value: ModelPrice | Mapping[str, float | str]) -> ModelPrice:
    if isinstance(value, ModelPrice):
        return value.model_copy(update={"model": model, "source": OVERRIDE_SOURCE})
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"prices['{model}']: expected a mapping such as {{'input_per_mtok': '0.50', "
            f"'output_per_mtok': '1.50'}} or a ModelPrice, got {type(value).__name__}"
        )
    unknown = sorted(set(value) - set(_OVERRIDE_KEYS))
    if unknown:
        raise ConfigError(
            f"prices['{model}']: unknown key(s) {', '.join(unknown)} "
            f"(fix: use {', '.join(_OVERRIDE_KEYS)})"
        )
    fields: dict[str, object] = {"model": model, "source": OVERRIDE_SOURCE}
    for key, raw in value.items():
        if key == "provider":
            fields[key] = raw
        elif isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
            raise ConfigError(
                f"prices['{model}'].{key}: expected a number or a decimal string "
                f"(USD per million tokens), got {raw!r}"
            )
        else:
            # repr() of a float is its shortest round-tripping text: 0.15 -> Decimal('0.15').
            fields[key] = Decimal(repr(raw)) if isinstance(raw, float) else raw
    try:
        return ModelPrice.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'value'}: {item['msg']}"
            for item in error.errors()
            if item["type"] != "default_factory_not_called"
        )
        raise ConfigError(
            f"prices['{model}']: {problems} (fix: give input_per_mtok and output_per_mtok as "
            "non-negative numbers or decimal strings, USD per million tokens)"
        ) from None


def _genai_version() -> str:
    from genai_prices import __version__

    return __version__


_BUNDLED: list[DataSnapshot] = []


def _bundled() -> DataSnapshot:
    """The price data shipped in the genai-prices wheel (never a downloaded update)."""
    if not _BUNDLED:
        from genai_prices.data import providers
        from genai_prices.data_snapshot import DataSnapshot

        _BUNDLED.append(DataSnapshot(providers=providers, from_auto_update=False))
    return _BUNDLED[0]
