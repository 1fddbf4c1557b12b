"""Jinja2 templates: checking, rendering, filters and blocks, errors, sandbox, native values."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from jamjet_temporal._shared._canonical import canonical_json
from jamjet_temporal.errors import TemplateError
from jamjet_temporal.pipeline._template import (
    TemplateSyntaxError,
    check_template,
    render,
    render_value,
)

STATE: dict[str, object] = {
    "ticket": "Printer on fire",
    "user": {"name": "Ann", "age": 41, "tags": ["vip"]},
    "items": [{"name": "first", "qty": 2}, {"name": "second", "qty": 1}],
    "score": 0.75,
    "flag": True,
    "nothing": None,
    "unicode": "café ✓",
    "by_id": {"0": "zero"},
}


# ------------------------------------------------------------------------------------------
# References and output


def test_strings_are_inserted_as_they_are() -> None:
    assert render("Ticket: {{ state.ticket }}!", STATE) == "Ticket: Printer on fire!"


def test_whitespace_inside_braces_is_optional() -> None:
    assert render("{{state.user.name}}|{{   state.user.name   }}", STATE) == "Ann|Ann"


def test_integer_segments_index_lists_and_dict_keys() -> None:
    assert render("{{ state.items.1.name }} {{ state.by_id.0 }}", STATE) == "second zero"


def test_subscripts_and_negative_indexes() -> None:
    assert render("{{ state['user']['name'] }} {{ state.items[-1].name }}", STATE) == "Ann second"


def test_a_dict_key_wins_over_a_dict_method() -> None:
    # `items` is a key of the state, not dict.items; methods still work on other dicts.
    assert render("{{ state.items | length }}", STATE) == "2"
    assert render("{{ state.user.keys() | list }}", STATE) == '["name","age","tags"]'


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ state.user.age }}", "41"),
        ("{{ state.score }}", "0.75"),
        ("{{ state.flag }}", "true"),
        ("{{ state.nothing }}", "null"),
        ("{{ state.user.tags }}", '["vip"]'),
        ("{{ state.user }}", '{"age":41,"name":"Ann","tags":["vip"]}'),
        ("{{ state.items.0 }}", '{"name":"first","qty":2}'),
        ("{{ state.user.age > 40 }}", "true"),
        ("{{ (1, 2) }}", "[1,2]"),
    ],
)
def test_other_values_are_compact_sorted_json(template: str, expected: str) -> None:
    assert render(template, STATE) == expected


def test_non_ascii_is_kept_in_json_and_text() -> None:
    assert render("{{ state.unicode }} {{ state.x }}", {**STATE, "x": ["é"]}) == 'café ✓ ["é"]'


@pytest.mark.parametrize(
    "text",
    [
        'Reply as JSON like {"a": [1, {"b": 2} ]} and a single } or {.',
        'Nested JSON {"a": {"b": 1}} and a stray }} are text',
        "",
    ],
)
def test_text_without_tags_is_unchanged(text: str) -> None:
    assert render(text, STATE) == text


def test_literal_braces_can_be_written_with_raw_or_a_string() -> None:
    assert render("{{ '{{' }} x }}", STATE) == "{{ x }}"
    assert render("{% raw %}{{ state.x }}{% endraw %}", STATE) == "{{ state.x }}"


def test_trailing_newline_is_kept() -> None:
    assert render("{{ state.ticket }}\n", STATE) == "Printer on fire\n"


def test_rendering_is_deterministic_whatever_the_key_order() -> None:
    one = render("{{ state.d }}", {"d": {"b": 1, "a": {"y": 2, "x": 3}}})
    two = render("{{ state.d }}", {"d": {"a": {"x": 3, "y": 2}, "b": 1}})
    assert one == two == '{"a":{"x":3,"y":2},"b":1}'


# ------------------------------------------------------------------------------------------
# Filters and blocks


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ state.user.tags | join(', ') }}", "vip"),
        ("{{ state.items | map(attribute='name') | join(', ') }}", "first, second"),
        ("{{ state.items | length }}", "2"),
        (
            "{{ state.ticket | upper }} {{ state.ticket | lower }}",
            "PRINTER ON FIRE printer on fire",
        ),
        ('{{ state.missing | default("n/a") }}', "n/a"),
        ('{{ state.user.missing | default("n/a") }}', "n/a"),
        ("{{ state.user | tojson }}", '{"age":41,"name":"Ann","tags":["vip"]}'),
        ("{{ state.unicode | tojson }}", '"café ✓"'),
        ("{{ state.items | map(attribute='qty') | sum }}", "3"),
        ("{{ state.items | map(attribute='name') }}", '["first","second"]'),
        ("{{ state.items | first }}", '{"name":"first","qty":2}'),
        ("{{ state.score | round(1) }}", "0.8"),
        ("{{ '-' * 3 }}", "---"),
        ("{{ len(state.items) }} {{ max(1, 5) }} {{ range(3) | list }}", "2 5 [0,1,2]"),
    ],
)
def test_filters_and_functions(template: str, expected: str) -> None:
    assert render(template, STATE) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{% if state.flag %}yes{% else %}no{% endif %}", "yes"),
        ("{% if state.score > 0.9 %}high{% elif state.score > 0.5 %}mid{% endif %}", "mid"),
        ("{% if state.missing is defined %}x{% else %}none{% endif %}", "none"),
        ("{% if state.nothing is None %}null{% endif %}", "null"),
        (
            "{% for i in state.items %}{{ loop.index }}.{{ i.name }} {% endfor %}",
            "1.first 2.second ",
        ),
        (
            "{% for k, v in state.user | dictsort %}{{ k }}={{ v }};{% endfor %}",
            'age=41;name=Ann;tags=["vip"];',
        ),
        ("{% set n = state.items | length %}{{ n * 2 }}", "4"),
        ("{% for i in [] %}x{% else %}empty{% endfor %}", "empty"),
        ("{# a comment #}ok", "ok"),
        ("a\n{% if state.flag %}\nb\n{% endif %}\n", "a\n\nb\n\n"),
    ],
)
def test_blocks(template: str, expected: str) -> None:
    check_template(template)
    assert render(template, STATE) == expected


# ------------------------------------------------------------------------------------------
# Missing values and runtime errors


def test_missing_key_names_node_reference_and_available_keys() -> None:
    with pytest.raises(TemplateError) as caught:
        render("Hi {{ state.user.nmae }}", STATE, node="greet")
    error = caught.value
    assert error.node == "greet"
    assert error.reason == (
        "{{ state.user.nmae }}: state.user has no key 'nmae'; keys there: age, name, tags"
    )


def test_missing_top_level_key_lists_the_state_keys() -> None:
    with pytest.raises(TemplateError, match="state has no key 'tikcet'; keys there: by_id, "):
        render("{{ state.tikcet }}", STATE)


def test_at_most_twenty_keys_are_listed() -> None:
    state = {f"k{n:02}": n for n in range(25)}
    with pytest.raises(TemplateError) as caught:
        render("{{ state.x }}", state)
    shown = ", ".join(f"k{n:02}" for n in range(20))
    assert (
        caught.value.reason == f"{{{{ state.x }}}}: state has no key 'x'; keys there: {shown}, ..."
    )


def test_index_out_of_range_is_a_template_error() -> None:
    with pytest.raises(
        TemplateError,
        match=r"\{\{ state.items.5.name \}\}: index 5 is out of range for "
        r"state.items, a list of 2",
    ):
        render("{{ state.items.5.name }}", STATE)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ state.ticket.words }}", "state.ticket is str, which has no key 'words'"),
        ("{{ state.nothing.x }}", "state.nothing is None, which has no key 'x'"),
        ("{{ state.items.name }}", "state.items is a list, so 'name' must be an index"),
        ("{% if state.missing %}x{% endif %}", "state has no key 'missing'"),
        ("{{ state['user']['nmae'] }}", "state.user has no key 'nmae'"),
        # Through a loop variable the path in the state is named.
        ("{% for i in state.items %}{{ i.nope }}{% endfor %}", "state.items.0 has no key 'nope'"),
        ("{{ [] | first }}", "No first item"),
    ],
)
def test_lookup_errors_are_template_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message) as caught:
        render(template, STATE, node="n")
    assert caught.value.node == "n"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ 1 / 0 }}", "rendering failed: ZeroDivisionError"),
        ("{{ state.ticket + 1 }}", "rendering failed: TypeError"),
        ("{{ state.ticket.upper }}", "cannot be written as JSON"),
        ("{{ state.x }}", "cannot be written as JSON"),
    ],
)
def test_runtime_failures_are_template_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(template, {**STATE, "x": float("nan")}, node="n")


def test_render_reports_a_malformed_template_as_template_error() -> None:
    with pytest.raises(TemplateError, match="invalid template") as caught:
        render("{{ state.x ", STATE, node="n")
    assert caught.value.node == "n"


# ------------------------------------------------------------------------------------------
# The sandbox


@pytest.mark.parametrize(
    "template",
    [
        "{{ state.__class__ }}",
        "{{ ().__class__.__mro__ }}",
        "{{ state.user.__class__.__subclasses__() }}",
        "{{ state.items | first | attr('__class__') }}",
        "{{ state.ticket.__len__() }}",
        "{{ state.user.tags.append('x') }}",
        "{{ state.user.update({'a': 1}) }}",
        # str is a function here, not the type: no unbound str.format to escape through.
        "{{ str.format('{0.__class__}', 1) }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ 'x' * 1000000 }}",
        "{{ [0] * 200000 }}",
        "{{ 7 ** 1000000 }}",
        "{{ range(1000000) | list }}",
    ],
)
def test_the_sandbox_refuses_unsafe_access(template: str) -> None:
    state: dict[str, object] = {"ticket": "t", "user": {"tags": ["vip"]}, "items": [{"a": 1}]}
    with pytest.raises(TemplateError):
        render(template, state, node="n")
    assert state == {"ticket": "t", "user": {"tags": ["vip"]}, "items": [{"a": 1}]}


def test_the_random_filter_is_removed_for_determinism() -> None:
    with pytest.raises(TemplateSyntaxError, match="No filter named 'random'"):
        check_template("{{ state.items | random }}")


# ------------------------------------------------------------------------------------------
# check_template


@pytest.mark.parametrize(
    "template",
    [
        "plain text",
        "{{ state.a }}",
        "{{state.a.b_c.0.d}}",
        "a {{ state.a }} b {{ state.B2 }} c",
        "multi\nline {{\n  state.x\n}}",
        "{ single braces } are fine",
        '{"a": {{ state.x }}}',
        '{"a": {"b": 1}}',
        "x }} y",
        "{{ state }}",
        "{{ state['a'] }}",
        "{{ state.a | upper }}",
        "{{ len(state.a) + 1 }}",
        "{% for x in state.a %}{{ x }}{{ loop.index }}{% endfor %}",
        "{% set y = state.a %}{{ y }}",
        "{% macro m(v) %}<{{ v }}>{% endmacro %}{{ m(state.a) }}",
    ],
)
def test_check_template_accepts_well_formed_templates(template: str) -> None:
    check_template(template)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ state.a", "unexpected end of template, expected 'end of print statement' (column 11)"),
        (
            "{{ state.a {{ state.b }}",
            "expected token 'end of print statement', got '{' (column 12)",
        ),
        ("a {{ state.x }", "unexpected '}' (column 14)"),
        ("{{ }}", "Expected an expression"),
        ("{{ user.name }}", "unknown name 'user': a template can only read 'state' (write "),
        ("{{ state..a }}", "expected name or number"),
        ("{{ state.a-b }}", "unknown name 'b'"),  # state.a minus b
        ("{{ state.a.-1 }}", "expected name or number"),
        ("{{ state.a | nofilter }}", "No filter named 'nofilter' (column 14)"),
        ("{{ state.a is nosuch }}", "No test named 'nosuch'"),
        ("{% if state.a %}", "The innermost block that needs to be closed is 'if'"),
        ("{% endfor %}", "Encountered unknown tag 'endfor'"),
        ("{# c", "Missing end of comment tag"),
        ("{% include 'other' %}", "cannot include, import or extend"),
        ("line one\n  {{ oops }}", "unknown name 'oops'"),
        ("line one\n  {{ state.a ]}}", "unexpected ']' (line 2, column 14)"),
    ],
)
def test_check_template_rejects_malformed_templates(template: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_template(template)
    assert isinstance(caught.value, TemplateSyntaxError)
    assert message in str(caught.value)


def test_syntax_error_carries_line_and_column_and_pickles() -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        check_template("one\ntwo\n  {{ nope }}")
    assert (caught.value.line, caught.value.column) == (3, 6)
    assert str(caught.value).endswith("(line 3, column 6)")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.line, copy.column, str(copy)) == (3, 6, str(caught.value))


def test_unexpected_end_points_at_the_last_line() -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        check_template("line one\nline two {{ state.x\n")
    assert caught.value.line == 2


# ------------------------------------------------------------------------------------------
# render_value


def test_render_value_keeps_the_type_of_a_whole_reference() -> None:
    rendered = render_value(
        {
            "n": "{{ state.user.age }}",
            "tags": "  {{ state.user.tags }}  ",
            "user": "{{state.user}}",
            "none": "{{ state.nothing }}",
            "flag": "{{- state.flag -}}",
        },
        STATE,
    )
    assert rendered == {
        "n": 41,
        "tags": ["vip"],
        "user": {"name": "Ann", "age": 41, "tags": ["vip"]},
        "none": None,
        "flag": True,
    }


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("{{ state.items | map(attribute='name') | list }}", ["first", "second"]),
        ("{{ state.items | map(attribute='name') }}", ["first", "second"]),
        ("{{ state.items | length }}", 2),
        ("{{ state.user.age + 1 }}", 42),
        ("{{ state.score > 0.5 }}", True),
        ("{{ (1, 'a') }}", [1, "a"]),
        ("{{ range(3) }}", [0, 1, 2]),
        ("{{ {'k': state.user.name} }}", {"k": "Ann"}),
        ("{{ state.missing | default([]) }}", []),
        ("{{ state.ticket ~ '!' }}", "Printer on fire!"),
    ],
)
def test_render_value_keeps_the_native_type_of_a_whole_expression(
    expression: str, expected: JsonValue
) -> None:
    assert render_value(expression, STATE) == expected


def test_render_value_renders_strings_recursively_and_leaves_other_values() -> None:
    value: JsonValue = {
        "q": "find {{ state.ticket }}",
        "two": "{{ state.user.age }}{{ state.user.age }}",
        "nested": [{"k": "n={{ state.user.age }}"}, 3, 1.5, True, None],
        "{{ state.ticket }}": "keys are not rendered",
    }
    assert render_value(value, STATE) == {
        "q": "find Printer on fire",
        "two": "4141",
        "nested": [{"k": "n=41"}, 3, 1.5, True, None],
        "{{ state.ticket }}": "keys are not rendered",
    }


def test_render_value_copies_so_the_state_is_never_aliased() -> None:
    state: dict[str, object] = {"items": [1, 2]}
    arguments: JsonValue = {"items": "{{ state.items }}"}
    rendered = render_value(arguments, state)
    assert isinstance(rendered, dict)
    items = rendered["items"]
    assert isinstance(items, list)
    items.append(3)
    assert state == {"items": [1, 2]}
    assert arguments == {"items": "{{ state.items }}"}


def test_render_value_missing_reference_names_the_node() -> None:
    with pytest.raises(TemplateError) as caught:
        render_value({"a": ["{{ state.missing }}"]}, STATE, node="call_tool")
    assert caught.value.node == "call_tool"
    assert caught.value.reason.startswith("{{ state.missing }}: state has no key 'missing'")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{{ state.ticket.upper }}", "cannot be written as JSON"),
        ("{{ state.__class__ }}", "refused by the sandbox"),
        ("{{ state.items.9 }}", "index 9 is out of range"),
        ("{{ nope }}", "unknown name 'nope'"),
        ("{{ state.a ", "invalid template"),
    ],
)
def test_render_value_errors_are_template_errors(value: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render_value(value, STATE, node="n")


# ------------------------------------------------------------------------------------------
# Property: any JSON value prints as itself (text) or as its canonical JSON.

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
def test_any_json_value_renders_as_text_or_canonical_json(value: JsonValue) -> None:
    rendered = render("{{ state.k }}", {"k": value})
    assert rendered == (value if isinstance(value, str) else canonical_json(value))
    assert render_value("{{ state.k }}", {"k": value}) == value
