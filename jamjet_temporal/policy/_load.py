"""Reads and validates policy files; used at worker start, never in workflow code.

A policy file is JamJet's portable format, its workflow-level keys, or both::

    version: 1
    rules:                      # first match wins; a tool no rule matches is blocked
      - match: "*delete*"
        action: block
      - match: "wire_*"
        action: require_approval
      - match: "*"              # an MCP tool its server marks destructive
        when: destructive
        action: require_approval
      - match: "*"
        action: allow
    blocked_tools: ["shell.*"]  # or under a top-level `policy:` key
    require_approval_for: ["payments.*"]
    model_allowlist: ["gpt-4o*"]

Every problem is a :class:`PolicyError` naming the file, the line and the fix: a policy that
cannot be read never becomes "no policy".
"""

from __future__ import annotations

import os
from typing import Final

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from jamjet_temporal._shared._yaml import (
    YamlSourceError,
    did_you_mean,
    display_path,
    explain_error,
    load_mapping,
    locate,
    node_line,
    pick_error,
    read_file,
    short,
)
from jamjet_temporal.errors import PolicyError
from jamjet_temporal.policy._types import ACTIONS, CONDITIONS, Glob, Policy, Rule

__all__ = ["load_policy", "parse_policy"]

_CONFIG: Final = ConfigDict(frozen=True, extra="forbid")
_ACTION_LIST: Final = ", ".join(ACTIONS)
_SYNONYMS: Final = {"deny": "block", "reject": "block", "permit": "allow", "approve": "allow"}
_RULE_FIX: Final = (
    'write each rule as `- match: "<glob>"` with `action: <action>` under it '
    f"(actions: {_ACTION_LIST})"
)
_WHEN_FIX: Final = (
    f"conditions are {', '.join(CONDITIONS)} (the MCP tool annotations), each optionally "
    'preceded by `not`, e.g. `when: destructive` or `when: [open_world, "not read_only"]`'
)
_GLOB_FIX: Final = (
    "write a tool name, or a pattern where `*` is any characters and `?` one character, "
    "e.g. 'search' or 'fs.*'"
)


class _WorkflowKeys(BaseModel):
    """The keys a file may put under ``policy:``."""

    model_config = _CONFIG

    blocked_tools: list[Glob] = []
    require_approval_for: list[Glob] = []
    model_allowlist: list[Glob] | None = None


class _File(BaseModel):
    """The whole file, as written."""

    model_config = _CONFIG

    version: int = 1
    rules: list[Rule] = []
    blocked_tools: list[Glob] = []
    require_approval_for: list[Glob] = []
    model_allowlist: list[Glob] | None = None
    policy: _WorkflowKeys | None = None


def parse_policy(text: str, file: str = "<string>") -> Policy:
    """Parses and validates a policy from YAML text.

    Args:
        text: The YAML document.
        file: Where the text came from, used in messages and kept as ``source``.

    Returns:
        The validated policy.

    Raises:
        PolicyError: The first problem found, with file, line and fix.
    """
    try:
        root, data = load_mapping(
            text,
            what="policy files",
            start_fix="start the file with `version: 1` and a `rules:` list",
            alias_fix='quote globs that start with `*`, e.g. `match: "*delete*"`',
        )
    except YamlSourceError as exc:
        raise PolicyError(exc.reason, file=file, line=exc.line, fix=exc.fix) from None
    return _Validator(file, root).validate(data)


def policy_from_node(node: yaml.Node, data: object, file: str) -> Policy:
    """Validates a policy embedded in another YAML file (a pipeline's ``policy:`` section).

    Args:
        node: The composed YAML node of the section (for line numbers).
        data: Its loaded value.
        file: The enclosing file, for messages.

    Returns:
        The validated policy.

    Raises:
        PolicyError: The first problem found, with the line in the enclosing file.
    """
    if not isinstance(data, dict):
        raise PolicyError(
            f"a policy must be a mapping, but it is {short(data)}",
            file=file,
            line=node_line(node),
            fix="give it `rules:` and/or `blocked_tools:`, `require_approval_for:`, "
            "`model_allowlist:`",
        )
    return _Validator(file, node).validate(data)


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Reads, parses and validates a policy file.

    Args:
        path: The YAML file.

    Returns:
        The validated policy, with ``source`` set to ``path``.

    Raises:
        PolicyError: The file cannot be read, or the policy is invalid.
    """
    file, text = read_file(path, what="policy file", error=PolicyError)
    return parse_policy(text, file)


class _Validator:
    def __init__(self, file: str, root: yaml.Node) -> None:
        self.file = file
        self.root = root

    def _error(self, reason: str, path: tuple[str | int, ...], fix: str) -> PolicyError:
        line = locate(self.root, path)[0]
        return PolicyError(reason, file=self.file, line=line, fix=fix)

    def validate(self, data: dict[object, object]) -> Policy:
        self._check_values(data, ())
        nested = data.get("policy")
        if isinstance(nested, dict):
            self._check_values(nested, ("policy",))
        self._check_version(data)
        try:
            parsed = _File.model_validate(data)
        except ValidationError as exc:
            picked = pick_error(exc, self.root)
            reason, fix = _explain(picked.error, picked.path)
            raise PolicyError(reason, file=self.file, line=picked.line, fix=fix) from None
        parsed = self._merge(data, parsed)
        self._check_reachable(parsed.rules)
        policy = Policy(
            rules=tuple(parsed.rules),
            blocked_tools=tuple(parsed.blocked_tools),
            require_approval_for=tuple(parsed.require_approval_for),
            model_allowlist=None
            if parsed.model_allowlist is None
            else tuple(parsed.model_allowlist),
            source=self.file,
        )
        if policy.is_empty:
            raise PolicyError(
                "the policy sets nothing (no rules, blocked_tools, require_approval_for or "
                "model_allowlist)",
                file=self.file,
                line=node_line(self.root),
                fix='add rules, e.g. `rules: [{match: "*", action: allow}]` last, '
                "or do not load an empty policy",
            )
        return policy

    def _check_values(self, mapping: dict[object, object], prefix: tuple[str, ...]) -> None:
        # A key with no value would read as "not set" and could widen the policy silently.
        for key, value in mapping.items():
            if value is None and isinstance(key, str) and key in _File.model_fields:
                example = "1" if key == "version" else "a mapping" if key == "policy" else "a list"
                raise self._error(
                    f"'{display_path((*prefix, key))}' has no value",
                    (*prefix, key),
                    f"give it {example}, or remove the key",
                )

    def _check_version(self, data: dict[object, object]) -> None:
        if "version" not in data:
            return
        version = data["version"]
        if version == 1 and isinstance(version, int) and not isinstance(version, bool):
            return
        if isinstance(version, str) and version.strip() == "1":
            reason, fix = "'version' is text, not a number", "write `version: 1` without quotes"
        else:
            reason = f"unsupported policy version {short(version)}"
            fix = "this release reads `version: 1`"
        raise self._error(reason, ("version",), fix)

    def _merge(self, data: dict[object, object], parsed: _File) -> _File:
        """Moves the keys set under ``policy:`` to the top level."""
        nested = parsed.policy
        if nested is None:
            return parsed
        for key in nested.model_fields_set:
            if key in data:
                first = locate(self.root, (key,))[0]
                raise self._error(
                    f"'{key}' is set both at the top level (line {first}) and under 'policy:'",
                    ("policy", key),
                    "keep one of them",
                )
        return parsed.model_copy(update={**nested.model_dump(exclude_unset=True), "policy": None})

    def _check_reachable(self, rules: list[Rule]) -> None:
        first_of: dict[tuple[str, tuple[str, ...] | None], int] = {}
        catch_all: int | None = None
        for index, rule in enumerate(rules):
            path = ("rules", index, "match")
            if catch_all is not None:
                raise self._error(
                    f"rule {index + 1} ('{rule.match}') can never match: rule {catch_all + 1} "
                    f"('{rules[catch_all].match}') before it matches every tool",
                    path,
                    "move the catch-all rule last (first match wins), or remove this rule",
                )
            key = (rule.match, rule.when)
            if key in first_of:
                same = f" and conditions ({', '.join(rule.when)})" if rule.when else ""
                raise self._error(
                    f"rule {index + 1} repeats the glob '{rule.match}'{same} of rule "
                    f"{first_of[key] + 1}, so it can never match",
                    path,
                    "remove one of them (first match wins)",
                )
            first_of[key] = index
            # A rule with conditions may not match what its glob does: it hides no later rule.
            if set(rule.match) == {"*"} and rule.when is None:
                catch_all = index


def _name(path: tuple[str | int, ...]) -> str:
    """The element at ``path`` counted from 1, e.g. ``rule 2 'match'``."""
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        rest = display_path(path[2:])
        return f"rule {path[1] + 1}" + (f" '{rest}'" if rest else "")
    if path and isinstance(path[-1], int):
        return f"'{display_path(path[:-1])}' entry {path[-1] + 1}"
    return f"'{display_path(path)}'"


def _explain(error: ErrorDetails, path: tuple[str | int, ...]) -> tuple[str, str]:
    """Turns one pydantic error into a reason and a fix, in policy terms."""
    kind = error["type"]
    value = error.get("input")
    given = short(value)
    name = _name(path)
    last = path[-1] if path else ""
    in_rule = len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int)
    if kind.startswith("when_"):
        return f"{name}: {error['msg']}", _WHEN_FIX
    if kind.startswith("glob_"):
        fix = "remove the spaces around the glob" if kind == "glob_whitespace" else _GLOB_FIX
        return f"{name}: {error['msg']}, got {given}", fix
    if kind == "string_type":
        if value is None:
            return f"{name} has no value", _GLOB_FIX
        return (
            f"{name} must be text, got {given}",
            "quote it: YAML reads it as a number or a boolean",
        )
    if kind == "extra_forbidden":
        if path == ("source",):
            return "unknown key 'source'", "remove it: the loader sets `source` to the file's path"
        if path[:1] == ("policy",) and last in ("rules", "version"):
            return (
                f"'{last}' cannot be under 'policy:'",
                f"move `{last}:` to the top level; `policy:` holds only "
                f"{', '.join(_WorkflowKeys.model_fields)}",
            )
        if in_rule and len(path) == 3:
            close = did_you_mean(str(last), list(Rule.model_fields))
            fix = (
                f"did you mean '{close}'?"
                if close
                else "remove it: a rule has only match, action and when"
            )
            return f"unknown key '{last}' in {_name(path[:2])}", fix
    if path == ("rules",) and kind == "list_type":
        return f"'rules' must be a list of rules, got {given}", _RULE_FIX
    if in_rule and len(path) == 2 and kind == "model_type":
        return f"{name} must be a mapping with 'match' and 'action', got {given}", _RULE_FIX
    if in_rule and kind == "missing":
        example = "<glob>" if last == "match" else _ACTION_LIST.replace(", ", "|")
        return f"{_name(path[:2])} has no '{last}'", f"add `{last}: {example}` to it"
    if in_rule and path[2:] == ("action",) and kind == "literal_error":
        close = None
        if isinstance(value, str):
            close = _SYNONYMS.get(value.lower()) or did_you_mean(value.lower(), ACTIONS)
        hint = f"did you mean '{close}'? " if close else ""
        return f"{_name(path[:2])} has an unknown action {given}", (
            f"{hint}the actions are: {_ACTION_LIST}"
        )
    if path == ("policy",) and kind == "model_type":
        keys = ", ".join(_WorkflowKeys.model_fields)
        return f"'policy' must be a mapping, got {given}", f"indent its keys ({keys}) under it"
    if kind == "list_type" and (len(path) == 1 or (path[:1] == ("policy",) and len(path) == 2)):
        example = f"`{last}: [{given}]`" if isinstance(value, str) else "`[...]`"
        return (
            f"{name} must be a list of globs, got {given}",
            f"write it as a list, {example}, or as one `- glob` line per entry",
        )
    return explain_error(error, path, _File, "a policy file")
