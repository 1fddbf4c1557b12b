"""``{{ state.x }}`` templates: checking, rendering, whole-value references."""

from __future__ import annotations

import pickle

import pytest
from pydantic import JsonValue

from jamjet_temporal.errors import TemplateError
from jamjet_temporal.pipeline._template import (
    TemplateSyntaxError,
    check_template,
    references,
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


def test_strings_are_inserted_as_they_are() -> None:
    assert render("Ticket: {{ state.ticket }}!", STATE) == "Ticket: Printer on fire!"


def test_whitespace_inside_braces_is_optional() -> None:
    assert render("{{state.user.name}}|{{   state.user.name   }}", STATE) == "Ann|Ann"


def test_integer_segments_index_lists_and_dict_keys() -> None:
    assert render("{{ state.items.1.name }} {{ state.by_id.0 }}", STATE) == "second zero"


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
    ],
)
def test_other_values_are_compact_sorted_json(template: str, expected: str) -> None:
    assert render(template, STATE) == expected


def test_non_ascii_is_kept_in_json_and_text() -> None:
    assert render("{{ state.unicode }} {{ state.x }}", {**STATE, "x": ["é"]}) == 'café ✓ ["é"]'


def test_text_without_references_is_unchanged() -> None:
    text = 'Reply as JSON like {"a": [1, {"b": 2} ]} and a single } or {.'
    assert render(text, STATE) == text


def test_rendering_is_deterministic_whatever_the_key_order() -> None:
    one = render("{{ state.d }}", {"d": {"b": 1, "a": {"y": 2, "x": 3}}})
    two = render("{{ state.d }}", {"d": {"a": {"x": 3, "y": 2}, "b": 1}})
    assert one == two == '{"a":{"x":3,"y":2},"b":1}'


def test_missing_key_names_node_reference_and_available_keys() -> None:
    with pytest.raises(TemplateError) as caught:
        render("Hi {{ state.user.nmae }}", STATE, node="greet")
    error = caught.value
    assert error.node == "greet"
    assert "state.user.nmae" in error.reason
    assert "no key 'nmae'" in error.reason
    assert "age, name, tags" in error.reason


def test_missing_top_level_key_lists_the_state_keys() -> None:
    with pytest.raises(TemplateError, match="state has no key 'tikcet'; keys there: by_id, "):
        render("{{ state.tikcet }}", STATE)


def test_index_out_of_range_is_a_template_error() -> None:
    with pytest.raises(
        TemplateError, match=r"index 5 is out of range for state.items, a list of 2"
    ):
        render("{{ state.items.5.name }}", STATE)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ state.ticket.words }}", "state.ticket is str, which has no key 'words'"),
        ("{{ state.nothing.x }}", "state.nothing is None, which has no key 'x'"),
        ("{{ state.items.name }}", "state.items is a list, so 'name' must be an index"),
    ],
)
def test_lookup_into_a_non_container_is_a_template_error(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(template, STATE, node="n")


def test_render_reports_a_malformed_template_as_template_error() -> None:
    with pytest.raises(TemplateError, match="invalid template") as caught:
        render("{{ state.x ", STATE, node="n")
    assert caught.value.node == "n"


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
    ],
)
def test_check_template_accepts_well_formed_templates(template: str) -> None:
    check_template(template)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ state.a", "'{{' at column 1 is not closed with '}}' before the end"),
        ("{{ state.a {{ state.b }}", "is not closed with '}}' before the next '{{'"),
        ("x }} y", "'}}' at column 3 closes nothing"),
        ('{"a": {"b": 1}}', "closes nothing"),
        ("{{ state }}", "is not a state reference"),
        ("{{ user.name }}", "is not a state reference"),
        ("{{}}", "is not a state reference"),
        ("{{ state.a | upper }}", "is not a state reference"),
        ("{{ state.a-b }}", "is not a state reference"),
        ("{{ state..a }}", "is not a state reference"),
        ("{{ state.a.-1 }}", "is not a state reference"),
        ("{{ state['a'] }}", "is not a state reference"),
        ("line one\n  {{ oops }}", "at line 2, column 3"),
    ],
)
def test_check_template_rejects_malformed_templates(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("|", r"\|")):
        check_template(template)


def test_syntax_error_carries_line_and_column_and_pickles() -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        check_template("one\ntwo\n  {{ nope }}")
    assert (caught.value.line, caught.value.column) == (3, 3)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.line, copy.column, str(copy)) == (3, 3, str(caught.value))


def test_references_lists_paths_in_order_without_duplicates() -> None:
    text = "{{ state.b }} {{state.a.0.x}} {{ state.b }}"
    assert references(text) == ["state.b", "state.a.0.x"]
    assert references("no references") == []


def test_references_rejects_malformed_templates() -> None:
    with pytest.raises(ValueError):
        references("{{ state.a")


def test_render_value_keeps_the_type_of_a_whole_reference() -> None:
    rendered = render_value(
        {
            "n": "{{ state.user.age }}",
            "tags": "  {{ state.user.tags }}  ",
            "user": "{{state.user}}",
            "none": "{{ state.nothing }}",
        },
        STATE,
    )
    assert rendered == {
        "n": 41,
        "tags": ["vip"],
        "user": {"name": "Ann", "age": 41, "tags": ["vip"]},
        "none": None,
    }


def test_render_value_renders_strings_recursively_and_leaves_other_values() -> None:
    value: JsonValue = {
        "q": "find {{ state.ticket }}",
        "nested": [{"k": "n={{ state.user.age }}"}, 3, 1.5, True, None],
        "{{ state.ticket }}": "keys are not rendered",
    }
    assert render_value(value, STATE) == {
        "q": "find Printer on fire",
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
    assert "state.missing" in caught.value.reason
