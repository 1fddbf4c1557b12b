"""Conditions: Python-like and Jinja2 syntax, missing values, sandbox and runtime errors."""

from __future__ import annotations

import operator
import pickle
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jamjet_temporal.errors import PipelineRuntimeError
from jamjet_temporal.pipeline._expr import (
    ALLOWED_SYNTAX,
    Condition,
    compile_condition,
    evaluate_condition,
)

STATE: dict[str, object] = {
    "review": {"approved": True, "score": 0.8, "notes": None},
    "category": "Urgent",
    "items": [{"name": "a"}, {"name": "b"}],
    "count": 3,
    "tags": ["x", "y"],
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("state.review.approved", True),
        ("state.review.score > 0.5", True),
        ("state.review.score >= 0.8 and state.count == 3", True),
        ("state.count < 2 or state.category == 'Urgent'", True),
        ("not state.review.approved", False),
        ("state['category'] != 'low'", True),
        ("state.items[1].name == 'b'", True),
        ("state.items[-1]['name'] == 'b'", True),
        ("'x' in state.tags and 'z' not in state.tags", True),
        ("state.category in ['Urgent', 'High']", True),
        ("state.category in ('Low',)", False),
        ("state.review.notes is None", True),
        ("state.review.approved is not False", True),
        ("state.review.approved is True", True),
        ("1 < state.count < 5", True),
        ("1 < state.count < 3", False),
        ("-state.count == -3", True),
        ("state.count + 1 == 4 and state.count - 1 == 2", True),
        ("state.count * 2 == 6 and state.count / 2 == 1.5", True),
        ("state.count % 2 == 1 and state.count // 2 == 1", True),
        ("state.category + '!' == 'Urgent!'", True),
        ("len(state.items) == 2", True),
        ("str(state.count) == '3' and int('7') == 7 and float('0.5') == 0.5", True),
        ("bool(state.tags) and abs(-2) == 2", True),
        ("min(state.count, 10) == 3 and max(state.tags) == 'y'", True),
        ("state.category.lower() == 'urgent' and state.category.upper() == 'URGENT'", True),
        ("state.category.startswith('Ur') and state.category.endswith('ent')", True),
        ("state.category.lower().startswith('urg')", True),
        ("'  x '.strip() == 'x'", True),
        ("state.count", True),  # truthy value is coerced to bool
        ("state.tags[5]", False),
        ("True", True),
        ("False", False),
        ("None", False),
    ],
)
def test_evaluates_python_like_expressions(source: str, expected: bool) -> None:
    assert compile_condition(source).evaluate(STATE) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('state.review.approved == true and state.category == "Urgent"', True),
        ("state.review.score >= 0.8 and not state.done", True),
        ("state.tags | length > 1", True),
        ("state.items | map(attribute='name') | list == ['a', 'b']", True),
        ("state.category | lower == 'urgent'", True),
        ("state.review.notes is none and state.review is defined", True),
        ("state.missing is undefined", True),
        ("state.count is odd", True),
        ("state.category ~ '!' == 'Urgent!'", True),
        ("'yes' if state.count > 2 else ''", True),
        ("{'a': 1}.a == 1", True),
        ("state.tags[0:1] == ['x']", True),
        ("state.count ** 2 == 9", True),
    ],
)
def test_evaluates_jamjet_and_jinja_expressions(source: str, expected: bool) -> None:
    assert evaluate_condition(source, STATE) is expected


@pytest.mark.parametrize(
    "source",
    [
        "state.missing",
        "state.missing.deeper.still",
        "state.category.length",  # attribute lookup on a string is not a method call
        "state.items.name",  # attribute lookup on a list
        "state['missing']",
        "state.items[9]",
        "state.count[0]",
        "state.review.notes",  # a real None
    ],
)
def test_missing_keys_and_lookups_on_non_dicts_read_as_none(source: str) -> None:
    assert evaluate_condition(f"({source}) is None", STATE) is True
    assert evaluate_condition(f"({source}) is not None", STATE) is False
    assert evaluate_condition(f"({source}) == None", STATE) is True
    assert evaluate_condition(source, STATE) is False


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("state.missing == 'x'", False),
        ("state.missing != 'x'", True),
        ("'x' == state.missing", False),
        ("not state.missing", True),
        ("state.missing.a.b.c", False),
        ("state.missing is defined", False),
        ("'a' in state.missing", False),
        ("len(state.missing) == 0", True),
        ("state.missing or state.count == 3", True),
        ("state.missing == state.other_missing", True),
    ],
)
def test_a_missing_value_is_falsy_and_equal_to_none(source: str, expected: bool) -> None:
    assert evaluate_condition(source, STATE) is expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("__import__('os')", "calling '__import__' is not allowed"),
        ("open('x')", "calling 'open'"),
        ("state.__class__", "the attribute '__class__' is not allowed"),
        ("state.count.__class__.__mro__", "'__mro__'"),
        ("x > 1", "unknown name 'x': a condition can only read 'state' (e.g. state.x)"),
        ("len", "unknown name 'len'; call it as len(x)"),
        # The functions are plain functions, and must be called: no str.format escape.
        ("str.format('{0.__class__}', 1) == ''", "unknown name 'str'; call it as str(x)"),
        ("lambda: 1", "invalid syntax at column 7"),
        ("[t for t in state.tags]", "invalid syntax at column 4"),
        ("f'{state.count}'", "invalid syntax"),
        ("(y := 1)", "invalid syntax"),
        ("~state.count", "invalid syntax"),
        ("state.count & 1", "invalid syntax"),
        ("state.count is 3", "invalid syntax at column 16"),
        ("state.a | nofilter", "No filter named 'nofilter'"),
        ("state.a is nosuch", "No test named 'nosuch'"),
        ("state.tags | random", "No filter named 'random'"),
        ("state.count >", "the expression is incomplete"),
        ("state.score > = 3", "invalid syntax at column 15: unexpected '='"),
        ("state..count", "invalid syntax at column"),
        ("state.a\n  state.b", "invalid syntax at line 2, column 3"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_refuses_forbidden_or_invalid_expressions_at_compile_time(
    source: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        compile_condition(source)


def test_a_condition_must_be_text() -> None:
    with pytest.raises(ValueError, match="must be text, got int"):
        compile_condition(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("state.missing < 3", "state has no key 'missing'; keys there: category, count, "),
        ("state.missing < 3", "a missing value can only be tested"),
        ("state.review.nope > 1", "state.review has no key 'nope'; keys there: approved, "),
        ("state.count / 0 > 1", "division by zero"),
        ("int(state.category) == 1", "invalid literal"),
        ("state.missing.lower() == 'x'", "state has no key 'missing'"),
        ("state.category.startswith(1)", "must be str"),
        ("state.category > 3", "'>' not supported between instances of 'str' and 'int'"),
        ("state.category * 1000000 == ''", "'*' would build 6000000 items or characters"),
        ("state.count ** 1000000 > 1", "'**' would compute a number of over"),
        ("-state.category == 1", "bad operand type for unary -"),
        ("len(state.count) > 0", "has no len"),
        ("state['__class__']", "refused by the sandbox"),
        ("state.tags.append('z')", "refused by the sandbox"),
    ],
)
def test_evaluation_errors_are_pipeline_runtime_errors_naming_the_expression(
    source: str, message: str
) -> None:
    condition = compile_condition(source)
    with pytest.raises(PipelineRuntimeError) as caught:
        condition.evaluate(STATE, node="route")
    assert type(caught.value) is PipelineRuntimeError
    assert caught.value.node == "route"
    assert repr(source) in caught.value.reason
    assert message in caught.value.reason
    assert STATE["tags"] == ["x", "y"]


def test_and_or_short_circuit_so_the_guarded_side_never_fails() -> None:
    assert evaluate_condition("state.missing is not None and state.missing > 3", STATE) is False
    assert evaluate_condition("state.missing is None or state.missing > 3", STATE) is True


def test_evaluate_condition_turns_compile_errors_into_runtime_errors() -> None:
    with pytest.raises(PipelineRuntimeError, match="unknown name 'x'") as caught:
        evaluate_condition("x == 1", STATE, node="n")
    assert caught.value.node == "n"


def test_an_unchecked_condition_fails_as_a_runtime_error() -> None:
    with pytest.raises(PipelineRuntimeError, match="unknown name 'x'") as caught:
        Condition("x == 1").evaluate(STATE, node="n")
    assert caught.value.node == "n"


def test_evaluation_does_not_modify_the_state() -> None:
    state: dict[str, object] = {"a": {"b": [1, 2]}}
    evaluate_condition("len(state.a.b + [3]) == 3 and state.a.b[0] == 1", state)
    assert state == {"a": {"b": [1, 2]}}


def test_compiled_condition_is_reusable_and_keeps_its_source() -> None:
    condition = compile_condition("state.n > 1")
    assert isinstance(condition, Condition)
    assert condition.source == "state.n > 1"
    assert [condition.evaluate({"n": n}) for n in (0, 1, 2, 3)] == [False, False, True, True]
    assert pickle.loads(pickle.dumps(condition)).evaluate({"n": 5}) is True


def test_surrounding_whitespace_and_newlines_are_accepted() -> None:
    assert evaluate_condition("  state.count == 3\n", STATE) is True
    assert evaluate_condition("state.count == 3\n  and state.review.approved", STATE) is True


def test_extra_names_can_be_declared_and_bound() -> None:
    output = {"score": 0.9, "label": "ok"}
    names = {"output": output}
    assert evaluate_condition("output.score > 0.5 and state.count == 3", STATE, names=names)
    assert evaluate_condition("output.missing is None", STATE, names=names) is True
    condition = compile_condition("output.label == 'ok'", names=["output"])
    assert condition.names == ("output",)
    assert condition.evaluate(STATE, names=names) is True
    assert condition.evaluate(STATE) is False  # not given: a missing value
    with pytest.raises(
        ValueError, match="unknown name 'output': a condition can only read 'state'"
    ):
        compile_condition("output.score > 0.5")
    with pytest.raises(ValueError, match="cannot be a condition's name"):
        compile_condition("len(state.tags) > 0", names=["len"])


def test_allowed_syntax_is_one_line() -> None:
    assert "\n" not in ALLOWED_SYNTAX
    assert "is None" in ALLOWED_SYNTAX


# ------------------------------------------------------------------------------------------
# Property test: random states and comparisons agree with a direct Python computation.

_KEYS = ("a", "b", "c")
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=5),
    st.sampled_from([0.5, -1.5, 2.0]),
    st.sampled_from(["", "a", "b", "ab"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3),
    max_leaves=8,
)
_states = st.dictionaries(st.sampled_from(_KEYS), _values, max_size=3)
_paths = st.lists(st.sampled_from(_KEYS), min_size=1, max_size=3)
_OPS: dict[str, Callable[[Any, Any], object]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _lookup(state: object, path: list[str]) -> object:
    for key in path:
        state = state.get(key) if isinstance(state, dict) else None
    return state


def _path_source(path: list[str], bracket: bool) -> str:
    if bracket:
        return "state" + "".join(f"[{key!r}]" for key in path)
    return "state." + ".".join(path)


@st.composite
def _comparisons(draw: st.DrawFn) -> tuple[str, Callable[[dict[str, object]], object]]:
    """A comparison `path op constant` as source text and as a Python function."""
    path = draw(_paths)
    op = draw(st.sampled_from(sorted(_OPS)))
    constant = draw(_scalars)
    source = f"{_path_source(path, draw(st.booleans()))} {op} {constant!r}"
    return source, lambda state: _OPS[op](_lookup(state, path), constant)


@st.composite
def _expressions(draw: st.DrawFn) -> tuple[str, Callable[[dict[str, object]], object]]:
    """One comparison, or `and`/`or`/`not` over comparisons, with Python semantics."""
    left_src, left = draw(_comparisons())
    shape = draw(st.sampled_from(["one", "and", "or", "not"]))
    if shape == "one":
        return left_src, left
    if shape == "not":
        return f"not ({left_src})", lambda state: not left(state)
    right_src, right = draw(_comparisons())
    if shape == "and":
        return f"({left_src}) and ({right_src})", lambda state: left(state) and right(state)
    return f"({left_src}) or ({right_src})", lambda state: left(state) or right(state)


@settings(max_examples=300, deadline=None)
@given(state=_states, expression=_expressions())
def test_evaluator_agrees_with_python(
    state: dict[str, object], expression: tuple[str, Callable[[dict[str, object]], object]]
) -> None:
    source, direct = expression
    condition = compile_condition(source)
    try:
        expected: object = bool(direct(state))
    except TypeError:
        expected = TypeError
    if expected is TypeError:
        with pytest.raises(PipelineRuntimeError):
            condition.evaluate(state)
    else:
        assert condition.evaluate(state) is expected


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(value=_json)
def test_any_json_value_equals_itself(value: object) -> None:
    state = {"k": value}
    assert evaluate_condition("state.k == state.k", state) is True
    assert evaluate_condition("state.k != state.k", state) is False
    assert evaluate_condition("state.k is None", state) is (value is None)
