"""Rules with ``when:``: conditions on MCP tool annotations, decided purely, checked at load."""

from __future__ import annotations

import textwrap

import pytest

from jamjet_temporal.policy import (
    Policy,
    PolicyError,
    PolicyScopes,
    Rule,
    decide_tool,
    parse_policy,
)

FILE = "policies/mcp.yaml"


def parse(text: str) -> Policy:
    return parse_policy(textwrap.dedent(text), FILE)


def one(policy: Policy) -> PolicyScopes:
    return PolicyScopes(scopes=(("run", policy),))


POLICY = """\
rules:
  - {match: "*", when: destructive, action: require_approval}
  - {match: "web.*", when: [open_world, "not read_only"], action: block}
  - {match: "*", action: allow}
"""


@pytest.mark.parametrize(
    ("tool", "holds", "verdict", "rule"),
    [
        ("files.write_file", frozenset({"destructive", "open_world"}), "WAITING_FOR_APPROVAL", "*"),
        ("files.read_file", frozenset({"read_only"}), "ALLOWED", "*"),
        ("web.post", frozenset({"open_world"}), "BLOCKED", "web.*"),
        ("web.fetch", frozenset({"open_world", "read_only"}), "ALLOWED", "*"),
        # Nothing known (a @task tool): no condition holds, the rules with `when:` do not apply.
        ("web.post", None, "ALLOWED", "*"),
        ("search", None, "ALLOWED", "*"),
    ],
)
def test_a_rule_matches_only_when_its_conditions_hold(
    tool: str, holds: frozenset[str] | None, verdict: str, rule: str
) -> None:
    decision = decide_tool(one(parse(POLICY)), tool, holds=holds)
    assert (decision.decision, decision.rule) == (verdict, rule)


def test_the_reason_names_the_conditions() -> None:
    decision = decide_tool(one(parse(POLICY)), "web.post", holds=frozenset({"open_world"}))
    assert decision.reason == "matched block rule 'web.*' when open_world, not read_only"


def test_a_scope_with_conditions_still_denies_by_default() -> None:
    policy = parse('rules: [{match: "*", when: read_only, action: allow}]')
    assert decide_tool(one(policy), "x", holds=frozenset({"read_only"})).decision == "ALLOWED"
    refused = decide_tool(one(policy), "x", holds=frozenset({"destructive"}))
    assert (refused.decision, refused.reason) == ("BLOCKED", "no rule allows it (default deny)")


def test_blocked_tools_are_absolute_whatever_the_conditions() -> None:
    policy = Policy(
        blocked_tools=("files.rm*",),
        rules=(Rule(match="*", action="allow", when="read_only"),),
    )
    decision = decide_tool(one(policy), "files.rmdir", holds=frozenset({"read_only"}))
    assert (decision.decision, decision.rule) == ("BLOCKED", "files.rm*")


def test_when_accepts_one_name_a_list_and_negations() -> None:
    assert Rule(match="*", action="block", when="destructive").when == ("destructive",)
    rule = Rule(match="*", action="block", when=["open_world", "not  read_only"])
    assert rule.when == ("open_world", "not read_only")


def test_a_policy_without_conditions_keeps_its_version_id() -> None:
    """Rules dump as before `when:` existed: recorded histories pin these ids."""
    plain = Policy(rules=(Rule(match="*", action="allow"),))
    assert plain.version_id == "pol_a385c0daf90c"
    assert "when" not in plain.model_dump()["rules"][0]
    conditioned = Policy(rules=(Rule(match="*", action="allow", when="read_only"),))
    assert conditioned.version_id != plain.version_id
    assert Policy.model_validate(conditioned.model_dump()) == conditioned


@pytest.mark.parametrize(
    ("when", "reason", "hint"),
    [
        ("destuctive", "unknown condition 'destuctive'", "did you mean 'destructive'?"),
        ("destructiveHint", "unknown condition 'destructiveHint'", "did you mean 'destructive'?"),
        ('"not readonly"', "unknown condition 'not readonly'", "did you mean 'not read_only'?"),
        ("[]", "'when' lists no condition", None),
        ("3", "'when' must be a condition or a list of conditions, got 3", None),
        ('"maybe destructive"', "unknown condition 'maybe destructive'", None),
    ],
)
def test_an_unknown_condition_is_a_load_error_with_line_and_fix(
    when: str, reason: str, hint: str | None
) -> None:
    text = f"""\
    version: 1
    rules:
      - {{match: "a", action: allow}}
      - {{match: "*", when: {when}, action: block}}
    """
    with pytest.raises(PolicyError) as info:
        parse(text)
    error = info.value
    assert error.file == FILE and error.line == 4
    assert reason in str(error)
    assert "destructive, read_only, idempotent, open_world" in str(error.fix)
    if hint is not None:
        assert hint in str(error)


def test_a_misspelt_when_key_suggests_it() -> None:
    with pytest.raises(PolicyError) as info:
        parse('rules: [{match: "*", whn: destructive, action: block}]')
    assert "unknown key 'whn'" in str(info.value) and "did you mean 'when'?" in str(info.value)


def test_a_conditioned_catch_all_hides_no_later_rule_but_a_repeat_is_refused() -> None:
    policy = parse(
        """\
        rules:
          - {match: "*", when: destructive, action: require_approval}
          - {match: "*", when: open_world, action: audit}
          - {match: "*", action: allow}
        """
    )
    assert len(policy.rules) == 3
    with pytest.raises(PolicyError) as info:
        parse(
            """\
            rules:
              - {match: "*", when: destructive, action: block}
              - {match: "*", when: [destructive], action: allow}
            """
        )
    assert "repeats the glob '*' and conditions (destructive) of rule 1" in str(info.value)
    assert info.value.line == 3
    with pytest.raises(PolicyError) as info:
        parse(
            """\
            rules:
              - {match: "*", action: allow}
              - {match: "*", when: destructive, action: block}
            """
        )
    assert "can never match" in str(info.value)
