"""Properties: decide_tool equals an obviously-correct reference on random policies and names."""

from __future__ import annotations

from functools import cache

from hypothesis import given
from hypothesis import strategies as st

from jamjet_temporal._shared._wire import fold_name
from jamjet_temporal.policy import Policy, PolicyScopes, Rule, decide_model, decide_tool

GLOB_ALPHABET = "ab.*?["
NAME_ALPHABET = "abAB.[*?"
ACTIONS = ("allow", "block", "require_approval", "audit")
VERDICTS = {
    "allow": "ALLOWED",
    "block": "BLOCKED",
    "require_approval": "WAITING_FOR_APPROVAL",
    "audit": "AUDIT",
}


def glob_matches(glob: str, name: str) -> bool:
    """Naive recursive glob: `*` any run of characters, `?` one character, the rest literal;
    compared case-insensitively (both sides NFKC + casefold)."""
    glob, name = fold_name(glob), fold_name(name)

    @cache
    def match(g: int, n: int) -> bool:
        if g == len(glob):
            return n == len(name)
        if glob[g] == "*":
            return match(g + 1, n) or (n < len(name) and match(g, n + 1))
        if n == len(name):
            return False
        return (glob[g] == "?" or glob[g] == name[n]) and match(g + 1, n + 1)

    return match(0, 0)


SEVERITY = {"ALLOWED": 0, "AUDIT": 1, "WAITING_FOR_APPROVAL": 2, "BLOCKED": 3}


def scope_says(policy: Policy, tool: str) -> tuple[str, str | None] | None:
    """What one scope says on its own, the slow and simple way."""
    for glob in policy.blocked_tools:
        if glob_matches(glob, tool):
            return "BLOCKED", glob
    for glob in policy.require_approval_for:
        if glob_matches(glob, tool):
            return "WAITING_FOR_APPROVAL", glob
    for rule in policy.rules:
        if glob_matches(rule.match, tool):
            return VERDICTS[rule.action], rule.match
    if policy.rules or policy.closed:
        return "BLOCKED", None
    return None


def reference(scopes: list[tuple[str, Policy]], tool: str) -> tuple[str, str | None, str]:
    """The most restrictive scope wins; refusals name the outermost, permissions the innermost."""
    answers = [(name, said) for name, policy in scopes if (said := scope_says(policy, tool))]
    if not answers:
        return "ALLOWED", None, "default"
    worst = max(SEVERITY[said[0]] for _, said in answers)
    tied = [(name, said) for name, said in answers if SEVERITY[said[0]] == worst]
    name, (verdict, glob) = tied[0] if worst >= 2 else tied[-1]
    return verdict, glob, name


globs = st.text(GLOB_ALPHABET, min_size=1, max_size=6)
names = st.text(NAME_ALPHABET, max_size=8)
rule_lists = st.lists(st.builds(Rule, match=globs, action=st.sampled_from(ACTIONS)), max_size=8)
policies = st.builds(
    Policy,
    rules=rule_lists.map(tuple),
    blocked_tools=st.lists(globs, max_size=2).map(tuple),
    require_approval_for=st.lists(globs, max_size=2).map(tuple),
    closed=st.booleans(),
)
stacks = st.lists(policies, max_size=4).map(
    lambda found: [(f"scope{index}", policy) for index, policy in enumerate(found)]
)


@given(glob=st.text("ab.*?[]()+^$\\|{}", min_size=1, max_size=10), name=names)
def test_glob_matches_like_the_reference(glob: str, name: str) -> None:
    policy = Policy(rules=(Rule(match=glob, action="allow"),))
    decision = decide_tool(PolicyScopes(scopes=(("s", policy),)), name)
    assert (decision.decision == "ALLOWED") == glob_matches(glob, name)


@given(glob=st.text("ab*?", min_size=1, max_size=12), name=st.text("ab", max_size=14))
def test_star_heavy_globs_match_like_the_reference(glob: str, name: str) -> None:
    # Many stars and few letters: where committing to the earliest piece could go wrong.
    policy = Policy(rules=(Rule(match=glob, action="allow"),))
    decision = decide_tool(PolicyScopes(scopes=(("s", policy),)), name)
    assert (decision.decision == "ALLOWED") == glob_matches(glob, name)


@given(rules=rule_lists, tool=names)
def test_one_rule_list_first_match_wins_else_deny(rules: list[Rule], tool: str) -> None:
    policy = Policy(rules=tuple(rules))
    scopes = PolicyScopes(scopes=(("workflow", policy),))
    decision = decide_tool(scopes, tool)
    expected = reference([("workflow", policy)], tool)
    assert (decision.decision, decision.rule, decision.scope) == expected
    if rules and decision.rule is None:
        assert decision.reason == "no rule allows it (default deny)"


@given(stack=stacks, tool=names)
def test_scope_stacks_match_the_reference(stack: list[tuple[str, Policy]], tool: str) -> None:
    scopes = PolicyScopes(scopes=tuple(stack))
    decision = decide_tool(scopes, tool)
    assert (decision.decision, decision.rule, decision.scope) == reference(stack, tool)
    by_name = dict(stack)
    if decision.scope == "default":
        assert decision.policy_version == scopes.version_id
    else:
        assert decision.policy_version == by_name[decision.scope].version_id
    if decision.rule is None:
        assert decision.rule_kind is None
    else:
        kinds = {"BLOCKED": "block", "ALLOWED": "allow", "AUDIT": "audit"}
        assert decision.rule_kind == kinds.get(decision.decision, "require_approval")


@given(stack=stacks, tool=names)
def test_never_allowed_by_default_once_rules_exist(
    stack: list[tuple[str, Policy]], tool: str
) -> None:
    decision = decide_tool(PolicyScopes(scopes=tuple(stack)), tool)
    if decision.allowed and any(policy.rules or policy.closed for _, policy in stack):
        assert decision.rule is not None


@given(stack=stacks, tool=names)
def test_a_blocked_tool_stays_blocked_whatever_is_added(
    stack: list[tuple[str, Policy]], tool: str
) -> None:
    scopes = PolicyScopes(scopes=(("run", Policy(blocked_tools=(tool or "*",))),))
    for name, policy in stack:
        scopes = scopes.with_scope(name, policy)
    assert decide_tool(scopes, tool).decision == "BLOCKED"
    assert decide_tool(scopes, tool).scope == "run"


@given(policy=policies, tool=names)
def test_json_round_trip_keeps_identity_and_decisions(policy: Policy, tool: str) -> None:
    again = Policy.model_validate(policy.model_dump(mode="json"))
    assert again == policy
    assert again.version_id == policy.version_id
    scopes = PolicyScopes(scopes=(("s", policy),))
    assert decide_tool(PolicyScopes(scopes=(("s", again),)), tool) == decide_tool(scopes, tool)


@given(allowlists=st.lists(st.none() | st.lists(globs, max_size=3), max_size=4), model=names)
def test_model_allowlist_needs_every_scope_that_sets_one(
    allowlists: list[list[str] | None], model: str
) -> None:
    stack = [
        (f"s{index}", Policy(model_allowlist=None if found is None else tuple(found)))
        for index, found in enumerate(allowlists)
    ]
    decision = decide_model(PolicyScopes(scopes=tuple(stack)), model)
    deciding = [(name, p) for name, p in stack if p.model_allowlist is not None]
    if not deciding:
        assert (decision.decision, decision.scope) == ("ALLOWED", "default")
        return
    refusing = [
        name
        for name, p in deciding
        if not any(glob_matches(glob, model) for glob in p.model_allowlist or ())
    ]
    if refusing:
        assert (decision.decision, decision.scope, decision.rule) == ("BLOCKED", refusing[0], None)
        return
    name, policy = deciding[-1]
    matching = [glob for glob in policy.model_allowlist or () if glob_matches(glob, model)]
    assert (decision.decision, decision.scope, decision.rule) == ("ALLOWED", name, matching[0])


@given(operator=policies, added=stacks, tool=names)
def test_added_scopes_only_narrow_the_operator(
    operator: Policy, added: list[tuple[str, Policy]], tool: str
) -> None:
    # Whatever a pipeline or workflow brings, a tool the operator's policy refuses stays
    # refused, and nothing becomes less restricted than the operator alone says.
    alone = decide_tool(PolicyScopes(scopes=(("run", operator),)), tool)
    stacked = decide_tool(PolicyScopes(scopes=(("run", operator), *added)), tool)
    assert SEVERITY[stacked.decision] >= SEVERITY[alone.decision]
