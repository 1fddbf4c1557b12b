"""Pipeline models and loader: every error carries file, line, node, reason and fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pydantic
import pytest

from jamjet_temporal.errors import PipelineSpecError
from jamjet_temporal.pipeline._spec import (
    ConditionNode,
    Edge,
    EndNode,
    ModelNode,
    PipelineSpec,
    RetrySpec,
    ToolNode,
    WorkflowMeta,
    load_pipeline,
    parse_pipeline,
)

FILE = "flows/demo.yaml"

# Lines 1-4; nodes start on line 5.
HEAD = """\
workflow:
  id: demo
  start: a
nodes:
"""

GOOD = """\
workflow:
  id: triage
  version: 0.1
  start: classify
  description: Route support tickets.
  model: small-model
  heartbeat_timeout_seconds: 5
  retry: {max_attempts: 5, initial_interval_seconds: 0.5, backoff: 1.5, max_interval_seconds: 10}
  max_steps: 20
nodes:
  classify:
    type: model
    label: Classify the ticket
    system: You are a support triage assistant.
    prompt: |
      Classify this ticket as urgent or normal:
      {{ state.ticket }}
    output_key: category
    max_tokens: 50
    timeout_seconds: 60
    heartbeat_timeout_seconds: 20
    retry: {max_attempts: 2}
    next: route
  route:
    type: condition
    next:
      - to: page
        when: state.category.strip().lower() == "urgent"
      - to: reply
  page:
    type: tool
    tool: pager.page
    arguments:
      team: "{{ state.team }}"
      priority: 1
      context: {ticket: "Ticket: {{ state.ticket }}", tags: [a, "{{ state.category }}"]}
    output_key: page_result
    next: done
  reply:
    type: model
    prompt: "Write a reply to: {{ state.ticket }}"
    output_key: reply
    next: done
  done:
    type: end
    label: Finished
    output: reply
"""


def _nodes(text: str) -> str:
    """A block of node entries, written at any indentation, indented under ``nodes:``."""
    return textwrap.indent(textwrap.dedent(text), "  ")


def _error(text: str) -> PipelineSpecError:
    with pytest.raises(PipelineSpecError) as caught:
        parse_pipeline(text, FILE)
    return caught.value


def _assert_error(
    text: str, *, line: int, node: str | None, reason: str, fix: str | None = None
) -> PipelineSpecError:
    error = _error(text)
    assert error.file == FILE
    assert (error.line, error.node) == (line, node), str(error)
    assert reason in error.reason, str(error)
    if fix is not None:
        assert error.fix is not None and fix in error.fix, str(error)
    return error


# ------------------------------------------------------------------------------------------
# A valid pipeline


def test_parses_a_complete_pipeline_into_typed_models() -> None:
    spec = parse_pipeline(GOOD, FILE)
    assert spec.source == FILE
    meta = spec.workflow
    assert (meta.id, meta.version, meta.start, meta.model) == (
        "triage",
        "0.1",
        "classify",
        "small-model",
    )
    assert meta.retry == RetrySpec(
        max_attempts=5, initial_interval_seconds=0.5, backoff=1.5, max_interval_seconds=10
    )
    assert (meta.heartbeat_timeout_seconds, meta.max_steps) == (5.0, 20)
    assert list(spec.nodes) == ["classify", "route", "page", "reply", "done"]

    classify = spec.nodes["classify"]
    assert isinstance(classify, ModelNode)
    assert classify.prompt.endswith("{{ state.ticket }}\n")
    assert (classify.next, classify.max_tokens, classify.timeout_seconds) == ("route", 50, 60.0)
    assert classify.retry == RetrySpec(max_attempts=2)

    route = spec.nodes["route"]
    assert isinstance(route, ConditionNode)
    assert route.next == [
        Edge(to="page", when='state.category.strip().lower() == "urgent"'),
        Edge(to="reply"),
    ]

    page = spec.nodes["page"]
    assert isinstance(page, ToolNode)
    assert page.arguments == {
        "team": "{{ state.team }}",
        "priority": 1,
        "context": {"ticket": "Ticket: {{ state.ticket }}", "tags": ["a", "{{ state.category }}"]},
    }
    assert spec.nodes["done"] == EndNode(type="end", label="Finished", output="reply")


def test_defaults_apply_when_keys_are_omitted() -> None:
    spec = parse_pipeline(HEAD + "  a: {type: model, prompt: hi}\n")
    meta = spec.workflow
    assert (meta.version, meta.model, meta.heartbeat_timeout_seconds, meta.max_steps) == (
        "0.1.0",
        "gpt-4o-mini",
        10.0,
        100,
    )
    assert meta.retry == RetrySpec(
        max_attempts=3, initial_interval_seconds=1.0, backoff=2.0, max_interval_seconds=30.0
    )
    node = spec.nodes["a"]
    assert isinstance(node, ModelNode)
    assert (node.model, node.system, node.output_key, node.max_tokens) == (None, None, None, None)
    assert (node.next, node.retry, node.heartbeat_timeout_seconds) == (None, None, None)
    # No node timeout of its own: the `timeouts:` section's node_timeout (300 s) applies.
    assert node.timeout_seconds is None and spec.timeouts.node_timeout == 300.0
    assert spec.source == "<string>"


def test_spec_round_trips_through_json_as_a_workflow_input_does() -> None:
    spec = parse_pipeline(GOOD, FILE)
    again = PipelineSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert isinstance(again.nodes["route"], ConditionNode)


def test_models_are_frozen_and_forbid_unknown_fields() -> None:
    spec = parse_pipeline(GOOD, FILE)
    with pytest.raises(pydantic.ValidationError):
        spec.workflow.id = "other"
    with pytest.raises(pydantic.ValidationError):
        Edge(to="a", iff="x")  # type: ignore[call-arg]


@pytest.mark.parametrize(("written", "expected"), [("0.1", "0.1"), ("1.10", "1.10"), ("2", "2")])
def test_numeric_version_is_kept_as_written(written: str, expected: str) -> None:
    text = f"workflow: {{id: x, start: a, version: {written}}}\nnodes:\n  a: {{type: end}}\n"
    assert parse_pipeline(text).workflow.version == expected


def test_numeric_version_is_coerced_to_text_in_code() -> None:
    assert WorkflowMeta(id="x", start="a", version=0.2).version == "0.2"  # type: ignore[arg-type]


def test_dates_stay_text_because_values_must_be_json() -> None:
    spec = parse_pipeline(HEAD + "  a: {type: tool, tool: t, arguments: {day: 2024-05-01}}\n")
    node = spec.nodes["a"]
    assert isinstance(node, ToolNode)
    assert node.arguments == {"day": "2024-05-01"}


def test_merge_keys_share_settings_between_nodes() -> None:
    text = HEAD + _nodes(
        """\
          a: &base
            type: model
            prompt: first
            timeout_seconds: 12
            next: b
          b:
            <<: *base
            prompt: second
            next: null
        """
    )
    spec = parse_pipeline(text)
    b = spec.nodes["b"]
    assert isinstance(b, ModelNode)
    assert (b.prompt, b.timeout_seconds, b.next) == ("second", 12.0, None)


def test_pipeline_without_end_node_is_fine() -> None:
    spec = parse_pipeline(
        HEAD + "  a: {type: model, prompt: hi, next: b}\n  b: {type: tool, tool: t}\n"
    )
    assert list(spec.nodes) == ["a", "b"]


@pytest.mark.parametrize(
    "nodes",
    [
        # A loop that can leave through a conditional edge: retry until ok.
        """\
          a:
            type: model
            prompt: try
            next:
              - to: b
                when: state.ok
              - to: a
          b: {type: end}
        """,
        # A loop closed by a condition node.
        """\
          a: {type: model, prompt: draft, next: check}
          check:
            type: condition
            next:
              - {to: a, when: not state.good}
              - {to: b}
          b: {type: end}
        """,
        # A condition whose only edge is conditional: ends the run when it is false.
        """\
          a: {type: model, prompt: x, next: c}
          c:
            type: condition
            next:
              - {to: a, when: state.again}
        """,
    ],
)
def test_loops_with_a_condition_are_allowed(nodes: str) -> None:
    parse_pipeline(HEAD + _nodes(nodes))


# ------------------------------------------------------------------------------------------
# YAML-level errors


def test_yaml_syntax_error_gives_line_and_column() -> None:
    error = _assert_error(
        HEAD + "  a:\n    type: model\n    prompt: [unclosed\n  b: {type: end}\n",
        line=8,
        node=None,
        reason="invalid YAML at column",
        fix="quoting",
    )
    assert "column 4" in error.reason  # the ':' of `b:`, inside the unclosed flow list


def test_yaml_tab_indentation_is_a_syntax_error() -> None:
    _assert_error("workflow:\n\tid: x\n", line=2, node=None, reason="'\\t'", fix="spaces, not tabs")


def test_arbitrary_tags_are_refused() -> None:
    _assert_error(
        "workflow:\n  id: !!python/object/apply:os.system [ls]\n",
        line=2,
        node=None,
        reason="could not determine a constructor",
        fix="remove the tag",
    )


def test_several_documents_are_refused() -> None:
    _assert_error(
        HEAD + "  a: {type: end}\n---\nother: 1\n",
        line=6,
        node=None,
        reason="expected a single document",
    )


def test_duplicate_key_in_a_node() -> None:
    error = _assert_error(
        HEAD + "  a:\n    type: model\n    prompt: one\n    prompt: two\n",
        line=8,
        node="a",
        reason="key 'prompt' appears twice",
        fix="remove one",
    )
    assert "first at line 7" in error.reason


def test_duplicate_node_id() -> None:
    _assert_error(
        HEAD + "  a: {type: model, prompt: x, next: b}\n  b: {type: end}\n  a: {type: end}\n",
        line=7,
        node="a",
        reason="node 'a' is defined twice (first at line 5)",
    )


def test_duplicate_key_in_workflow_section() -> None:
    _assert_error(
        "workflow:\n  id: x\n  start: a\n  id: y\nnodes:\n  a: {type: end}\n",
        line=4,
        node=None,
        reason="key 'id' appears twice",
    )


def test_duplicate_key_inside_an_edge() -> None:
    _assert_error(
        HEAD + "  a:\n    type: condition\n    next:\n      - to: b\n        to: c\n"
        "  b: {type: end}\n  c: {type: end}\n",
        line=9,
        node="a",
        reason="key 'to' appears twice",
    )


# ------------------------------------------------------------------------------------------
# Top-level structure


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("", 1, "it is empty"),
        ("# only a comment\n", 1, "it is empty"),
        ("- workflow\n- nodes\n", 1, "it is a list"),
        ("\n\njust text\n", 3, "it is a str"),
    ],
)
def test_top_level_must_be_a_mapping(text: str, line: int, reason: str) -> None:
    _assert_error(text, line=line, node=None, reason=reason, fix="`workflow:`")


def test_missing_workflow_section() -> None:
    _assert_error(
        "nodes:\n  a: {type: end}\n", line=1, node=None, reason="missing the 'workflow' section"
    )


def test_missing_nodes_section() -> None:
    _assert_error(
        "workflow: {id: x, start: a}\n", line=1, node=None, reason="missing the 'nodes' section"
    )


@pytest.mark.parametrize(
    ("nodes", "reason"),
    [("{}", "it is empty"), ("", "it is empty"), ("[a, b]", "JamJet's old pipeline shape")],
)
def test_nodes_must_be_a_non_empty_mapping(nodes: str, reason: str) -> None:
    _assert_error(
        f"workflow: {{id: x, start: a}}\n\nnodes: {nodes}\n", line=3, node=None, reason=reason
    )


def test_unknown_top_level_key_suggests_the_close_one() -> None:
    _assert_error(
        "workflow: {id: x, start: a}\nnode:\n  a: {type: end}\n",
        line=2,
        node=None,
        reason="unknown top-level key 'node'",
        fix="did you mean 'nodes'?",
    )


def test_source_cannot_be_set_from_yaml() -> None:
    _assert_error(
        "workflow: {id: x, start: a}\nsource: elsewhere.yaml\nnodes:\n  a: {type: end}\n",
        line=2,
        node=None,
        reason="unknown top-level key 'source'",
        fix="the loader sets `source`",
    )


# ------------------------------------------------------------------------------------------
# Node types


@pytest.mark.parametrize(
    ("node_type", "key"),
    [("human_approval", None), ("mcp_tool", "server"), ("a2a_task", "remote_agent")],
)
def test_every_jamjet_node_type_is_accepted_and_checked(node_type: str, key: str | None) -> None:
    text = HEAD + f"  a:\n    label: now\n    type: {node_type}\n"
    if key is None:
        assert parse_pipeline(text).nodes["a"].type == node_type
        return
    _assert_error(
        text, line=5, node="a", reason=f"missing required key '{key}' for", fix=f"add `{key}:"
    )


def test_unknown_node_type_suggests_a_close_one() -> None:
    _assert_error(
        HEAD + "  a:\n    type: modle\n",
        line=6,
        node="a",
        reason="unknown node type 'modle'",
        fix="did you mean 'model'?",
    )


def test_unknown_node_type_without_a_close_one_lists_supported_types() -> None:
    error = _assert_error(
        HEAD + "  a:\n    type: banana\n",
        line=6,
        node="a",
        reason="unknown node type 'banana'",
        fix="node types: model, tool, mcp_tool, a2a_task, condition, branch, parallel, wait, "
        "human_approval, eval, agent, end",
    )
    assert error.fix is not None and "did you mean" not in error.fix


def test_node_without_type() -> None:
    _assert_error(
        HEAD + "  a:\n    prompt: hi\n", line=5, node="a", reason="has no 'type'", fix="add `type:`"
    )


def test_node_type_must_be_text() -> None:
    _assert_error(
        HEAD + "  a:\n    type: 3\n", line=6, node="a", reason="node type must be text, got 3"
    )


def test_node_must_be_a_mapping() -> None:
    _assert_error(HEAD + "  a: model\n", line=5, node="a", reason="a node must be a mapping")


def test_empty_node() -> None:
    _assert_error(HEAD + "  a:\n", line=5, node="a", reason="this one is empty")


def test_keys_inside_a_node_must_be_text() -> None:
    _assert_error(
        HEAD + "  a:\n    type: end\n    1: x\n",
        line=7,
        node="a",
        reason="key 1 is not text",
        fix="quote the key",
    )


def test_unhashable_key_is_a_yaml_error() -> None:
    error = _assert_error(
        HEAD + "  a: {type: end}\n  ? [x]\n  : 1\n",
        line=6,
        node=None,
        reason="found unhashable key",
    )
    assert error.fix is not None and "tag" not in error.fix


def test_node_id_must_be_text() -> None:
    _assert_error(
        HEAD + "  a: {type: end}\n  7: {type: end}\n", line=6, node=None, reason="node id 7"
    )


# ------------------------------------------------------------------------------------------
# Unknown keys and wrong values (pydantic errors mapped to lines)


def test_unknown_key_on_a_node_suggests_the_close_one() -> None:
    _assert_error(
        HEAD + "  a:\n    type: model\n    promt: hi\n",
        line=7,
        node="a",
        reason="unknown key 'promt' for a model node",
        fix="did you mean 'prompt'?",
    )


def test_key_of_another_node_type_says_so() -> None:
    _assert_error(
        HEAD + "  a:\n    type: model\n    prompt: hi\n    arguments: {}\n",
        line=8,
        node="a",
        reason="unknown key 'arguments' for a model node",
        fix="'arguments' is a key of tool/mcp_tool/human_approval nodes",
    )


def test_end_node_has_no_next() -> None:
    _assert_error(
        HEAD + "  a:\n    type: end\n    next: a\n",
        line=7,
        node="a",
        reason="unknown key 'next' for an end node",
        fix="has no `next`",
    )


def test_unknown_key_in_an_edge() -> None:
    _assert_error(
        HEAD + "  a:\n    type: condition\n    next:\n      - to: b\n        wehn: state.x\n"
        "  b: {type: end}\n",
        line=9,
        node="a",
        reason="unknown key 'wehn' in 'next[0]'",
        fix="did you mean 'when'?",
    )


def test_unknown_key_in_retry() -> None:
    _assert_error(
        HEAD + "  a:\n    type: tool\n    tool: t\n    retry:\n      max_atempts: 2\n",
        line=9,
        node="a",
        reason="unknown key 'max_atempts' in 'retry'",
        fix="did you mean 'max_attempts'?",
    )


def test_unknown_key_in_workflow_section() -> None:
    _assert_error(
        "workflow:\n  id: x\n  start: a\n  max_step: 3\nnodes:\n  a: {type: end}\n",
        line=4,
        node=None,
        reason="unknown key 'max_step' for the workflow section",
        fix="did you mean 'max_steps'?",
    )


@pytest.mark.parametrize(
    ("body", "line", "reason", "fix"),
    [
        ("    type: model\n", 5, "missing required key 'prompt'", "add `prompt: ...`"),
        ("    type: tool\n    output_key: x\n", 5, "missing required key 'tool'", "add `tool:"),
        (
            "    type: model\n    prompt: 42\n",
            7,
            "'prompt': Input should be a valid string",
            "quote",
        ),
        ("    type: model\n    prompt: hi\n    system: [a]\n", 8, "'system'", "as text"),
        (
            "    type: model\n    prompt: hi\n    max_tokens: 0\n",
            8,
            "greater than 0",
            "greater than 0",
        ),
        (
            "    type: model\n    prompt: hi\n    max_tokens: 1.5\n",
            8,
            "'max_tokens'",
            "whole number",
        ),
        (
            "    type: tool\n    tool: t\n    timeout_seconds: -1\n",
            8,
            "'timeout_seconds'",
            "greater than 0",
        ),
        ("    type: tool\n    tool: t\n    timeout_seconds: soon\n", 8, "not a duration", "30s"),
        ("    type: tool\n    tool: t\n    timeout_seconds: .inf\n", 8, "finite number", "finite"),
        (
            "    type: tool\n    tool: t\n    heartbeat_timeout_seconds: 0\n",
            8,
            "greater than 0",
            "",
        ),
        ("    type: tool\n    tool: t\n    arguments: [1, 2]\n", 8, "'arguments'", "mapping"),
        ("    type: tool\n    tool: t\n    retry: 3\n", 8, "'retry'", "mapping"),
        (
            "    type: tool\n    tool: t\n    retry:\n      backoff: 2\n      max_attempts: 0\n",
            10,
            "'retry.max_attempts': Input should be greater than or equal to 1",
            "greater than or equal to 1",
        ),
        ("    type: end\n    output: [x]\n", 7, "'output'", "as text"),
        ("    type: tool\n    tool: t\n    label: 12\n", 8, "'label'", "quote"),
    ],
)
def test_wrong_values_point_at_their_line(body: str, line: int, reason: str, fix: str) -> None:
    _assert_error(HEAD + "  a:\n" + body, line=line, node="a", reason=reason, fix=fix)


@pytest.mark.parametrize(
    ("next_yaml", "line", "reason", "fix"),
    [
        ("    next: 5\n", 8, "'next' must be a node id or a list of edges, got 5", "- to:"),
        ("    next: {to: b}\n", 8, "'next' must be a node id or a list of edges", "- to:"),
        ("    next:\n      - b\n", 9, "edge 'next[0]' must be a mapping, got 'b'", "- to:"),
        ("    next:\n      - to: b\n      - when: x\n", 10, "edge 'next[1]' has no 'to'", "- to:"),
        ("    next:\n      - to: b\n        when: 3\n", 10, "'next[0].when': Input", "as text"),
    ],
)
def test_malformed_next_points_at_its_line(
    next_yaml: str, line: int, reason: str, fix: str
) -> None:
    text = HEAD + "  a:\n    type: model\n    prompt: hi\n" + next_yaml + "  b: {type: end}\n"
    _assert_error(text, line=line, node="a", reason=reason, fix=fix)


@pytest.mark.parametrize(
    ("workflow", "line", "reason", "fix"),
    [
        ("  id: has space\n  start: a\n", 2, "'workflow.id': String should match", "letters"),
        ("  id: x\n  start: a\n  max_steps: 0\n", 4, "'workflow.max_steps'", "or equal to 1"),
        ("  id: x\n  start: a\n  retry:\n    backoff: 0.5\n", 5, "'workflow.retry.backoff'", ""),
        ("  id: x\n  start: a\n  heartbeat_timeout_seconds: -2\n", 4, "greater than 0", ""),
        ("  id: 12\n  start: a\n", 2, "'workflow.id': Input should be a valid string", "quote"),
    ],
)
def test_workflow_section_errors(workflow: str, line: int, reason: str, fix: str) -> None:
    text = "workflow:\n" + workflow + "nodes:\n  a: {type: end}\n"
    _assert_error(text, line=line, node=None, reason=reason, fix=fix)


def test_workflow_section_must_be_a_mapping() -> None:
    _assert_error(
        "workflow: demo\nnodes:\n  a: {type: end}\n",
        line=1,
        node=None,
        reason="the workflow section must be a mapping, got 'demo'",
    )


def test_unknown_key_wins_over_the_missing_key_it_explains() -> None:
    _assert_error(
        HEAD + "  a:\n    type: tool\n    tol: search\n",
        line=7,
        node="a",
        reason="unknown key 'tol'",
        fix="did you mean 'tool'?",
    )


def test_error_in_a_merged_value_points_at_the_anchor() -> None:
    text = HEAD + _nodes(
        """\
          a: {type: tool, tool: t, next: b}
          b:
            <<: &defaults {timeout_seconds: 0}
            type: model
            prompt: hi
        """
    )
    _assert_error(text, line=7, node="b", reason="'timeout_seconds'")


# ------------------------------------------------------------------------------------------
# Graph: targets, edges, conditions, templates


def test_start_must_name_a_node() -> None:
    _assert_error(
        "workflow:\n  id: x\n  start: clasify\nnodes:\n  classify: {type: end}\n",
        line=3,
        node=None,
        reason="workflow.start names 'clasify', which is not a node",
        fix="did you mean 'classify'?",
    )


def test_next_must_name_a_node() -> None:
    _assert_error(
        HEAD + "  a:\n    type: model\n    prompt: hi\n    next: finsh\n  finish: {type: end}\n",
        line=8,
        node="a",
        reason="'next' names 'finsh', which is not a node",
        fix="did you mean 'finish'?",
    )


def test_edge_must_go_to_a_node() -> None:
    error = _assert_error(
        HEAD + "  a:\n    type: condition\n    next:\n      - to: b\n        when: state.x\n"
        "      - to: zzz\n  b: {type: end}\n",
        line=10,
        node="a",
        reason="edge 2 goes to 'zzz', which is not a node",
        fix="use one of the node ids (a, b) or `end`",
    )
    assert error.fix is not None and "did you mean" not in error.fix


def test_condition_node_needs_routes() -> None:
    _assert_error(
        HEAD + "  a:\n    type: condition\n  b: {type: end}\n",
        line=5,
        node="a",
        reason="a condition node needs routes, but this one has none",
        fix="`conditions: [{if: <condition>, next: <node id>}]`",
    )


def test_empty_edge_list_is_refused() -> None:
    _assert_error(
        HEAD + "  a:\n    type: model\n    prompt: hi\n    next: []\n",
        line=8,
        node="a",
        reason="'next' is an empty list of edges",
        fix="remove `next`",
    )


def test_edge_without_when_must_be_last() -> None:
    _assert_error(
        HEAD + "  a:\n    type: condition\n    next:\n      - to: b\n      - to: c\n"
        "        when: state.x\n  b: {type: end}\n  c: {type: end}\n",
        line=8,
        node="a",
        reason="the route to 'b' has no condition, so it is always taken and the routes after "
        "it (to 'c') can never be",
        fix="move the route without a condition last",
    )


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ("state.score >", "the expression is incomplete"),
        ("state.score > = 3", "invalid syntax at column"),
        ("__import__('os').system('ls')", "calling"),
        ("score > 3", "unknown name 'score'"),
        (
            "'[x for x in state]'",
            "invalid condition '[x for x in state]': invalid syntax at column 4",
        ),
    ],
)
def test_invalid_when_points_at_its_line(when: str, reason: str) -> None:
    _assert_error(
        HEAD + "  a:\n    type: condition\n    next:\n      - to: b\n"
        f"        when: {when}\n      - to: b\n  b: {{type: end}}\n",
        line=9,
        node="a",
        reason=reason,
        fix="expressions over `state`",
    )


def test_when_is_checked_on_work_nodes_too() -> None:
    _assert_error(
        HEAD + "  a:\n    type: tool\n    tool: t\n    next:\n      - {to: b, when: 'x.y'}\n"
        "  b: {type: end}\n",
        line=9,
        node="a",
        reason="unknown name 'x'",
    )


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("    prompt: 'Hi {{ state.name }'\n", 7, "invalid template in 'prompt'"),
        ("    prompt: hi\n    system: 'Be {{ tone }}'\n", 8, "invalid template in 'system'"),
        ("    prompt: 'Reply as {% if %}'\n", 7, "Expected an expression"),
        # In a literal block the line is the template's own line, not the key's.
        (
            "    prompt: |\n      line one\n      line two {{ state.x\n",
            9,
            "unexpected end of template",
        ),
    ],
)
def test_template_errors_in_prompts(body: str, line: int, reason: str) -> None:
    _assert_error(
        HEAD + "  a:\n    type: model\n" + body,
        line=line,
        node="a",
        reason=reason,
        fix="{{ state.key }}",
    )


def test_template_errors_in_nested_tool_arguments() -> None:
    _assert_error(
        HEAD + "  a:\n    type: tool\n    tool: t\n    arguments:\n      q: ok\n"
        "      opts:\n        - 1\n        - '{{ state.a.b | nofilter }}'\n",
        line=12,
        node="a",
        reason="invalid template in 'arguments.opts[1]'",
    )


def test_unreachable_nodes_are_named() -> None:
    error = _assert_error(
        HEAD + "  a: {type: model, prompt: hi, next: d}\n  b: {type: end}\n"
        "  c: {type: model, prompt: x, next: b}\n  d: {type: end}\n",
        line=6,
        node="b",
        reason="not reachable from the start node 'a': b, c",
        fix="link them",
    )
    assert error.reason.endswith(": b, c")


@pytest.mark.parametrize(
    ("nodes", "line", "node", "loop"),
    [
        ("  a: {type: model, prompt: x, next: a}\n", 5, "a", "a -> a"),
        (
            "  a: {type: model, prompt: x, next: b}\n"
            "  b: {type: tool, tool: t, next: c}\n"
            "  c: {type: model, prompt: y, next: b}\n",
            7,
            "c",
            "b -> c -> b",
        ),
        (
            "  a: {type: model, prompt: x, next: b}\n"
            "  b:\n    type: condition\n    next:\n      - to: a\n",
            9,
            "b",
            "a -> b -> a",
        ),
    ],
)
def test_loop_without_any_condition_is_refused(nodes: str, line: int, node: str, loop: str) -> None:
    _assert_error(HEAD + nodes, line=line, node=node, reason=loop, fix="`when`")


# ------------------------------------------------------------------------------------------
# load_pipeline


def test_load_pipeline_reads_a_file_and_records_its_path(tmp_path: Path) -> None:
    path = tmp_path / "triage.yaml"
    path.write_text(GOOD, encoding="utf-8")
    spec = load_pipeline(path)
    assert spec.source == str(path)
    assert spec.workflow.id == "triage"
    assert load_pipeline(str(path)) == spec


def test_load_pipeline_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEAD + "  a:\n    type: mcp_tool\n", encoding="utf-8")
    with pytest.raises(PipelineSpecError) as caught:
        load_pipeline(path)
    assert (caught.value.file, caught.value.line, caught.value.node) == (str(path), 5, "a")
    assert str(caught.value).startswith(f"{path}:5: node 'a': ")


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(PipelineSpecError, match="pipeline file not found") as caught:
        load_pipeline(path)
    assert (caught.value.file, caught.value.line, caught.value.node) == (str(path), None, None)
    assert caught.value.fix


def test_directory_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineSpecError, match="directory") as caught:
        load_pipeline(tmp_path)
    assert caught.value.file == str(tmp_path)


def test_non_utf8_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("workflow: {id: café}\n".encode("latin-1"))
    with pytest.raises(PipelineSpecError, match="not valid UTF-8") as caught:
        load_pipeline(path)
    assert caught.value.file == str(path)


def test_named_retry_policies_and_timeouts_section() -> None:
    spec = parse_pipeline(
        """
workflow: {id: r}
retry_policies:
  patient: {max_attempts: 4, backoff: exponential, base_delay: 2s, max_delay: 1m}
timeouts: {node_timeout: 45s, heartbeat_interval: 5s, workflow_timeout: 2h}
nodes:
  a: {type: tool, tool: t, retry_policy: patient, next: b}
  b: {type: tool, tool: t, retry_policy: io_default, next: c}
  c: {type: tool, tool: t, retry: {max_attempts: 2, backoff: constant, delay_ms: 500}}
"""
    )
    a, b, c = (spec.nodes[n] for n in "abc")
    assert isinstance(a, ToolNode) and isinstance(b, ToolNode) and isinstance(c, ToolNode)
    patient = spec.retry_for(a)
    assert (
        patient.max_attempts,
        patient.backoff,
        patient.initial_seconds,
        patient.max_seconds,
    ) == (
        4,
        2.0,
        2.0,
        60.0,
    )
    assert spec.retry_for(b).max_attempts == 5
    mine = spec.retry_for(c)
    assert (mine.max_attempts, mine.backoff, mine.initial_seconds) == (2, 1.0, 0.5)
    assert (spec.timeouts.node_timeout, spec.timeouts.heartbeat_interval) == (45.0, 5.0)
    assert spec.timeouts.workflow_timeout == 7200.0


def test_unknown_retry_policy_name_is_refused_with_the_known_ones() -> None:
    _assert_error(
        HEAD + "  a: {type: tool, tool: t, retry_policy: io_defualt}\n",
        line=5,
        node="a",
        reason="retry_policy 'io_defualt' is not defined",
        fix="did you mean 'io_default'?",
    )
