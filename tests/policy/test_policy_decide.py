"""Tool and model decisions: glob conformance, scopes, absolute blocks, allow-lists, defaults."""

from __future__ import annotations

import pickle
import re
import time

import pydantic
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from jamjet_temporal.errors import ConfigError, JamJetError
from jamjet_temporal.policy import (
    Decision,
    Policy,
    PolicyError,
    PolicyScopes,
    Rule,
    decide_model,
    decide_tool,
)


def rules(*pairs: tuple[str, str]) -> Policy:
    return Policy(rules=tuple(Rule.model_validate({"match": m, "action": a}) for m, a in pairs))


def one(policy: Policy, name: str = "workflow") -> PolicyScopes:
    return PolicyScopes(scopes=((name, policy),))


def verdict(policy: Policy, tool: str) -> str:
    return decide_tool(one(policy), tool).decision


# --------------------------------------------------------------------------------------------
# JamJet glob conformance


def test_first_match_wins() -> None:
    policy = rules(("*delete*", "block"), ("*", "allow"))
    assert verdict(policy, "db.delete_all") == "BLOCKED"
    assert verdict(policy, "search") == "ALLOWED"
    assert verdict(rules(("*", "allow"), ("*delete*", "block")), "db.delete_all") == "ALLOWED"


def test_first_match_wins_reports_the_rule() -> None:
    policy = rules(("a*", "audit"), ("ab*", "block"), ("abc", "allow"))
    decision = decide_tool(one(policy), "abc")
    assert (decision.decision, decision.rule, decision.rule_kind) == ("AUDIT", "a*", "audit")
    assert decision.reason == "matched audit rule 'a*'"


@pytest.mark.parametrize(
    ("glob", "tool", "matches"),
    [
        ("fs.*", "fs.read.file", True),  # `*` crosses dots
        ("*", "a.b.c", True),
        ("*.read", "fs.sub.read", True),
        ("fs.*", "fs.", True),  # zero characters
        ("fs.*", "fs", False),
        ("tool?", "tool1", True),  # `?` is exactly one character
        ("tool?", "tool", False),
        ("tool?", "tool12", False),
        ("?", ".", True),
        ("tool[1]", "tool[1]", True),  # `[` is literal, not a class
        ("tool[1]", "tool1", False),
        ("[ab]", "a", False),
        ("Search", "search", True),  # case-insensitive: a look-alike name is the same tool
        ("search", "Search", True),
        ("search", "search", True),
        ("*", "", True),  # empty tool name
        ("?", "", False),
        ("a", "", False),
        ("a.b", "axb", False),  # regex characters are literal
        ("a+b", "aab", False),
        ("a+b", "a+b", True),
        ("(x)|y", "y", False),
        ("(x)|y", "(x)|y", True),
        ("^$", "^$", True),
        ("a\\b", "a\\b", True),
        ("a{2}", "aa", False),
        ("search", "search_web", False),  # anchored at both ends
        ("search", "web_search", False),
        ("*search", "web_search", True),
        ("a**b", "ab", True),
        ("a*", "a\nb", True),  # `*` is any character, newline included
        ("a?b", "a\nb", True),
    ],
)
def test_glob_conformance(glob: str, tool: str, matches: bool) -> None:
    assert verdict(rules((glob, "allow")), tool) == ("ALLOWED" if matches else "BLOCKED")


def test_many_stars_stay_fast() -> None:
    policy = rules(("a*a*a*a*a*a*a*a*a*a*b", "allow"))
    start = time.perf_counter()
    assert verdict(policy, "a" * 20_000) == "BLOCKED"
    assert verdict(policy, "a" * 20_000 + "b") == "ALLOWED"
    assert time.perf_counter() - start < 1.0


# --------------------------------------------------------------------------------------------
# Actions and defaults


@pytest.mark.parametrize(
    ("action", "expected", "allowed"),
    [
        ("allow", "ALLOWED", True),
        ("block", "BLOCKED", False),
        ("require_approval", "WAITING_FOR_APPROVAL", False),
        ("audit", "AUDIT", True),
    ],
)
def test_each_action(action: str, expected: str, allowed: bool) -> None:
    policy = rules(("tool", action))
    decision = decide_tool(one(policy, "run"), "tool")
    assert decision == Decision(
        decision=expected,  # type: ignore[arg-type]
        subject="tool",
        rule="tool",
        rule_kind=action,  # type: ignore[arg-type]
        scope="run",
        policy_version=policy.version_id,
        reason=f"matched {action} rule 'tool'",
    )
    assert decision.allowed is allowed


def test_default_deny_when_rules_exist() -> None:
    policy = rules(("search", "allow"))
    scopes = one(policy)
    decision = decide_tool(scopes, "delete_database")
    assert decision.decision == "BLOCKED"
    assert (decision.rule, decision.rule_kind, decision.scope) == (None, None, "workflow")
    assert decision.reason == "no rule allows it (default deny)"
    assert decision.policy_version == policy.version_id != "none"
    assert not decision.allowed


def test_no_policy_allows() -> None:
    for scopes in (PolicyScopes(), one(Policy()), PolicyScopes().with_scope("run", Policy())):
        decision = decide_tool(scopes, "anything")
        assert decision == Decision(
            decision="ALLOWED",
            subject="anything",
            rule=None,
            rule_kind=None,
            scope="default",
            policy_version="none",
            reason="no policy configured",
        )


def test_model_allowlist_alone_says_nothing_about_tools() -> None:
    decision = decide_tool(one(Policy(model_allowlist=("gpt-*",))), "search")
    assert decision.decision == "ALLOWED"
    assert decision.reason == "no policy configured"


def test_block_list_alone_does_not_deny_by_default() -> None:
    # JamJet's workflow-level keys restrict; only rules or an allow-list make a policy closed.
    scopes = one(Policy(blocked_tools=("*delete*",), require_approval_for=("wire_*",)))
    assert decide_tool(scopes, "db.delete").decision == "BLOCKED"
    assert decide_tool(scopes, "wire_transfer").decision == "WAITING_FOR_APPROVAL"
    decision = decide_tool(scopes, "search")
    assert decision.decision == "ALLOWED"
    assert decision.scope == "default"
    assert decision.reason == "no rule matched and no scope sets rules or an allow-list"
    assert decision.policy_version == scopes.version_id


def test_require_approval_for_comes_before_rules() -> None:
    policy = Policy(
        require_approval_for=("wire_*",),
        rules=(Rule(match="wire_small", action="allow"), Rule(match="*", action="allow")),
    )
    decision = decide_tool(one(policy), "wire_small")
    assert decision.decision == "WAITING_FOR_APPROVAL"
    assert (decision.rule, decision.rule_kind) == ("wire_*", "require_approval")
    assert decision.reason == "matched require_approval_for 'wire_*'"
    assert verdict(policy, "search") == "ALLOWED"


def test_blocked_tools_beat_rules_in_the_same_scope() -> None:
    policy = Policy(blocked_tools=("rm",), rules=(Rule(match="rm", action="allow"),))
    decision = decide_tool(one(policy), "rm")
    assert decision.decision == "BLOCKED"
    assert (decision.rule, decision.rule_kind) == ("rm", "block")
    assert decision.reason == "tool is in blocked_tools"


# --------------------------------------------------------------------------------------------
# Scopes


def stack(*scopes: tuple[str, Policy]) -> PolicyScopes:
    return PolicyScopes(scopes=scopes)


def test_every_scope_must_allow() -> None:
    run = rules(("*", "allow"))
    agent = rules(("search", "block"), ("read_*", "allow"))
    scopes = stack(("run", run), ("agent:assistant", agent))
    decision = decide_tool(scopes, "search")
    assert (decision.decision, decision.scope) == ("BLOCKED", "agent:assistant")
    assert decision.policy_version == agent.version_id
    # Both allow: the most specific permission is reported.
    decision = decide_tool(scopes, "read_files")
    assert (decision.decision, decision.scope, decision.rule) == (
        "ALLOWED",
        "agent:assistant",
        "read_*",
    )
    # The agent's rules match nothing: that scope denies by default, whatever the run allows.
    decision = decide_tool(scopes, "write_files")
    assert (decision.decision, decision.scope) == ("BLOCKED", "agent:assistant")
    assert decision.reason == "no rule allows it (default deny)"


def test_a_more_specific_scope_cannot_relax_a_less_specific_one() -> None:
    # The attack: a pipeline's own `policy:` allows what the operator's policy blocks.
    scopes = stack(("run", rules(("x", "block"))), ("workflow", rules(("*", "allow"))))
    decision = decide_tool(scopes, "x")
    assert (decision.decision, decision.scope, decision.rule) == ("BLOCKED", "run", "x")
    scopes = stack(("run", rules(("search", "allow"))), ("workflow", rules(("*", "allow"))))
    decision = decide_tool(scopes, "delete_database")
    assert (decision.decision, decision.scope) == ("BLOCKED", "run")
    assert decide_tool(scopes, "search").decision == "ALLOWED"


def test_a_more_specific_scope_cannot_skip_an_approval() -> None:
    scopes = stack(("run", rules(("pay", "require_approval"))), ("node:n", rules(("*", "allow"))))
    assert decide_tool(scopes, "pay").decision == "WAITING_FOR_APPROVAL"
    assert decide_tool(scopes, "pay").scope == "run"


@pytest.mark.parametrize("tool", ["Delete_Database", "DELETE_DATABASE", "ｄｅｌｅｔｅ_database"])
def test_globs_ignore_case_and_compatibility_forms(tool: str) -> None:
    policy = Policy(blocked_tools=("*delete*",), rules=(Rule(match="*", action="allow"),))
    assert verdict(policy, tool) == "BLOCKED"
    assert decide_tool(one(policy), tool).subject == tool
    assert decide_model(one(Policy(model_allowlist=("GPT-4o*",))), "gpt-4o-mini").allowed


def test_default_deny_if_any_scope_has_rules() -> None:
    scopes = stack(("run", rules(("search", "allow"))), ("node:analyze", Policy()))
    assert decide_tool(scopes, "other").reason == "no rule allows it (default deny)"
    assert decide_tool(scopes, "other").scope == "run"
    scopes = stack(("run", Policy()), ("node:analyze", rules(("search", "allow"))))
    assert decide_tool(scopes, "other").decision == "BLOCKED"
    assert decide_tool(scopes, "other").scope == "node:analyze"


def test_blocked_tools_anywhere_are_absolute() -> None:
    run = Policy(blocked_tools=("delete_*",))
    agent = Policy.allow_list(["search", "delete_database"], source="@task assistant")
    scopes = stack(("run", run), ("agent:assistant", agent))
    decision = decide_tool(scopes, "delete_database")
    assert decision == Decision(
        decision="BLOCKED",
        subject="delete_database",
        rule="delete_*",
        rule_kind="block",
        scope="run",
        policy_version=run.version_id,
        reason="tool is in blocked_tools",
    )
    assert decide_tool(scopes, "search").decision == "ALLOWED"


def test_blocked_tools_in_a_specific_scope_are_absolute_too() -> None:
    scopes = stack(("run", rules(("*", "allow"))), ("node:n", Policy(blocked_tools=("x",))))
    assert decide_tool(scopes, "x").scope == "node:n"
    assert decide_tool(scopes, "y").decision == "ALLOWED"


def test_the_least_specific_block_is_reported() -> None:
    scopes = stack(
        ("run", Policy(blocked_tools=("x*",))),
        ("workflow", Policy(blocked_tools=("x",))),
    )
    assert decide_tool(scopes, "x").scope == "run"


def test_allow_list_is_closed() -> None:
    run = rules(("*", "allow"))
    agent = Policy.allow_list(["search", "read_files"], source="@task assistant")
    scopes = stack(("run", run), ("agent:assistant", agent))
    decision = decide_tool(scopes, "delete_database")
    assert decision == Decision(
        decision="BLOCKED",
        subject="delete_database",
        rule=None,
        rule_kind=None,
        scope="agent:assistant",
        policy_version=agent.version_id,
        reason="tool not in allow-list",
    )
    allowed = decide_tool(scopes, "read_files")
    assert (allowed.decision, allowed.rule, allowed.scope) == (
        "ALLOWED",
        "read_files",
        "agent:assistant",
    )


def test_allow_list_closes_even_below_a_more_specific_scope() -> None:
    agent = Policy.allow_list(["search"], source="@task a")
    node = rules(("read_*", "audit"))
    scopes = stack(("run", rules(("*", "allow"))), ("agent:a", agent), ("node:n", node))
    assert decide_tool(scopes, "read_x").decision == "BLOCKED"
    assert decide_tool(scopes, "read_x").scope == "agent:a"
    assert decide_tool(scopes, "search").decision == "BLOCKED"  # the node's default deny
    node = rules(("*", "audit"))
    scopes = stack(("run", rules(("*", "allow"))), ("agent:a", agent), ("node:n", node))
    assert decide_tool(scopes, "search").decision == "AUDIT"
    assert decide_tool(scopes, "write_x").scope == "agent:a"
    assert decide_tool(scopes, "write_x").reason == "tool not in allow-list"


def test_allow_list_entries_are_globs_and_an_empty_list_blocks_everything() -> None:
    assert verdict(Policy.allow_list(["fs.*"], source="s"), "fs.read") == "ALLOWED"
    empty = Policy.allow_list([], source="s")
    assert not empty.is_empty
    assert decide_tool(one(empty), "search").reason == "tool not in allow-list"


def test_allow_list_refuses_a_single_string() -> None:
    with pytest.raises(TypeError, match="not one string"):
        Policy.allow_list("search", source="s")


def test_allow_list_keeps_its_source() -> None:
    policy = Policy.allow_list(("a", "b"), source="@task x")
    assert policy.source == "@task x"
    assert policy.closed
    assert [rule.match for rule in policy.rules] == ["a", "b"]


# --------------------------------------------------------------------------------------------
# Models


def test_model_allowlist() -> None:
    policy = Policy(model_allowlist=("gpt-4o*", "claude-?"))
    scopes = one(policy, "run")
    decision = decide_model(scopes, "gpt-4o-mini")
    assert (decision.decision, decision.rule, decision.rule_kind) == ("ALLOWED", "gpt-4o*", "allow")
    assert decision.subject == "gpt-4o-mini"
    blocked = decide_model(scopes, "o1")
    assert blocked == Decision(
        decision="BLOCKED",
        subject="o1",
        rule=None,
        rule_kind=None,
        scope="run",
        policy_version=policy.version_id,
        reason="model not in model_allowlist",
    )


def test_model_allowlist_of_every_scope_that_sets_one() -> None:
    run = Policy(model_allowlist=("gpt-*",))
    workflow = Policy(model_allowlist=("claude-*",))
    node = rules(("*", "allow"))  # no model_allowlist: does not count
    scopes = stack(("run", run), ("workflow", workflow), ("node:n", node))
    assert decide_model(scopes, "gpt-4o").decision == "BLOCKED"
    assert decide_model(scopes, "gpt-4o").scope == "workflow"
    assert decide_model(scopes, "claude-3").decision == "BLOCKED"
    assert decide_model(scopes, "claude-3").scope == "run"
    assert decide_model(stack(("run", run), ("node:n", node)), "gpt-4o").scope == "run"
    narrower = stack(("run", run), ("workflow", Policy(model_allowlist=("gpt-4o",))))
    assert decide_model(narrower, "gpt-4o").scope == "workflow"
    assert not decide_model(narrower, "gpt-4o-mini").allowed


def test_a_pipeline_cannot_widen_the_model_allowlist() -> None:
    run = Policy(model_allowlist=("gpt-4o",))
    scopes = stack(("run", run), ("workflow", Policy(model_allowlist=("*",))))
    decision = decide_model(scopes, "o1-pro")
    assert (decision.decision, decision.scope) == ("BLOCKED", "run")


def test_empty_model_allowlist_blocks_every_model() -> None:
    assert decide_model(one(Policy(model_allowlist=())), "gpt-4o").decision == "BLOCKED"


def test_no_model_allowlist_allows_any_model() -> None:
    decision = decide_model(PolicyScopes(), "gpt-4o")
    assert (decision.decision, decision.scope, decision.policy_version) == (
        "ALLOWED",
        "default",
        "none",
    )
    assert decision.reason == "no model_allowlist configured"
    scopes = one(rules(("*", "block")))
    assert decide_model(scopes, "gpt-4o").decision == "ALLOWED"
    assert decide_model(scopes, "gpt-4o").policy_version == scopes.version_id


def test_blocked_tools_do_not_apply_to_models() -> None:
    assert decide_model(one(Policy(blocked_tools=("*",))), "gpt-4o").decision == "ALLOWED"


# --------------------------------------------------------------------------------------------
# Models: validation, identity, round trips


def test_version_id_is_stable_and_ignores_source() -> None:
    policy = rules(("*", "allow"))
    # Pinned: recorded decisions name this id, so its canonical form must not drift.
    assert policy.version_id == "pol_a385c0daf90c"
    assert re.fullmatch(r"pol_[0-9a-f]{12}", policy.version_id)
    assert policy.model_copy(update={"source": "other.yaml"}).version_id == policy.version_id
    assert rules(("*", "block")).version_id != policy.version_id
    swapped = rules(("b", "allow"), ("a", "allow")).version_id
    assert swapped != rules(("a", "allow"), ("b", "allow")).version_id
    assert Policy(model_allowlist=()).version_id != Policy().version_id
    assert Policy.allow_list(["*"], source="x").version_id != policy.version_id


def test_equality_and_hash_are_semantic() -> None:
    a = Policy(blocked_tools=("x",), source="a.yaml")
    b = Policy(blocked_tools=("x",), source="b.yaml")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != Policy(blocked_tools=("y",))
    assert a != "not a policy"


def test_is_empty() -> None:
    assert Policy().is_empty
    assert Policy(source="x.yaml").is_empty
    assert not Policy(model_allowlist=()).is_empty
    assert not Policy(blocked_tools=("x",)).is_empty
    assert not Policy(require_approval_for=("x",)).is_empty
    assert not rules(("x", "allow")).is_empty


def test_json_round_trip() -> None:
    policy = Policy(
        rules=(Rule(match="*delete*", action="block"), Rule(match="*", action="audit")),
        blocked_tools=("shell.*",),
        require_approval_for=("wire_*",),
        model_allowlist=("gpt-*",),
        source="policy.yaml",
    )
    data = policy.model_dump(mode="json")
    again = Policy.model_validate(data)
    assert again == policy
    assert again.source == "policy.yaml"
    assert again.version_id == policy.version_id
    assert Policy.model_validate_json(policy.model_dump_json()) == policy
    allow = Policy.allow_list(["a"], source="s")
    assert Policy.model_validate(allow.model_dump(mode="json")).closed


def test_round_trips_keep_decisions() -> None:
    scopes = stack(
        ("run", Policy(blocked_tools=("rm",), model_allowlist=("gpt-*",))),
        ("agent:a", Policy.allow_list(["search"], source="@task a")),
    )
    copies = [
        PolicyScopes.model_validate(scopes.model_dump(mode="json")),
        PolicyScopes.model_validate_json(scopes.model_dump_json()),
        pickle.loads(pickle.dumps(scopes)),
    ]
    for copy in copies:
        assert copy == scopes
        assert copy.version_id == scopes.version_id
        for tool in ("rm", "search", "other"):
            assert decide_tool(copy, tool) == decide_tool(scopes, tool)
        assert decide_model(copy, "o1") == decide_model(scopes, "o1")


def test_temporal_pydantic_converter_round_trip() -> None:
    converter = pydantic_data_converter.payload_converter
    scopes = stack(("run", rules(("a*", "require_approval"))))
    decision = decide_tool(scopes, "abc")
    payloads = converter.to_payloads([scopes, decision])
    back_scopes, back_decision = converter.from_payloads(payloads, [PolicyScopes, Decision])
    assert back_scopes == scopes
    assert back_decision == decision
    assert decide_tool(back_scopes, "abc") == decision


def test_model_copy_recompiles() -> None:
    policy = rules(("*", "allow"))
    blocked = policy.model_copy(update={"blocked_tools": ("x",)})
    assert verdict(blocked, "x") == "BLOCKED"
    assert verdict(policy, "x") == "ALLOWED"
    assert policy.model_copy() is policy
    with pytest.raises(pydantic.ValidationError):
        policy.model_copy(update={"blocked_tools": ("",)})
    scopes = one(policy)
    assert (
        decide_tool(scopes.model_copy(update={"scopes": (("run", blocked),)}), "x").scope == "run"
    )


def test_decisions_are_deterministic_and_leave_inputs_alone() -> None:
    scopes = stack(("run", rules(("a*", "allow"))), ("agent:x", Policy(blocked_tools=("ab",))))
    dumped = scopes.model_dump()
    first = [decide_tool(scopes, tool) for tool in ("a", "ab", "b")]
    assert first == [decide_tool(scopes, tool) for tool in ("a", "ab", "b")]
    assert scopes.model_dump() == dumped


@pytest.mark.parametrize(
    ("glob", "message"),
    [
        ("", "an empty glob matches no tool"),
        (" search", "starts or ends with whitespace"),
        ("search\n", "starts or ends with whitespace"),
        ("a\tb", "control character"),
    ],
)
def test_bad_globs_are_rejected(glob: str, message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        Rule(match=glob, action="allow")
    with pytest.raises(pydantic.ValidationError, match=message):
        Policy(blocked_tools=(glob,))
    with pytest.raises(pydantic.ValidationError, match=message):
        Policy(model_allowlist=(glob,))


def test_bad_fields_are_rejected() -> None:
    with pytest.raises(pydantic.ValidationError):
        Rule.model_validate({"match": "x", "action": "deny"})
    with pytest.raises(pydantic.ValidationError):
        Rule.model_validate({"match": "x", "action": "allow", "why": "no"})
    for version in (2, 0, True, 1.0, "1"):
        with pytest.raises(pydantic.ValidationError):
            Policy.model_validate({"version": version})
    with pytest.raises(pydantic.ValidationError):
        Policy.model_validate({"rulez": []})
    with pytest.raises(pydantic.ValidationError):
        rules(("x", "allow")).model_copy(update={"rules": "x"})


def test_models_are_frozen() -> None:
    policy = rules(("x", "allow"))
    with pytest.raises(pydantic.ValidationError):
        policy.rules = ()
    with pytest.raises(pydantic.ValidationError):
        policy.rules[0].action = "block"


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("run", "run"), "scope 'run' appears twice"),
        (("default",), "reserved"),
        (("",), "must not be empty"),
    ],
)
def test_scope_names(names: tuple[str, ...], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        PolicyScopes(scopes=tuple((name, Policy()) for name in names))


def test_with_scope_adds_the_most_specific_scope() -> None:
    base = stack(("run", rules(("*", "allow"))))
    more = base.with_scope("agent:a", rules(("x", "block")))
    assert [name for name, _ in more.scopes] == ["run", "agent:a"]
    assert decide_tool(more, "x").decision == "BLOCKED"
    assert decide_tool(base, "x").decision == "ALLOWED"
    assert base.version_id != more.version_id
    with pytest.raises(pydantic.ValidationError, match="twice"):
        more.with_scope("run", Policy())


def test_scopes_version_ignores_empty_scopes() -> None:
    policy = rules(("x", "allow"))
    assert stack(("run", policy)).version_id == stack(("run", policy), ("w", Policy())).version_id
    assert stack(("run", policy)).version_id != stack(("workflow", policy)).version_id
    assert PolicyScopes().version_id == stack(("run", Policy())).version_id == "none"


def test_policy_error_is_a_config_error() -> None:
    error = PolicyError("bad", file="p.yaml", line=3, fix="do this")
    assert isinstance(error, ConfigError)
    assert isinstance(error, JamJetError)
    assert str(error) == "p.yaml:3: bad (fix: do this)"
    again = pickle.loads(pickle.dumps(error))
    assert (again.file, again.line, again.reason, again.fix) == ("p.yaml", 3, "bad", "do this")
    assert str(PolicyError("gone", file="p.yaml")) == "p.yaml: gone"


def test_hash_is_the_same_in_every_process() -> None:
    # Derived from the sha256 digest, not from hash(): a pickled policy keeps a valid hash.
    policy = rules(("*", "allow"))
    assert hash(policy) == 253821000730026067
    assert hash(pickle.loads(pickle.dumps(policy))) == hash(policy)


def test_an_allow_list_cannot_skip_an_approval_required_further_out() -> None:
    run = Policy(require_approval_for=("wire_*",))
    agent = Policy.allow_list(["wire_transfer"], source="@task(tools=...)")
    decision = decide_tool(
        PolicyScopes(scopes=(("run", run), ("agent:payer", agent))), "wire_transfer"
    )
    assert (decision.decision, decision.rule, decision.scope) == (
        "WAITING_FOR_APPROVAL",
        "wire_*",
        "run",
    )
