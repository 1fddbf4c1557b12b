"""Approvals config: the model's lookups, and every file error naming its line and fix."""

from __future__ import annotations

import pickle
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

from jamjet_temporal.approvals._identity import SigningIdentity
from jamjet_temporal.approvals._load import (
    ApprovalConfig,
    ApprovalConfigError,
    ApprovalRule,
    Approver,
    Threshold,
    load_approvals,
    parse_approvals,
)
from jamjet_temporal.errors import ConfigError

FILE = "config/approvals.yaml"
KEYS = {
    name: SigningIdentity.generate(name).public_key for name in ("alice", "bob", "carol", "cfo")
}

VALID = f"""\
version: 1
approvers:
  - id: alice
    public_key: "{KEYS["alice"]}"
    groups: [finance]
  - id: bob
    public_key: "{KEYS["bob"]}"
    groups: [finance, ops]
  - id: carol
    public_key: "{KEYS["carol"]}"
  - id: cfo
    public_key: "{KEYS["cfo"]}"
    groups: [executives]
rules:
  - action: "wire_*"
    approvers: ["group:finance", carol]
    required: 1
    thresholds:
      - {{field: amount, above: 10000, required: 2}}
      - {{field: amount, above: 1000000, required: 3}}
    timeout_seconds: 3600
    on_timeout: escalate
    escalate_to: ["group:executives"]
    escalation_timeout_seconds: 7200
    remind_every_seconds: 600
  - action: "deploy.??"
    approvers: [bob]
  - action: "*"
    approvers: ["group:ops"]
"""

# The approvers block of VALID, for error tests that only change the rules.
APPROVERS = VALID.split("rules:")[0]


def parse(text: str) -> ApprovalConfig:
    return parse_approvals(textwrap.dedent(text), FILE)


@dataclass(frozen=True)
class Found:
    """What an error says: its line, reason and fix."""

    line: int | None
    reason: str
    fix: str


def error(text: str) -> Found:
    with pytest.raises(ApprovalConfigError) as caught:
        parse(text)
    assert isinstance(caught.value, ConfigError)
    assert caught.value.file == FILE
    assert caught.value.fix
    return Found(caught.value.line, caught.value.reason, caught.value.fix)


def rules_error(rules: str) -> Found:
    """An error in ``rules`` (lines counted from the file's ``rules:`` line, which is 14)."""
    return error(APPROVERS + "rules:\n" + textwrap.dedent(rules))


# --------------------------------------------------------------------------------------------
# The model


def test_valid_config() -> None:
    config = parse_approvals(VALID, FILE)
    assert [approver.id for approver in config.approvers] == ["alice", "bob", "carol", "cfo"]
    wire = config.rules[0]
    assert wire == ApprovalRule(
        action="wire_*",
        approvers=("group:finance", "carol"),
        thresholds=(
            Threshold(field="amount", above=10000, required=2),
            Threshold(field="amount", above=1000000, required=3),
        ),
        timeout_seconds=3600,
        on_timeout="escalate",
        escalate_to=("group:executives",),
        escalation_timeout_seconds=7200,
        remind_every_seconds=600,
    )
    assert config.rules[1].timeout_seconds is None and config.rules[1].on_timeout == "reject"
    assert config.approver("bob") == Approver(
        id="bob", public_key=KEYS["bob"], groups=("finance", "ops")
    )
    assert config.approver("mallory") is None


def test_rule_for_first_match_with_policy_globs() -> None:
    config = parse_approvals(VALID, FILE)
    wire, deploy, catch_all = config.rules
    assert config.rule_for("wire_transfer") is wire
    assert config.rule_for("wire_.x.y") is wire  # `*` crosses dots
    assert config.rule_for("deploy.eu") is deploy
    assert config.rule_for("deploy.eu1") is catch_all  # `?` is exactly one character
    assert config.rule_for("Wire_Transfer") is wire  # case does not matter: no look-alike escape
    assert config.rule_for("") is catch_all
    only_wire = config.model_copy(update={"rules": (wire,)})
    assert only_wire.rule_for("payroll") is None  # no rule: fail closed
    assert only_wire.rule_for("xwire_transfer") is None  # anchored
    assert ApprovalConfig().rule_for("wire_transfer") is None


def test_eligible_expands_groups_and_escalation_widens() -> None:
    config = parse_approvals(VALID, FILE)
    wire, deploy, catch_all = config.rules
    assert config.eligible(wire, "primary") == {"alice", "bob", "carol"}
    assert config.eligible(wire, "escalated") == {"alice", "bob", "carol", "cfo"}
    assert config.eligible(deploy, "primary") == {"bob"}
    assert config.eligible(deploy, "escalated") == {"bob"}
    assert config.eligible(catch_all, "primary") == {"bob"}


def test_max_required() -> None:
    wire = parse_approvals(VALID, FILE).rules[0]
    assert wire.max_required == 3


def test_threshold_applies() -> None:
    threshold = Threshold(field="amount", above=10000)
    assert threshold.required == 2
    assert threshold.applies({"amount": 10000.5})
    assert not threshold.applies({"amount": 10000})
    assert threshold.applies({"to": "ACME"})  # no amount to compare: fail closed
    # Present but not a number: fail closed, the larger count applies.
    for odd in ("50000", None, True, [1], float("nan"), float("inf"), float("-inf")):
        assert threshold.applies({"amount": odd})


def test_json_round_trip() -> None:
    config = parse_approvals(VALID, FILE)
    copy = ApprovalConfig.model_validate_json(config.model_dump_json())
    assert copy == config and hash(copy) == hash(config)
    assert copy.rule_for("deploy.eu") == config.rules[1]
    assert copy.eligible(copy.rules[0], "escalated") == {"alice", "bob", "carol", "cfo"}
    assert ApprovalConfig.model_validate(config.model_dump(mode="json")) == config
    assert pickle.loads(pickle.dumps(config)).rule_for("wire_x") == config.rules[0]


def test_model_copy_revalidates() -> None:
    config = parse_approvals(VALID, FILE)
    assert config.model_copy() is config
    with pytest.raises(ValidationError, match="unknown approver 'carol'"):
        config.model_copy(update={"approvers": config.approvers[:2]})


def test_programmatic_construction_is_validated() -> None:
    alice = Approver(id="alice", public_key=KEYS["alice"])
    with pytest.raises(ValidationError, match="unknown approver 'bob'"):
        ApprovalConfig(approvers=(alice,), rules=(ApprovalRule(action="x", approvers=("bob",)),))
    with pytest.raises(ValidationError, match="no escalate_to"):
        ApprovalRule(action="x", approvers=("alice",), timeout_seconds=5, on_timeout="escalate")
    with pytest.raises(ValidationError, match="greater than or equal to 2"):
        Threshold(field="amount", above=1, required=1)
    with pytest.raises(ValidationError, match="not an Ed25519 public key"):
        Approver(id="x", public_key="ed25519:nope")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Approver(id="x", public_key=KEYS["alice"], role="admin")  # type: ignore[call-arg]


def test_error_pickles() -> None:
    error = ApprovalConfigError("bad", file="f.yaml", line=3, fix="do this")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, copy.file, copy.line, copy.fix) == ("bad", "f.yaml", 3, "do this")
    assert str(copy) == "f.yaml:3: bad (fix: do this)"


# --------------------------------------------------------------------------------------------
# Loading files


def test_load_file(tmp_path: Path) -> None:
    path = tmp_path / "approvals.yaml"
    path.write_text(VALID, encoding="utf-8")
    assert load_approvals(path) == parse_approvals(VALID, FILE)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ApprovalConfigError) as caught:
        load_approvals(tmp_path / "nope.yaml")
    assert caught.value.reason == "approvals config file not found"
    assert caught.value.file == str(tmp_path / "nope.yaml")


def test_load_directory_and_binary(tmp_path: Path) -> None:
    with pytest.raises(ApprovalConfigError, match="directory"):
        load_approvals(tmp_path)
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe")
    with pytest.raises(ApprovalConfigError, match="UTF-8"):
        load_approvals(tmp_path / "bin.yaml")


# --------------------------------------------------------------------------------------------
# File errors: reason, line and fix


def test_empty_file() -> None:
    found = error("")
    assert (found.line, found.reason) == (1, "the top level must be a mapping, but it is empty")


def test_top_level_list() -> None:
    assert "it is a list" in error("- a\n").reason


def test_invalid_yaml() -> None:
    found = error("rules:\n  - action: [a\n")
    assert found.reason.startswith("invalid YAML") and found.line is not None


def test_unquoted_star_glob() -> None:
    found = rules_error("- action: *_transfer\n  approvers: [alice]\n")
    assert found.line == 15 and "quote globs" in found.fix


def test_duplicate_key() -> None:
    found = rules_error("- action: a\n  approvers: [alice]\n  approvers: [bob]\n")
    assert found.line == 17 and "appears twice" in found.reason


def test_bad_version() -> None:
    found = error('version: "1"\n')
    assert (found.line, found.reason) == (1, "'version' is text, not a number")
    assert "unsupported" in error("version: 2\n").reason


def test_unknown_top_level_key() -> None:
    found = error(VALID + "approver_groups: {}\n")
    assert found.line == 30
    assert found.reason == "unknown key 'approver_groups' for an approvals config"
    assert "approvers" in found.fix


def test_unknown_key_in_rule_suggests_the_right_one() -> None:
    found = rules_error("- action: a\n  approvers: [alice]\n  requierd: 2\n")
    assert found.line == 17
    assert found.reason == "unknown key 'requierd' in rule 1"
    assert found.fix == "did you mean 'required'?"


def test_unknown_key_in_approver() -> None:
    found = error("approvers:\n  - id: a\n    public_key: x\n    group: [finance]\n")
    assert found.line == 4
    assert found.reason == "unknown key 'group' in approver 1"
    assert found.fix == "did you mean 'groups'?"


def test_bad_public_key() -> None:
    found = error('approvers:\n  - id: a\n    public_key: "ed25519:AAAA"\n')
    assert found.line == 3
    assert found.reason.startswith("approver 1 'public_key': not an Ed25519 public key")
    assert "keygen" in found.fix


def test_missing_public_key() -> None:
    found = error("approvers:\n  - id: a\n")
    assert found.line == 2
    assert found.reason == "approver 1 has no 'public_key'"


def test_duplicate_approver_id() -> None:
    text = (
        APPROVERS + f'  - id: bob\n    public_key: "{SigningIdentity.generate("x").public_key}"\n'
    )
    found = error(text + "rules:\n  - {action: a, approvers: [bob]}\n")
    assert found.line == 14
    assert found.reason == "approver 5 'id': approver 'bob' is defined twice (first as approver 2)"


def test_shared_public_key() -> None:
    text = APPROVERS + f'  - id: dave\n    public_key: "{KEYS["alice"]}"\n'
    found = error(text + "rules:\n  - {action: a, approvers: [dave]}\n")
    assert found.line == 15
    assert "same public key as approver 1" in found.reason
    assert "key of their own" in found.fix


def test_approver_id_with_group_prefix() -> None:
    found = error(f'approvers:\n  - id: "group:x"\n    public_key: "{KEYS["alice"]}"\n')
    assert found.line == 2 and "cannot start with 'group:'" in found.reason


def test_group_name_with_prefix() -> None:
    text = f'approvers:\n  - id: a\n    public_key: "{KEYS["alice"]}"\n    groups: ["group:x"]\n'
    found = error(text)
    assert found.line == 4 and "without 'group:'" in found.reason


def test_rule_names_an_unknown_approver() -> None:
    found = rules_error("- action: a\n  approvers:\n    - alice\n    - carrol\n")
    assert found.line == 18
    assert found.reason == "rule 1 'approvers' entry 2: unknown approver 'carrol'"
    assert found.fix.startswith("did you mean 'carol'?")


def test_rule_names_an_unknown_group() -> None:
    found = rules_error('- action: a\n  approvers: ["group:finanse"]\n')
    assert found.line == 16
    assert "no approver is in group 'finanse'" in found.reason
    assert found.fix.startswith("did you mean 'group:finance'?")


def test_rule_names_a_group_without_prefix() -> None:
    found = rules_error("- action: a\n  approvers: [finance]\n")
    assert found.line == 16
    assert "'finance' is a group, not an approver id" in found.reason
    assert found.fix == "write it as 'group:finance'"


def test_escalate_to_names_an_unknown_approver() -> None:
    found = rules_error(
        """\
        - action: a
          approvers: [alice]
          timeout_seconds: 60
          on_timeout: escalate
          escalate_to: [ceo]
        """
    )
    assert found.line == 19
    assert found.reason == "rule 1 'escalate_to' entry 1: unknown approver 'ceo'"


def test_escalate_without_escalate_to() -> None:
    found = rules_error(
        "- action: a\n  approvers: [alice]\n  timeout_seconds: 60\n  on_timeout: escalate\n"
    )
    assert found.line == 18
    assert "no escalate_to" in found.reason and "escalate_to:" in found.fix


def test_escalate_without_timeout() -> None:
    found = rules_error(
        "- action: a\n  approvers: [alice]\n  on_timeout: escalate\n  escalate_to: [cfo]\n"
    )
    assert found.line == 17
    assert "never escalate" in found.reason and "timeout_seconds" in found.fix


def test_escalate_to_without_escalate() -> None:
    found = rules_error("- action: a\n  approvers: [alice]\n  escalate_to: [cfo]\n")
    assert found.line == 17
    assert "on_timeout is 'reject'" in found.reason


def test_escalation_timeout_without_escalate() -> None:
    found = rules_error("- action: a\n  approvers: [alice]\n  escalation_timeout_seconds: 5\n")
    assert found.line == 17


def test_on_timeout_typo() -> None:
    found = rules_error("- action: a\n  approvers: [alice]\n  on_timeout: escalte\n")
    assert found.line == 17
    assert found.reason == "rule 1 'on_timeout' must be 'reject' or 'escalate', got 'escalte'"
    assert found.fix.startswith("did you mean 'escalate'?")


def test_threshold_requires_fewer_than_two() -> None:
    found = rules_error(
        """\
        - action: a
          approvers: [alice, bob]
          thresholds:
            - field: amount
              above: 100
              required: 1
        """
    )
    assert found.line == 20
    assert "greater than or equal to 2" in found.reason
    assert "value greater than or equal to 2" in found.fix


def test_threshold_below_the_rule() -> None:
    found = rules_error(
        """\
        - action: a
          approvers: [alice, bob, carol]
          required: 3
          thresholds: [{field: amount, above: 100, required: 2}]
        """
    )
    assert found.line == 18
    assert "fewer than the rule's required 3" in found.reason


def test_threshold_without_field() -> None:
    found = rules_error(
        "- action: a\n  approvers: [alice, bob]\n  thresholds:\n    - {above: 1, required: 2}\n"
    )
    assert found.line == 18
    assert "missing required key" in found.reason and "field" in found.reason


def test_required_more_than_the_approvers() -> None:
    found = rules_error("- action: a\n  approvers: [group:finance]\n  required: 3\n")
    assert found.line == 17
    assert "can require 3 distinct approvers but its approvers name only 2" in found.reason


def test_threshold_more_than_the_approvers() -> None:
    found = rules_error(
        """\
        - action: a
          approvers: [alice, bob]
          thresholds:
            - {field: amount, above: 10, required: 2}
            - {field: amount, above: 99, required: 3}
        """
    )
    assert found.line == 19
    assert "can require 3" in found.reason


def test_rule_without_approvers() -> None:
    found = rules_error("- action: a\n  approvers: []\n")
    assert found.line == 16 and "names no approvers" in found.reason
    missing = rules_error("- action: a\n")
    assert missing.reason == "rule 1 has no 'approvers'"


def test_rule_without_action() -> None:
    found = rules_error("- approvers: [alice]\n")
    assert found.line == 15 and found.reason == "rule 1 has no 'action'"


def test_rule_with_an_empty_glob() -> None:
    found = rules_error('- action: ""\n  approvers: [alice]\n')
    assert found.line == 15 and "empty glob" in found.reason


def test_approver_listed_twice() -> None:
    found = rules_error("- action: a\n  approvers:\n    - alice\n    - alice\n")
    assert found.line == 18 and "'alice' appears twice" in found.reason


def test_negative_timeout() -> None:
    found = rules_error("- action: a\n  approvers: [alice]\n  timeout_seconds: -5\n")
    assert found.line == 17
    assert "must be a finite number of seconds > 0" in found.reason


def test_key_without_a_value() -> None:
    found = rules_error("- action: a\n  approvers:\n")
    assert found.line == 16 and found.reason == "rule 1 'approvers' has no value"


def test_approvers_as_one_string() -> None:
    found = rules_error("- action: a\n  approvers: alice\n")
    assert found.line == 16
    assert "must be a list" in found.reason and "[alice]" in found.fix


def test_no_rules() -> None:
    found = error(APPROVERS)
    assert "no rules" in found.reason


def test_unreachable_rules() -> None:
    after_catch_all = rules_error(
        "- action: '*'\n  approvers: [alice]\n- action: wire\n  approvers: [bob]\n"
    )
    assert after_catch_all.line == 17 and "can never match" in after_catch_all.reason
    repeated = rules_error(
        "- action: wire\n  approvers: [alice]\n- action: wire\n  approvers: [bob]\n"
    )
    assert repeated.line == 17 and "repeats the glob 'wire'" in repeated.reason
