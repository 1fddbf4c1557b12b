"""Policy files: accepted formats, and every error naming its file, line and fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jamjet_temporal.errors import ConfigError
from jamjet_temporal.policy import (
    Policy,
    PolicyError,
    PolicyScopes,
    Rule,
    _load,
    decide_tool,
    load_policy,
    parse_policy,
)

FILE = "policies/agent.yaml"

PORTABLE = """\
version: 1
rules:
  - match: "*delete*"
    action: block
  - match: "wire_*"
    action: require_approval
  - match: "search.*"
    action: audit
  - match: "*"
    action: allow
"""


def parse(text: str) -> Policy:
    return parse_policy(textwrap.dedent(text), FILE)


def error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse(text)
    assert caught.value.file == FILE
    assert caught.value.fix
    return caught.value


# --------------------------------------------------------------------------------------------
# Accepted formats


def test_portable_format() -> None:
    policy = parse_policy(PORTABLE, FILE)
    assert policy.rules == (
        Rule(match="*delete*", action="block"),
        Rule(match="wire_*", action="require_approval"),
        Rule(match="search.*", action="audit"),
        Rule(match="*", action="allow"),
    )
    assert policy.source == FILE
    assert (policy.blocked_tools, policy.require_approval_for) == ((), ())
    assert policy.model_allowlist is None
    assert not policy.closed
    scopes = PolicyScopes(scopes=(("workflow", policy),))
    assert decide_tool(scopes, "db.delete").decision == "BLOCKED"
    assert decide_tool(scopes, "search.web").decision == "AUDIT"


def test_version_is_optional() -> None:
    assert parse("rules: [{match: a, action: allow}]").rules == (Rule(match="a", action="allow"),)


def test_workflow_keys_at_the_top_level() -> None:
    policy = parse(
        """\
        blocked_tools: ["shell.*", drop_table]
        require_approval_for:
          - "payments.*"
        model_allowlist: ["gpt-4o*"]
        """
    )
    assert policy.blocked_tools == ("shell.*", "drop_table")
    assert policy.require_approval_for == ("payments.*",)
    assert policy.model_allowlist == ("gpt-4o*",)
    assert policy.rules == ()


def test_workflow_keys_under_policy_with_rules() -> None:
    policy = parse(
        """\
        version: 1
        policy:
          blocked_tools: ["shell.*"]
          model_allowlist: []
        require_approval_for: ["wire_*"]
        rules:
          - match: "*"
            action: allow
        """
    )
    assert policy.blocked_tools == ("shell.*",)
    assert policy.model_allowlist == ()
    assert policy.require_approval_for == ("wire_*",)
    assert policy.rules == (Rule(match="*", action="allow"),)


def test_same_policy_whichever_way_it_is_written() -> None:
    top = parse("blocked_tools: [x]\n")
    nested = parse("policy:\n  blocked_tools: [x]\n")
    assert top == nested
    assert top.version_id == nested.version_id == Policy(blocked_tools=("x",)).version_id


def test_module_docstring_example_parses() -> None:
    doc = _load.__doc__
    assert doc is not None
    example = doc.split("::\n", 1)[1].split("\n\n", 1)[0]
    policy = parse(example)
    assert len(policy.rules) == 4
    assert policy.rules[2].when == ("destructive",)
    assert policy.blocked_tools == ("shell.*",)


def test_load_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(PORTABLE, encoding="utf-8")
    policy = load_policy(path)
    assert policy == parse_policy(PORTABLE)
    assert policy.source == str(path)


# --------------------------------------------------------------------------------------------
# Errors, with lines


def test_yaml_syntax_error() -> None:
    exc = error(
        """\
        version: 1
        rules:
          - match: "a"
             action: allow
        """
    )
    assert exc.line == 4
    assert exc.reason.startswith("invalid YAML at column")


def test_unquoted_star_glob() -> None:
    exc = error(
        """\
        version: 1
        rules:
          - match: *delete*
            action: block
        """
    )
    assert exc.line == 3
    assert "alias" in exc.reason
    assert exc.fix == 'quote globs that start with `*`, e.g. `match: "*delete*"`'


def test_yaml_tag() -> None:
    exc = error("rules: !!python/object:os.system [x]\n")
    assert exc.line == 1
    assert exc.fix is not None and "policy files are plain YAML" in exc.fix


def test_duplicate_top_level_key() -> None:
    exc = error(
        """\
        version: 1
        rules: []
        blocked_tools: [a]
        rules: []
        """
    )
    assert exc.line == 4
    assert exc.reason.startswith("key 'rules' appears twice in the same mapping (first at line 2)")
    assert exc.fix == "remove one of them"


def test_duplicate_key_in_a_rule() -> None:
    exc = error(
        """\
        rules:
          - match: a
            action: allow
            action: block
        """
    )
    assert exc.line == 4
    assert "key 'action' appears twice" in exc.reason


def test_unknown_top_level_key() -> None:
    exc = error(
        """\
        version: 1
        blocked_tool: [x]
        """
    )
    assert (exc.line, exc.reason) == (2, "unknown key 'blocked_tool' for a policy file")
    assert exc.fix == "did you mean 'blocked_tools'?"


def test_unknown_key_without_a_close_match() -> None:
    exc = error("version: 1\nowner: me\n")
    assert exc.line == 2
    assert exc.fix == (
        "remove it (allowed here: version, rules, blocked_tools, require_approval_for, "
        "model_allowlist, policy)"
    )


def test_source_is_not_a_file_key() -> None:
    exc = error("source: x.yaml\nrules: [{match: a, action: allow}]\n")
    assert (exc.line, exc.reason) == (1, "unknown key 'source'")


def test_unknown_key_in_a_rule() -> None:
    exc = error(
        """\
        rules:
          - match: a
            action: allow
          - match: b
            acton: block
        """
    )
    assert (exc.line, exc.reason) == (5, "unknown key 'acton' in rule 2")
    assert exc.fix == "did you mean 'action'?"


def test_unknown_key_under_policy() -> None:
    exc = error(
        """\
        policy:
          blocked_tools: [a]
          require_approval: [b]
        """
    )
    assert (exc.line, exc.reason) == (3, "unknown key 'require_approval' in 'policy'")
    assert exc.fix == "did you mean 'require_approval_for'?"


def test_rules_under_policy() -> None:
    exc = error(
        """\
        policy:
          blocked_tools: [a]
          rules:
            - match: b
              action: allow
        """
    )
    assert (exc.line, exc.reason) == (3, "'rules' cannot be under 'policy:'")
    assert (exc.fix or "").startswith("move `rules:` to the top level")


@pytest.mark.parametrize(
    ("action", "hint"),
    [
        ("deny", "did you mean 'block'? "),
        ("Block", "did you mean 'block'? "),
        ("require-approval", "did you mean 'require_approval'? "),
        ("explode", ""),
    ],
)
def test_unknown_action(action: str, hint: str) -> None:
    exc = error(
        f"""\
        version: 1
        rules:
          - match: a
            action: allow
          - match: b
            action: {action}
        """
    )
    assert (exc.line, exc.reason) == (6, f"rule 2 has an unknown action '{action}'")
    assert exc.fix == f"{hint}the actions are: allow, block, require_approval, audit"


def test_action_yaml_reads_as_a_boolean() -> None:
    exc = error("rules:\n  - match: a\n    action: no\n")
    assert (exc.line, exc.reason) == (3, "rule 1 has an unknown action False")


def test_missing_action() -> None:
    exc = error(
        """\
        rules:
          - match: a
            action: allow
          - match: b
        """
    )
    assert (exc.line, exc.reason) == (4, "rule 2 has no 'action'")
    assert exc.fix == "add `action: allow|block|require_approval|audit` to it"


def test_missing_match() -> None:
    exc = error("rules:\n  - action: allow\n")
    assert (exc.line, exc.reason) == (2, "rule 1 has no 'match'")
    assert exc.fix == "add `match: <glob>` to it"


@pytest.mark.parametrize(
    ("glob", "reason"),
    [
        ('""', "rule 2 'match': an empty glob matches no tool, got ''"),
        ('" b"', "rule 2 'match': the glob starts or ends with whitespace, so it matches no tool"),
        ('"a\\nb"', "rule 2 'match': the glob contains a control character"),
    ],
)
def test_bad_glob_in_a_rule(glob: str, reason: str) -> None:
    exc = error(
        f"""\
        rules:
          - match: a
            action: allow
          - action: block
            match: {glob}
        """
    )
    assert exc.line == 5
    assert exc.reason.startswith(reason)


def test_empty_match() -> None:
    exc = error("rules:\n  - match:\n    action: allow\n")
    assert (exc.line, exc.reason) == (2, "rule 1 'match' has no value")


def test_number_as_glob() -> None:
    exc = error("rules:\n  - match: 42\n    action: allow\n")
    assert (exc.line, exc.reason) == (2, "rule 1 'match' must be text, got 42")
    assert exc.fix == "quote it: YAML reads it as a number or a boolean"


def test_bad_glob_in_a_block_list() -> None:
    exc = error(
        """\
        blocked_tools:
          - shell.*
          - ""
        """
    )
    assert exc.line == 3
    assert exc.reason.startswith("'blocked_tools' entry 2: an empty glob matches no tool")


def test_bad_glob_under_policy() -> None:
    exc = error(
        """\
        policy:
          model_allowlist:
            - gpt-4o
            - " claude"
        """
    )
    assert exc.line == 4
    assert exc.reason.startswith("'policy.model_allowlist' entry 2: the glob starts or ends")
    assert exc.fix == "remove the spaces around the glob"


@pytest.mark.parametrize(
    ("version", "reason", "fix"),
    [
        ("2", "unsupported policy version 2", "this release reads `version: 1`"),
        ("0", "unsupported policy version 0", "this release reads `version: 1`"),
        ("true", "unsupported policy version True", "this release reads `version: 1`"),
        ("1.0", "unsupported policy version 1.0", "this release reads `version: 1`"),
        ('"1"', "'version' is text, not a number", "write `version: 1` without quotes"),
    ],
)
def test_wrong_version(version: str, reason: str, fix: str) -> None:
    exc = error(f"# policy\nversion: {version}\nrules: [{{match: a, action: allow}}]\n")
    assert (exc.line, exc.reason, exc.fix) == (2, reason, fix)


def test_rules_not_a_list() -> None:
    exc = error(
        """\
        version: 1
        rules:
          match: a
          action: allow
        """
    )
    assert exc.line == 2
    assert exc.reason == "'rules' must be a list of rules, got {'match': 'a', 'action': 'allow'}"
    assert (exc.fix or "").startswith('write each rule as `- match: "<glob>"`')


def test_rules_as_text() -> None:
    exc = error("version: 1\nrules: search\n")
    assert (exc.line, exc.reason) == (2, "'rules' must be a list of rules, got 'search'")


def test_rule_not_a_mapping() -> None:
    exc = error(
        """\
        rules:
          - match: a
            action: allow
          - search
        """
    )
    assert exc.line == 4
    assert exc.reason == "rule 2 must be a mapping with 'match' and 'action', got 'search'"


def test_glob_list_not_a_list() -> None:
    exc = error("version: 1\nblocked_tools: '*delete*'\n")
    assert exc.line == 2
    assert exc.reason == "'blocked_tools' must be a list of globs, got '*delete*'"
    assert exc.fix == (
        "write it as a list, `blocked_tools: ['*delete*']`, or as one `- glob` line per entry"
    )


def test_policy_not_a_mapping() -> None:
    exc = error("version: 1\npolicy: [a]\n")
    assert (exc.line, exc.reason) == (2, "'policy' must be a mapping, got ['a']")


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("version: 1\nrules:\n", 2, "'rules' has no value"),
        ("version:\nrules: []\n", 1, "'version' has no value"),
        ("model_allowlist:\n", 1, "'model_allowlist' has no value"),
        ("blocked_tools: [a]\npolicy:\n", 2, "'policy' has no value"),
        (
            "policy:\n  blocked_tools: [a]\n  model_allowlist:\n",
            3,
            "'policy.model_allowlist' has no value",
        ),
    ],
)
def test_key_without_a_value(text: str, line: int, reason: str) -> None:
    exc = error(text)
    assert (exc.line, exc.reason) == (line, reason)


def test_key_both_at_top_level_and_under_policy() -> None:
    exc = error(
        """\
        version: 1
        blocked_tools: [a]
        policy:
          require_approval_for: [b]
          blocked_tools: [c]
        """
    )
    assert exc.line == 5
    assert exc.reason == "'blocked_tools' is set both at the top level (line 2) and under 'policy:'"


def test_rule_after_a_catch_all() -> None:
    exc = error(
        """\
        version: 1
        rules:
          - match: "**"
            action: allow
          - match: "*delete*"
            action: block
        """
    )
    assert exc.line == 5
    assert exc.reason == (
        "rule 2 ('*delete*') can never match: rule 1 ('**') before it matches every tool"
    )


def test_repeated_glob() -> None:
    exc = error(
        """\
        rules:
          - match: a
            action: allow
          - match: b
            action: allow
          - match: a
            action: block
        """
    )
    assert exc.line == 6
    assert exc.reason == "rule 3 repeats the glob 'a' of rule 1, so it can never match"


@pytest.mark.parametrize(
    ("text", "line", "kind"),
    [
        ("", 1, "empty"),
        ("# only a comment\n", 1, "empty"),
        ("\n\n- a\n", 3, "a list"),
        ("just text\n", 1, "a str"),
    ],
)
def test_top_level_not_a_mapping(text: str, line: int, kind: str) -> None:
    exc = error(text)
    assert (exc.line, exc.reason) == (line, f"the top level must be a mapping, but it is {kind}")


@pytest.mark.parametrize(
    "text",
    ["version: 1\n", "version: 1\nrules: []\n", "blocked_tools: []\npolicy: {}\n"],
)
def test_empty_policy_is_refused(text: str) -> None:
    exc = error(text)
    assert exc.line == 1
    assert exc.reason.startswith("the policy sets nothing")


def test_non_text_key() -> None:
    exc = error("version: 1\n7: x\n")
    assert (exc.line, exc.reason) == (2, "key 7 is not text")


def test_errors_are_config_errors() -> None:
    assert isinstance(error("rulez: []\n"), ConfigError)
    assert str(error("rulez: []\n")) == (
        f"{FILE}:1: unknown key 'rulez' for a policy file (fix: did you mean 'rules'?)"
    )


# --------------------------------------------------------------------------------------------
# Files


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    exc = caught.value
    assert (exc.file, exc.line, exc.reason) == (str(path), None, "policy file not found")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="this is a directory, not a policy file"):
        load_policy(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"rules:\n  - match: caf\xe9\n    action: allow\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.reason == "the file is not valid UTF-8 (byte 21)"


def test_unreadable(tmp_path: Path) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text(PORTABLE, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(plain / "policy.yaml")
    assert caught.value.reason.startswith("cannot read the policy file: ")
    assert caught.value.fix == "check that the file exists and is readable"


def test_error_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nrules:\n  - match: a\n    action: nope\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(str(path))
    assert (caught.value.file, caught.value.line) == (str(path), 4)


def test_unknown_alias() -> None:
    exc = error("rules:\n  - match: *x\n    action: allow\n")
    assert exc.line == 2
    assert "found undefined alias 'x'" in exc.reason
    assert exc.fix == 'quote globs that start with `*`, e.g. `match: "*delete*"`'
