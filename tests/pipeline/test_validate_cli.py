"""``jamjet validate``: every problem of a file at once, each with its line and fix; exit 0/1;
what cannot be found (a tools module, an MCP server) is a warning that does not fail it; JamJet's
old node-list shape gets one problem per old key, naming its new spelling."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from jamjet_temporal.cli._app import app

RUNNER = CliRunner()


def write(folder: Path, text: str, name: str = "workflow.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def validate(*files: Path) -> tuple[int, list[str]]:
    """The command in this process: its exit code and output lines."""
    done = RUNNER.invoke(app, ["validate", *map(str, files)])
    return done.exit_code, done.output.splitlines()


THREE_PROBLEMS = """
workflow:
  id: three
  start: plan
nodes:
  plan:
    type: model
    prompt: "Plan a brief on {{ state.topic }"
    output_key: plan
    next: research
  research:
    type: model
    prompt: "Research {{ state.plan }}"
    output_key: notes
    next: reviw
  review:
    type: model
    prompt: "Review {{ state.notes }}"
    temprature: 0.2
"""


def test_three_different_problems_are_all_reported_with_their_lines(tmp_path: Path) -> None:
    path = write(tmp_path, THREE_PROBLEMS)
    done = subprocess.run(
        [sys.executable, "-m", "jamjet_temporal", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    # The template's bad brace, line 7.
    assert re.search(rf"{re.escape(str(path))}:7: node 'plan': invalid template in 'prompt'", out)
    # The edge to a node that does not exist, line 14, with the one meant.
    assert re.search(r":14: node 'research': 'next' names 'reviw', which is not a node", out)
    assert "did you mean 'review'?" in out
    # The misspelt key, line 18.
    assert re.search(r":18: node 'review': unknown key 'temprature' for a model node", out)
    assert "did you mean 'temperature'?" in out
    assert f"✗ {path}: 3 problems" in out, out


def test_a_valid_file_exits_0_and_says_what_it_holds(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        workflow:
          id: triage
          version: 0.2.0
          state_schema:
            ticket: {type: str, default: "The export button does nothing"}
            category: str
        nodes:
          classify:
            type: model
            prompt: "Classify: {{ state.ticket }}"
            output_key: category
            next: route
          route:
            type: branch
            conditions:
              - if: "state.category == 'urgent'"
                next: escalate
            default: end
          escalate:
            type: wait
            event: on_call_ack
            timeout_hours: 1
            on_timeout: end
            next: end
          end:
            type: end
        """,
    )
    code, lines = validate(path)
    assert code == 0, lines
    assert lines == [
        f"✓ {path}: valid · workflow triage 0.2.0 · 4 nodes (1 model, 1 branch, 1 wait, 1 end)"
    ]


def test_a_tool_node_with_no_tools_module_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        workflow: {id: fetch, start: get}
        nodes:
          get:
            type: tool
            tool: fetch_page
            arguments: {url: "https://example.com"}
            next: search
          search:
            type: tool
            server: search
            tool: web_search
            arguments: {query: "{{ state.get }}"}
        """,
    )
    assert not (tmp_path / "tools.py").exists()
    code, lines = validate(path)
    assert code == 0, lines
    warnings = [line for line in lines if line.startswith("! ")]
    assert len(warnings) == 2, lines
    assert any("no tools module was found" in w and "tools.py" in w for w in warnings)
    assert any(
        re.search(r":10: node 'search': MCP server 'search' is not declared", w) for w in warnings
    )
    assert lines[-1].startswith(f"✓ {path}: valid")


def test_each_file_is_checked_against_the_tools_beside_it(tmp_path: Path) -> None:
    files = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "tools.py").write_text(
            "from jamjet_temporal import task\n\n\n"
            f"@task\nasync def {name}_tool(x: int) -> int:\n    return x\n",
            encoding="utf-8",
        )
        files.append(
            write(
                folder,
                f"""
                workflow: {{id: {name}, start: go}}
                nodes:
                  go: {{type: tool, tool: {name}_tool, arguments: {{x: 1}}}}
                """,
            )
        )
    code, lines = validate(*files)
    assert code == 0, lines
    assert [line.split(":")[0] for line in lines] == [f"✓ {f}" for f in files]


OLD_SHAPE = """
workflow:
  id: hitl_approval
  version: 0.1.0
  start_node: assess_risk
  state_schema:
    type: object
    properties:
      request: {type: string}
    required: [request]
  nodes:
    - id: assess_risk
      kind: model
      config:
        model: gpt-4o
        prompt_template: "Request: {{ request }}"
        output_to_state:
          risk_level: risk_level
        structured_output: true
      edges:
        - to: await_approval
    - id: await_approval
      kind: human_approval
      config:
        timeout: {node_seconds: 86400}
      edges:
        - condition: "decision == 'approved'"
          to: take_action
    - id: take_action
      kind: tool
      config: {fn: execute_request, input_from_state: {request: request}}
      edges: [{to: end}]
"""

#: Each old key, the line it is on, and the new spelling its problem must name.
OLD_KEYS = [
    (4, "start_node", "workflow.start"),
    (10, "nodes", "top-level `nodes:` mapping"),
    (11, "id", "key in the `nodes:` mapping"),
    (12, "kind", "`type:`"),
    (13, "config", "on the node itself"),
    (15, "prompt_template", "`prompt:`"),
    (16, "output_to_state", "`output_key:"),
    (18, "structured_output", "`output_schema:`"),
    (19, "edges", "`next:`"),
    (21, "id", "key in the `nodes:` mapping"),
    (22, "kind", "`type:`"),
    (23, "config", "on the node itself"),
    (24, "timeout", "`timeout: 30s`"),
    (25, "edges", "`next:`"),
    (26, "condition", "`when:`"),
    (28, "id", "key in the `nodes:` mapping"),
    (29, "kind", "`type:`"),
    (30, "config", "on the node itself"),
    (30, "fn", "`tool:"),
    (30, "input_from_state", "`arguments:"),
    (31, "edges", "`next:`"),
]


def test_the_old_node_list_shape_gets_one_problem_per_old_key(tmp_path: Path) -> None:
    path = write(tmp_path, OLD_SHAPE)
    code, lines = validate(path)
    assert code == 1, lines
    problems = [line for line in lines if re.match(rf"✗ {re.escape(str(path))}:\d+: ", line)]
    found = []
    for line in problems:
        match = re.match(rf"✗ {re.escape(str(path))}:(\d+): .*?'(\w+)' is written (.*)", line)
        assert match is not None, line
        assert "old pipeline shape" in line
        found.append((int(match[1]), match[2], match[3]))
    assert sorted((n, key) for n, key, _ in found) == sorted((n, key) for n, key, _ in OLD_KEYS)
    for number, key, spelling in OLD_KEYS:
        (said,) = [text for n, k, text in found if (n, k) == (number, key)]
        assert spelling in said, (key, said)
    assert lines[-1] == f"✗ {path}: {len(OLD_KEYS)} problems"
