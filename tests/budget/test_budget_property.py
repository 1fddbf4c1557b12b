"""Property: the loop "project -> check -> (halt | call + charge)" never spends past a cap,
and halts at exactly the first call whose projection would cross it.

The oracle recomputes everything with exact fractions from the prices' decimal text, so it
shares no arithmetic with the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from hypothesis import event, given, settings
from hypothesis import strategies as st

from jamjet_temporal.budget._ledger import Budget, BudgetLedger, call_cost, project
from jamjet_temporal.budget._prices import ModelPrice
from jamjet_temporal.llm._types import Usage

MTOK = 1_000_000


@dataclass(frozen=True)
class Call:
    model: int
    counted_input: int
    max_output: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int


def _price_text() -> st.SearchStrategy[Decimal]:
    # USD per million tokens, 0 to 150 with up to 4 decimals (e.g. 0.075, 2.5, 60).
    return st.integers(min_value=0, max_value=1_500_000).map(lambda n: Decimal(n).scaleb(-4))


@st.composite
def price_tables(draw: st.DrawFn) -> list[ModelPrice]:
    size = draw(st.integers(min_value=1, max_value=4))
    table = []
    for index in range(size):
        table.append(
            ModelPrice(
                model=f"model-{index}",
                input_per_mtok=draw(_price_text()),
                # Any cached price, even above the input price (project() covers that).
                cached_input_per_mtok=draw(_price_text()),
                output_per_mtok=draw(_price_text()),
            )
        )
    return table


@st.composite
def calls(draw: st.DrawFn, models: int) -> Call:
    counted = draw(st.integers(0, 5_000) | st.integers(0, 200_000))
    max_output = draw(st.integers(0, 2_000) | st.integers(0, 64_000))
    used_input = draw(st.integers(min_value=0, max_value=counted))
    cached = draw(st.integers(min_value=0, max_value=used_input))
    output = draw(st.integers(min_value=0, max_value=max_output))
    reasoning = draw(st.integers(min_value=0, max_value=output))
    return Call(
        model=draw(st.integers(min_value=0, max_value=models - 1)),
        counted_input=counted,
        max_output=max_output,
        input_tokens=used_input,
        cached_tokens=cached,
        output_tokens=output,
        reasoning_tokens=reasoning,
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[ModelPrice], list[Call], Budget]:
    table = draw(price_tables())
    sequence = draw(st.lists(calls(len(table)), min_size=0, max_size=30))
    micro_dollars = st.integers(min_value=0, max_value=5_000_000) | st.integers(
        min_value=0, max_value=200_000_000
    )
    cost_cap = draw(st.none() | micro_dollars.map(lambda n: Decimal(n).scaleb(-6)))
    token_cap = draw(
        st.none()
        | st.integers(min_value=0, max_value=300_000)
        | st.integers(min_value=0, max_value=5_000_000)
    )
    return table, sequence, Budget(max_cost=cost_cap, max_tokens=token_cap)


def _frac(value: Decimal) -> Fraction:
    return Fraction(str(value))


def _projected(price: ModelPrice, call: Call) -> tuple[Fraction, int]:
    input_rate = max(_frac(price.input_per_mtok), _frac(price.cached_input_per_mtok))
    cost = (call.counted_input * input_rate + call.max_output * _frac(price.output_per_mtok)) / MTOK
    return cost, call.counted_input + call.max_output


def _actual(price: ModelPrice, call: Call) -> tuple[Fraction, int]:
    uncached = call.input_tokens - call.cached_tokens
    cost = (
        uncached * _frac(price.input_per_mtok)
        + call.cached_tokens * _frac(price.cached_input_per_mtok)
        + call.output_tokens * _frac(price.output_per_mtok)
    ) / MTOK
    return cost, call.input_tokens + call.output_tokens


def _first_crossing(table: list[ModelPrice], sequence: list[Call], budget: Budget) -> int | None:
    """Index of the first call whose projection crosses a cap (None: every call runs)."""
    spent_cost, spent_tokens = Fraction(0), 0
    for index, call in enumerate(sequence):
        price = table[call.model]
        cost, tokens = _projected(price, call)
        if budget.max_cost is not None and spent_cost + cost > _frac(budget.max_cost):
            return index
        if budget.max_tokens is not None and spent_tokens + tokens > budget.max_tokens:
            return index
        actual_cost, actual_tokens = _actual(price, call)
        spent_cost += actual_cost
        spent_tokens += actual_tokens
    return None


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_spent_never_exceeds_cap_and_halts_at_first_crossing(
    scenario: tuple[list[ModelPrice], list[Call], Budget],
) -> None:
    table, sequence, budget = scenario
    ledger = BudgetLedger(budget=budget)
    halted_at: int | None = None
    for index, call in enumerate(sequence):
        price = table[call.model]
        decision = ledger.check(project(price, call.counted_input, call.max_output))
        if not decision.allowed:
            halted_at = index
            assert decision.crossed, decision
            assert " > cap " in decision.reason
            break
        assert " > cap " not in decision.reason
        usage = Usage(
            input_tokens=call.input_tokens,
            cached_input_tokens=call.cached_tokens,
            output_tokens=call.output_tokens,
            reasoning_tokens=call.reasoning_tokens,
        )
        ledger = ledger.charge(call_cost(price, usage))
        # The invariant, after every call: never past a cap.
        if budget.max_cost is not None:
            assert ledger.spent_cost <= budget.max_cost
        if budget.max_tokens is not None:
            assert ledger.spent_tokens <= budget.max_tokens

    event("ran every call" if halted_at is None else f"halted at call {min(halted_at, 3)}+")
    # Stops at the FIRST crossing: every earlier call was allowed, that one was not.
    assert halted_at == _first_crossing(table, sequence, budget)
    charged = len(sequence) if halted_at is None else halted_at
    assert len(ledger.calls) == charged
    # The ledger's totals are exact.
    expected_cost = sum(
        (_actual(table[call.model], call)[0] for call in sequence[:charged]), Fraction(0)
    )
    assert _frac(ledger.spent_cost) == expected_cost
    assert ledger.spent_tokens == sum(_actual(table[c.model], c)[1] for c in sequence[:charged])
    # What is left is never negative and a child's slice never exceeds it.
    left = ledger.remaining()
    child = ledger.slice(Decimal("0.5"))
    if left.max_cost is not None:
        assert left.max_cost >= 0
        assert child.max_cost is not None and child.max_cost <= left.max_cost
    if left.max_tokens is not None:
        assert child.max_tokens is not None and 0 <= child.max_tokens <= left.max_tokens
    # And the whole state survives a JSON round trip unchanged.
    assert BudgetLedger.model_validate_json(ledger.model_dump_json()) == ledger


@settings(max_examples=200, deadline=None)
@given(price_tables(), st.data())
def test_actual_cost_never_exceeds_projection(table: list[ModelPrice], data: st.DataObject) -> None:
    call = data.draw(calls(len(table)))
    price = table[call.model]
    projection = project(price, call.counted_input, call.max_output)
    usage = Usage(
        input_tokens=call.input_tokens,
        cached_input_tokens=call.cached_tokens,
        output_tokens=call.output_tokens,
        reasoning_tokens=call.reasoning_tokens,
    )
    actual = call_cost(price, usage)
    assert actual.cost <= projection.cost
    assert _frac(projection.cost) == _projected(price, call)[0]


def test_long_run_halts_at_the_predicted_call() -> None:
    """100 identical calls, each projected at $0.0105 and costing $0.0075: the cap of $0.50
    admits call k while 0.0075k + 0.0105 <= 0.50, i.e. calls 0..65; call 66 is refused."""
    price = ModelPrice(
        model="m",
        input_per_mtok=Decimal("3"),
        cached_input_per_mtok=Decimal("0.3"),
        output_per_mtok=Decimal("15"),
    )
    ledger = BudgetLedger(budget=Budget(max_cost=Decimal("0.50")))
    usage = Usage(input_tokens=2000, cached_input_tokens=0, output_tokens=100)  # $0.0075
    halted_at = None
    for index in range(100):
        decision = ledger.check(project(price, 2000, 300))  # $0.006 + $0.0045
        if not decision.allowed:
            halted_at = index
            break
        ledger = ledger.charge(call_cost(price, usage))
    assert halted_at == 66
    assert ledger.spent_cost == Decimal("0.495")
    assert decision.reason == "$0.50 + projected $0.02 > cap $0.50"
