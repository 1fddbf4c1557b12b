"""Budget ledger: projection, check, charge, remaining, slice, money, JSON round trips."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from jamjet_temporal.budget._ledger import (
    Budget,
    BudgetDecision,
    BudgetLedger,
    CallCost,
    Projection,
    billed_tokens,
    call_cost,
    cost_of,
    money,
    project,
)
from jamjet_temporal.budget._prices import ModelPrice
from jamjet_temporal.errors import BudgetConfigError, BudgetExceededError, ConfigError, GateError
from jamjet_temporal.llm._types import Usage

MINI = ModelPrice(
    model="gpt-4o-mini",
    provider="openai",
    input_per_mtok=Decimal("0.15"),
    cached_input_per_mtok=Decimal("0.075"),
    output_per_mtok=Decimal("0.60"),
    source="genai-prices test",
)


def test_project_prices_every_input_token_uncached_and_every_output_token() -> None:
    projection = project(MINI, 1_000_000, 500_000)
    assert projection == Projection(
        model="gpt-4o-mini",
        input_tokens=1_000_000,
        max_output_tokens=500_000,
        cost=Decimal("0.45"),
        tokens=1_500_000,
    )
    assert project(MINI, 0, 0).cost == 0
    # A cached price above the input price is used for the projection (the worse case).
    odd = MINI.model_copy(update={"cached_input_per_mtok": Decimal("1")})
    assert project(odd, 1_000_000, 0).cost == Decimal(1)
    with pytest.raises(BudgetConfigError):
        project(MINI, -1, 10)


def test_cost_of_prices_cached_input_and_does_not_double_count_reasoning() -> None:
    usage = Usage(
        input_tokens=1_000_000,
        cached_input_tokens=400_000,
        output_tokens=100_000,
        reasoning_tokens=60_000,
    )
    # 600k x 0.15 + 400k x 0.075 + 100k x 0.60 (reasoning is inside output) per million.
    assert cost_of(MINI, usage) == Decimal("0.09") + Decimal("0.03") + Decimal("0.06")
    assert billed_tokens(usage) == 1_100_000
    # Anthropic-style report (cache reads outside input_tokens): both charged in full.
    separate = Usage(input_tokens=100, cached_input_tokens=1_000_000, output_tokens=0)
    assert cost_of(MINI, separate) == Decimal("0.000015") + Decimal("0.075")
    assert billed_tokens(separate) == 1_000_100
    assert cost_of(MINI, Usage()) == 0


def test_costs_are_exact_decimals() -> None:
    ledger = BudgetLedger(budget=Budget(max_cost=Decimal("1")))
    call = call_cost(MINI, Usage(input_tokens=1, output_tokens=1))  # $0.00000075
    for _ in range(1000):
        ledger = ledger.charge(call)
    assert ledger.spent_cost == Decimal("0.00075")
    assert ledger.spent_tokens == 2000
    assert len(ledger.calls) == 1000


def test_check_allows_up_to_the_cap_inclusive() -> None:
    ledger = BudgetLedger(budget=Budget(max_cost=Decimal("0.50")), spent_cost=Decimal("0.05"))
    exactly = project(MINI, 1_000_000, 500_000)  # $0.45: 0.05 + 0.45 == 0.50
    decision = ledger.check(exactly)
    assert decision.allowed
    assert decision.reason == "$0.05 + projected $0.45 <= cap $0.50"
    one_more = project(MINI, 1_000_000, 500_001)
    refused = ledger.check(one_more)
    assert not refused.allowed
    assert refused.reason == "$0.05 + projected $0.46 > cap $0.50"
    assert refused.crossed == ("budget.max_cost",)


def test_check_reason_line_matches_the_design_example() -> None:
    ledger = BudgetLedger(budget=Budget(max_cost=Decimal("0.50")), spent_cost=Decimal("0.41"))
    projection = Projection(
        model="gpt-4o", input_tokens=10, max_output_tokens=10, cost=Decimal("0.18"), tokens=20
    )
    decision = ledger.check(projection)
    assert not decision.allowed
    assert decision.reason == "$0.41 + projected $0.18 > cap $0.50"
    assert (decision.spent_cost, decision.cap_cost, decision.projected) == (
        Decimal("0.41"),
        Decimal("0.50"),
        projection,
    )


def test_allowed_reason_never_looks_over_the_cap() -> None:
    # 0.4149 + 0.0851 == 0.50 exactly; rounded up to cents it would read $0.42 + $0.09.
    ledger = BudgetLedger(budget=Budget(max_cost=Decimal("0.5")), spent_cost=Decimal("0.4149"))
    projection = Projection(
        model="m", input_tokens=1, max_output_tokens=1, cost=Decimal("0.0851"), tokens=2
    )
    decision = ledger.check(projection)
    assert decision.allowed
    assert decision.reason == "$0.4149 + projected $0.0851 <= cap $0.50"


def test_token_cap_and_both_caps() -> None:
    ledger = BudgetLedger(budget=Budget(max_cost=Decimal("10"), max_tokens=1000), spent_tokens=900)
    ok = ledger.check(project(MINI, 50, 50))
    assert ok.allowed
    assert (
        ok.reason == "$0.00 + projected $0.000038 <= cap $10.00; "
        "900 + projected 100 tokens <= cap 1,000 tokens"
    )
    over = ledger.check(project(MINI, 50, 51))
    assert not over.allowed
    assert over.reason == "900 + projected 101 tokens > cap 1,000 tokens"
    assert over.crossed == ("budget.max_tokens",)
    both = BudgetLedger(budget=Budget(max_cost=Decimal("0.01"), max_tokens=10)).check(
        project(MINI, 1_000_000, 0)
    )
    assert both.crossed == ("budget.max_cost", "budget.max_tokens")
    assert both.reason == (
        "$0.00 + projected $0.15 > cap $0.01; 0 + projected 1,000,000 tokens > cap 10 tokens"
    )


def test_no_cap_allows_everything() -> None:
    decision = BudgetLedger(budget=Budget()).check(project(MINI, 10**9, 10**9))
    assert decision.allowed
    assert decision.reason == "no budget cap set"
    assert decision.crossed == ()


def test_charge_returns_a_new_ledger() -> None:
    ledger = BudgetLedger(budget=Budget(max_cost=Decimal("1"), max_tokens=10_000))
    call = call_cost(MINI, Usage(input_tokens=1000, cached_input_tokens=200, output_tokens=300))
    after = ledger.charge(call)
    assert ledger.spent_cost == 0 and ledger.calls == ()
    assert after.spent_cost == call.cost == Decimal("0.000315")  # 800x.15 + 200x.075 + 300x.6
    assert after.spent_tokens == 1300
    assert after.calls == (call,)
    with pytest.raises(ValidationError):
        after.spent_cost = Decimal(0)


def test_overspend_is_charged_and_the_next_check_refuses() -> None:
    ledger = BudgetLedger(budget=Budget(max_cost=Decimal("0.001")))
    ledger = ledger.charge(call_cost(MINI, Usage(input_tokens=0, output_tokens=10_000)))
    assert ledger.spent_cost == Decimal("0.006")
    assert ledger.remaining() == Budget(max_cost=Decimal(0))
    assert not ledger.check(project(MINI, 1, 0)).allowed
    assert ledger.check(project(MINI, 0, 0)).allowed is False  # already over


def test_remaining() -> None:
    ledger = BudgetLedger(
        budget=Budget(max_cost=Decimal("0.50"), max_tokens=1000),
        spent_cost=Decimal("0.41"),
        spent_tokens=250,
    )
    assert ledger.remaining() == Budget(max_cost=Decimal("0.09"), max_tokens=750)
    assert BudgetLedger(budget=Budget()).remaining() == Budget()
    spent = BudgetLedger(budget=Budget(max_tokens=10), spent_tokens=12)
    assert spent.remaining() == Budget(max_tokens=0)


def test_slice() -> None:
    ledger = BudgetLedger(
        budget=Budget(max_cost=Decimal("1.00"), max_tokens=1001),
        spent_cost=Decimal("0.40"),
        spent_tokens=1,
    )
    assert ledger.slice() == Budget(max_cost=Decimal("0.60"), max_tokens=1000)
    assert ledger.slice(Decimal("0.25")) == Budget(max_cost=Decimal("0.15"), max_tokens=250)
    assert ledger.slice(max_cost=Decimal("0.10")) == Budget(
        max_cost=Decimal("0.10"), max_tokens=1000
    )
    assert ledger.slice(max_cost=Decimal("5"), max_tokens=5000) == ledger.remaining()
    assert ledger.slice(Decimal("0.5"), max_cost=Decimal("0.2"), max_tokens=100) == Budget(
        max_cost=Decimal("0.2"), max_tokens=100
    )
    thirds = ledger.slice(Decimal(1) / Decimal(3))
    assert thirds.max_cost is not None and thirds.max_cost <= Decimal("0.20")
    assert thirds.max_cost == Decimal("0.199999999999")  # rounded down to 12 places
    assert thirds.max_tokens == 333
    uncapped = BudgetLedger(budget=Budget())
    assert uncapped.slice(Decimal("0.5")) == Budget()
    assert uncapped.slice(max_cost=Decimal("2")) == Budget(max_cost=Decimal("2"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fraction": Decimal(0)},
        {"fraction": Decimal("1.01")},
        {"fraction": Decimal("NaN")},
        {"max_cost": Decimal("-1")},
        {"max_tokens": -1},
    ],
)
def test_bad_slice_is_a_config_error(kwargs: dict[str, object]) -> None:
    ledger = BudgetLedger(budget=Budget(max_cost=Decimal(1)))
    with pytest.raises(BudgetConfigError) as caught:
        ledger.slice(**kwargs)  # type: ignore[arg-type]
    assert isinstance(caught.value, ConfigError)


def test_budget_validation() -> None:
    assert Budget(max_cost=Decimal("0.5"), max_tokens=10).max_cost == Decimal("0.5")
    assert Budget(max_cost=0.1).max_cost == Decimal("0.1")  # type: ignore[arg-type]
    for bad in ({"max_cost": Decimal(-1)}, {"max_tokens": -5}, {"max_cost": "Infinity"}):
        with pytest.raises(ValidationError):
            Budget.model_validate(bad)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.41"), "$0.41"),
        (Decimal("0.401"), "$0.41"),  # rounded up: never understates
        (Decimal("0.4100000001"), "$0.42"),
        (Decimal("0.0001"), "$0.01"),
        (Decimal("0"), "$0.00"),
        (Decimal("1E+2"), "$100.00"),
        (Decimal("1234567.891"), "$1,234,567.90"),
        (Decimal("-0.5"), "-$0.50"),
    ],
)
def test_money(value: Decimal, text: str) -> None:
    assert money(value) == text


def test_money_places() -> None:
    assert money(Decimal("0.00045"), places=4) == "$0.0005"
    assert money(Decimal("0.00045"), places=5) == "$0.00045"


def _samples() -> list[BaseModel]:
    ledger = BudgetLedger(budget=Budget(max_cost=Decimal("0.50"), max_tokens=100_000))
    call = call_cost(
        MINI,
        Usage(input_tokens=1234, cached_input_tokens=34, output_tokens=567, reasoning_tokens=89),
    )
    ledger = ledger.charge(call)
    projection = project(MINI, 4321, 1000)
    return [
        MINI,
        Budget(),
        Budget(max_cost=Decimal("0.123456789012345678901234567890"), max_tokens=7),
        projection,
        call,
        ledger,
        ledger.check(projection),
        BudgetLedger(budget=Budget(max_cost=Decimal("0.0001"))).check(projection),
    ]


@pytest.mark.parametrize("sample", _samples(), ids=lambda sample: type(sample).__name__)
def test_json_round_trip_is_exact(sample: BaseModel) -> None:
    text = sample.model_dump_json()
    back = type(sample).model_validate_json(text)
    assert back == sample
    assert back.model_dump_json() == text  # same digits, not just equal values


@pytest.mark.parametrize("sample", _samples(), ids=lambda sample: type(sample).__name__)
def test_temporal_pydantic_converter_round_trip(sample: BaseModel) -> None:
    converter = pydantic_data_converter.payload_converter
    payloads = converter.to_payloads([sample])
    (back,) = converter.from_payloads(payloads, [type(sample)])
    assert back == sample
    assert repr(back) == repr(sample)


def test_money_fields_are_json_strings() -> None:
    text = BudgetLedger(
        budget=Budget(max_cost=Decimal("0.50")), spent_cost=Decimal("0.1")
    ).model_dump_json()
    assert '"max_cost":"0.50"' in text and '"spent_cost":"0.1"' in text


def test_budget_exceeded_error() -> None:
    ledger = BudgetLedger(budget=Budget(max_cost=Decimal("0.50")), spent_cost=Decimal("0.41"))
    decision = ledger.check(
        Projection(
            model="gpt-4o", input_tokens=1, max_output_tokens=1, cost=Decimal("0.18"), tokens=2
        )
    )
    error = BudgetExceededError(decision, scope="run", event_id="ev-1")
    assert isinstance(error, GateError)
    assert error.subject == "gpt-4o"
    assert error.rule == "budget.max_cost"
    assert str(error) == (
        "'gpt-4o' refused: over budget: $0.41 + projected $0.18 > cap $0.50 (scope run) "
        "[audit ev-1]"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, BudgetExceededError)
    assert copy.decision == decision and str(copy) == str(error)
    assert isinstance(copy.decision, BudgetDecision)


def test_call_cost_fields() -> None:
    call = call_cost(MINI, Usage(input_tokens=10, output_tokens=5))
    assert call == CallCost(
        model="gpt-4o-mini",
        usage=Usage(input_tokens=10, output_tokens=5),
        cost=Decimal("0.0000045"),
    )
