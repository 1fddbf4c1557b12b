"""Who may approve what: approvers, their keys and groups, and the rules per action.

The models are workflow-side (pure: pydantic and the standard library, no I/O, no clock, no
module state) and travel in Temporal payloads as JSON. :func:`load_approvals` and
:func:`parse_approvals` read the YAML file at worker start and fail with an
:class:`ApprovalConfigError` naming the file, the line and the fix::

    version: 1
    approvers:
      - id: alice@example.com
        public_key: "ed25519:..."        # from `jamjet approvals keygen`
        groups: [finance]
      - id: cfo@example.com
        public_key: "ed25519:..."
    clients:                             # who may start runs on whose behalf (the run's user)
      - id: portal
        public_key: "ed25519:..."
        acts_for: ["*@example.com"]
    rules:                               # first match wins; no match: refused (fail closed)
      - action: "wire_*"
        approvers: ["group:finance"]
        required: 1
        thresholds:
          - {field: amount, above: 10000, required: 2}
        timeout_seconds: 3600
        on_timeout: escalate
        escalate_to: [cfo@example.com]
        escalation_timeout_seconds: 7200

Action globs work as in policies: ``*`` any characters (dots included), ``?`` one character,
anchored, ignoring case and Unicode compatibility forms.

A run's user (the requester, whom four-eyes keeps from approving) is only ever a proven one: a
client listed here signed it (:class:`~jamjet_temporal.approvals._identity.RunUser`), for users
its ``acts_for`` globs cover, or an approver signed it for themselves.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Final, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from jamjet_temporal._shared._models import CompiledModel
from jamjet_temporal._shared._principal import principal_key
from jamjet_temporal._shared._yaml import (
    YamlSourceError,
    did_you_mean,
    display_path,
    explain_error,
    load_mapping,
    locate,
    pick_error,
    read_file,
    short,
)
from jamjet_temporal.approvals._identity import parse_public_key
from jamjet_temporal.errors import ApprovalConfigError
from jamjet_temporal.policy._types import fold_name, glob_to_regex

__all__ = [
    "ApprovalConfig",
    "ApprovalConfigError",
    "ApprovalRule",
    "Approver",
    "Stage",
    "Threshold",
    "TrustedClient",
    "load_approvals",
    "parse_approvals",
]

Stage = Literal["primary", "escalated"]
"""Who is asked: the rule's approvers, or (after a timeout with ``on_timeout: escalate``) also
its ``escalate_to``."""

GROUP_PREFIX: Final = "group:"
_CONFIG: Final = ConfigDict(frozen=True, extra="forbid")
_PROBLEM: Final = "approval_config"
_KEY_FIX: Final = (
    'write the public key printed by `jamjet approvals keygen`: "ed25519:" followed by 43 '
    "base64url characters"
)
_LISTS: Final = ("acts_for", "approvers", "clients", "escalate_to", "groups", "rules", "thresholds")
_GLOB_FIX: Final = (
    "write an action name, or a pattern where `*` is any characters and `?` one character, "
    "e.g. 'wire_transfer' or 'wire_*'"
)


@dataclass(frozen=True)
class _Problem:
    """A semantic problem: where (path relative to the validated model), what, and the fix."""

    path: tuple[str | int, ...]
    reason: str
    fix: str

    def error(self) -> PydanticCustomError:
        # The message goes in the context, not the template: user text may contain braces.
        return PydanticCustomError(
            _PROBLEM,
            "{reason} (fix: {fix})",
            {"reason": self.reason, "fix": self.fix, "path": self.path},
        )


def _check_name(value: str, what: str) -> str:
    if not value:
        raise PydanticCustomError("name_empty", "{what} must not be empty", {"what": what})
    if value != value.strip():
        raise PydanticCustomError(
            "name_whitespace",
            "{what} starts or ends with whitespace",
            {"what": what},
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise PydanticCustomError(
            "name_control", "{what} contains a control character", {"what": what}
        )
    return value


def _check_glob(glob: str) -> str:
    if not glob:
        raise PydanticCustomError("glob_empty", "an empty glob matches no action")
    if glob != glob.strip():
        raise PydanticCustomError(
            "glob_whitespace", "the glob starts or ends with whitespace, so it matches no action"
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in glob):
        raise PydanticCustomError("glob_control", "the glob contains a control character")
    return glob


def _check_key(value: str) -> str:
    if parse_public_key(value) is None:
        raise PydanticCustomError(
            "public_key",
            'not an Ed25519 public key ("ed25519:" and the base64url of 32 bytes)',
        )
    return value


def _check_positive(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise PydanticCustomError("positive_seconds", "must be a finite number of seconds > 0")
    return value


def _check_field_name(value: str) -> str:
    return _check_name(value, "a field name")


ActionGlob = Annotated[str, AfterValidator(_check_glob)]
Seconds = Annotated[float | None, AfterValidator(_check_positive)]


class Approver(BaseModel):
    """A person who may approve, with the public key their decisions are verified against.

    Attributes:
        id: The approver's id, e.g. an e-mail address; decisions name it in ``approver``.
        public_key: ``"ed25519:<base64url>"``, printed by ``jamjet approvals keygen``.
        groups: Group names (without ``group:``) that rules can name as ``"group:<name>"``.
    """

    model_config = _CONFIG

    id: str
    public_key: Annotated[str, AfterValidator(_check_key)]
    groups: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _id_is_a_name(cls, value: str) -> str:
        _check_name(value, "an approver id")
        if value.startswith(GROUP_PREFIX):
            raise PydanticCustomError(
                "approver_group_prefix",
                "an approver id cannot start with 'group:' (rules use that prefix for groups)",
            )
        return value

    @field_validator("groups")
    @classmethod
    def _groups_are_names(cls, groups: tuple[str, ...]) -> tuple[str, ...]:
        for group in groups:
            _check_name(group, "a group name")
            if group.startswith(GROUP_PREFIX):
                raise PydanticCustomError(
                    "group_prefix",
                    "write the group name without 'group:' here, got {group!r}",
                    {"group": group},
                )
        return groups


class TrustedClient(BaseModel):
    """A client trusted to start runs on users' behalf (a portal, a service, a CI job).

    Attributes:
        id: The client's id, named in the runs it starts (``RunUser.signer``).
        public_key: ``"ed25519:<base64url>"``, printed by ``jamjet approvals keygen``.
        acts_for: Globs over the user ids it may act for (``"*@example.com"``); matched like
            action globs, ignoring case.
    """

    model_config = _CONFIG

    id: str
    public_key: Annotated[str, AfterValidator(_check_key)]
    acts_for: tuple[ActionGlob, ...]

    @field_validator("id")
    @classmethod
    def _id_is_a_name(cls, value: str) -> str:
        return _check_name(value, "a client id")

    @field_validator("acts_for")
    @classmethod
    def _acts_for_someone(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise PydanticCustomError(
                "acts_for_empty", "acts_for names nobody, so the client could start no run"
            )
        return value

    def may_act_for(self, user: str) -> bool:
        """Whether one of ``acts_for`` matches ``user`` (after :func:`fold_name`)."""
        folded = fold_name(user)
        return any(
            re.fullmatch(glob_to_regex(fold_name(glob)), folded, re.DOTALL)
            for glob in self.acts_for
        )


class Threshold(BaseModel):
    """More approvers when an argument is large: ``args[field] > above`` needs ``required``.

    An argument that is present but not a finite number (text, a boolean, null, NaN) counts as
    above the limit: a malformed amount must not need fewer approvers. A missing argument
    counts as above it too (fail closed): a request whose arguments do not name the field (a
    tool call approved through the policy gate, say) gets the threshold's approvers.

    Attributes:
        field: The argument's name, e.g. ``"amount"``.
        above: The limit (exclusive).
        required: Distinct approvers needed above it (at least 2).
    """

    model_config = _CONFIG

    field: Annotated[str, AfterValidator(_check_field_name)]
    above: float = Field(allow_inf_nan=False)
    required: int = Field(default=2, ge=2)

    def applies(self, args: Mapping[str, object]) -> bool:
        """Whether ``args`` is above this threshold.

        Args:
            args: The request's arguments.

        Returns:
            True when the argument is missing, above the limit, or not a finite number.
        """
        if self.field not in args:
            return True
        value = args[self.field]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return True
        return not math.isfinite(value) or value > self.above


class ApprovalRule(BaseModel):
    """Who approves the actions matching ``action``, how many of them, and until when.

    Attributes:
        action: Glob over action names (``*`` any characters, ``?`` one, anchored).
        approvers: Approver ids and/or ``"group:<name>"``.
        required: Distinct approvers needed (at least 1).
        thresholds: More approvers for large arguments; the highest ``required`` that applies
            wins (never fewer than ``required``).
        timeout_seconds: How long to wait; ``None`` waits forever.
        on_timeout: ``reject`` when the wait is over, or ``escalate`` to ``escalate_to``.
        escalate_to: Approver ids / groups added at the escalated stage (required when
            ``on_timeout`` is ``escalate``).
        escalation_timeout_seconds: How long the escalated stage waits (then: rejected);
            ``None`` waits forever.
        remind_every_seconds: How often to remind the approvers while waiting; ``None`` never.
    """

    model_config = _CONFIG

    action: ActionGlob
    approvers: tuple[str, ...]
    required: int = Field(default=1, ge=1)
    thresholds: tuple[Threshold, ...] = ()
    timeout_seconds: Seconds = None
    on_timeout: Literal["reject", "escalate"] = "reject"
    escalate_to: tuple[str, ...] = ()
    escalation_timeout_seconds: Seconds = None
    remind_every_seconds: Seconds = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for problem in _rule_problems(self):
            raise problem.error()
        return self

    @property
    def max_required(self) -> int:
        """The most approvers this rule can ever require (over all thresholds)."""
        return max((self.required, *(threshold.required for threshold in self.thresholds)))


def _rule_problems(rule: ApprovalRule) -> Iterator[_Problem]:
    if not rule.approvers:
        yield _Problem(
            ("approvers",),
            "the rule names no approvers, so nobody could approve",
            "list approver ids and/or `group:<name>` entries",
        )
    if rule.on_timeout == "escalate":
        if not rule.escalate_to:
            yield _Problem(
                ("on_timeout",),
                "on_timeout is 'escalate' but the rule has no escalate_to",
                "add `escalate_to: [<approver id or group:name>]`, or use `on_timeout: reject`",
            )
        if rule.timeout_seconds is None:
            yield _Problem(
                ("on_timeout",),
                "on_timeout is 'escalate' but timeout_seconds is not set, so the request would "
                "wait forever and never escalate",
                "add `timeout_seconds: <seconds>`",
            )
    else:
        if rule.escalate_to:
            yield _Problem(
                ("escalate_to",),
                "escalate_to is set but on_timeout is 'reject', so nobody would be asked",
                "add `on_timeout: escalate` (and timeout_seconds), or remove escalate_to",
            )
        if rule.escalation_timeout_seconds is not None:
            yield _Problem(
                ("escalation_timeout_seconds",),
                "escalation_timeout_seconds is set but on_timeout is 'reject'",
                "add `on_timeout: escalate`, or remove escalation_timeout_seconds",
            )
    fields: dict[str, int] = {}
    for index, threshold in enumerate(rule.thresholds):
        if threshold.required < rule.required:
            yield _Problem(
                ("thresholds", index, "required"),
                f"the threshold requires {threshold.required} approvers, fewer than the rule's "
                f"required {rule.required}; a threshold can only add approvers",
                f"give it `required:` {rule.required + 1} or more, or remove it",
            )
        key = f"{threshold.field}\0{threshold.above!r}"
        if key in fields:
            yield _Problem(
                ("thresholds", index),
                f"threshold {index + 1} repeats threshold {fields[key] + 1} "
                f"({threshold.field} above {threshold.above:g})",
                "keep one of them",
            )
        fields.setdefault(key, index)
    for entries, name in ((rule.approvers, "approvers"), (rule.escalate_to, "escalate_to")):
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries):
            if entry in seen:
                yield _Problem(
                    (name, index),
                    f"'{entry}' appears twice in {name}",
                    "remove one of them",
                )
            seen.setdefault(entry, index)


@dataclass(frozen=True, slots=True)
class _Index:
    """Lookups derived from a config's fields, computed once per instance."""

    pattern: re.Pattern[str] | None
    approvers: Mapping[str, Approver]
    groups: Mapping[str, frozenset[str]]


class ApprovalConfig(CompiledModel):
    """Approvers and approval rules; the rule for an action is the first whose glob matches.

    An action no rule matches cannot be approved by anyone (fail closed).

    Attributes:
        approvers: Everyone who may approve anything, with their public keys.
        rules: Ordered rules; first match wins.
        clients: Who may start runs on users' behalf (the run's proven user).
    """

    model_config = _CONFIG

    approvers: tuple[Approver, ...] = ()
    rules: tuple[ApprovalRule, ...] = ()
    clients: tuple[TrustedClient, ...] = ()

    _index: _Index = PrivateAttr()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for problem in _config_problems(self):
            raise problem.error()
        return self

    def model_post_init(self, context: object, /) -> None:
        groups: dict[str, set[str]] = {}
        for approver in self.approvers:
            for group in approver.groups:
                groups.setdefault(group, set()).add(approver.id)
        pattern = None
        if self.rules:
            source = "|".join(f"({glob_to_regex(fold_name(rule.action))})" for rule in self.rules)
            pattern = re.compile(source, re.DOTALL)
        self._index = _Index(
            pattern=pattern,
            approvers={approver.id: approver for approver in self.approvers},
            groups={name: frozenset(members) for name, members in groups.items()},
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApprovalConfig):
            return NotImplemented
        return (self.approvers, self.rules, self.clients) == (
            other.approvers,
            other.rules,
            other.clients,
        )

    def __hash__(self) -> int:
        return hash((self.approvers, self.rules, self.clients))

    def client(self, client_id: str) -> TrustedClient | None:
        """The trusted client with this id, or ``None``."""
        return next((client for client in self.clients if client.id == client_id), None)

    def rule_for(self, action: str) -> ApprovalRule | None:
        """The first rule whose glob matches all of ``action``.

        Args:
            action: The action's name.

        Returns:
            The rule, or ``None``: then nobody can approve the action.
        """
        pattern = self._index.pattern
        found = pattern.fullmatch(fold_name(action)) if pattern is not None else None
        if found is None or found.lastindex is None:
            return None
        return self.rules[found.lastindex - 1]

    def approver(self, approver_id: str) -> Approver | None:
        """The registered approver with this id, or ``None``."""
        return self._index.approvers.get(approver_id)

    def members(self, entries: Sequence[str]) -> frozenset[str]:
        """Approver ids named by ``entries`` (ids and ``"group:<name>"``), groups expanded."""
        found: set[str] = set()
        for entry in entries:
            if entry.startswith(GROUP_PREFIX):
                found |= self._index.groups.get(entry.removeprefix(GROUP_PREFIX), frozenset())
            elif entry in self._index.approvers:
                found.add(entry)
        return frozenset(found)

    def eligible(self, rule: ApprovalRule, stage: Stage) -> frozenset[str]:
        """The approver ids who may decide a request under ``rule`` at ``stage``.

        Escalation widens the circle: at the ``escalated`` stage the rule's own approvers may
        still decide, and so may everyone in ``escalate_to``.

        Args:
            rule: One of this config's rules.
            stage: ``primary`` or ``escalated``.

        Returns:
            The approver ids, groups expanded.
        """
        if stage == "escalated":
            return self.members((*rule.approvers, *rule.escalate_to))
        return self.members(rule.approvers)


def _config_problems(config: ApprovalConfig) -> Iterator[_Problem]:
    ids: dict[str, int] = {}
    keys: dict[str, int] = {}
    members: dict[str, set[str]] = {}
    look_alikes: dict[str, int] = {}
    for index, approver in enumerate(config.approvers):
        if approver.id in ids:
            yield _Problem(
                ("approvers", index, "id"),
                f"approver '{approver.id}' is defined twice (first as approver "
                f"{ids[approver.id] + 1})",
                "remove one of them, or merge their groups",
            )
        elif principal_key(approver.id) in look_alikes:
            first = look_alikes[principal_key(approver.id)]
            yield _Problem(
                ("approvers", index, "id"),
                f"approver '{approver.id}' reads the same as approver {first + 1} "
                f"('{config.approvers[first].id}'): ids are compared ignoring case, spaces and "
                "look-alike characters",
                "use one id per person",
            )
        look_alikes.setdefault(principal_key(approver.id), index)
        if approver.public_key in keys:
            yield _Problem(
                ("approvers", index, "public_key"),
                f"approver '{approver.id}' has the same public key as approver "
                f"{keys[approver.public_key] + 1}: one key holder could approve as two people",
                "give every approver a key of their own (`jamjet approvals keygen`)",
            )
        ids.setdefault(approver.id, index)
        keys.setdefault(approver.public_key, index)
        for group in approver.groups:
            members.setdefault(group, set()).add(approver.id)
    client_ids: dict[str, int] = {}
    for index, client in enumerate(config.clients):
        if client.id in client_ids or client.id in ids:
            yield _Problem(
                ("clients", index, "id"),
                f"client '{client.id}' is defined twice (or is also an approver's id)",
                "give every client and approver an id of its own",
            )
        if client.public_key in keys:
            yield _Problem(
                ("clients", index, "public_key"),
                f"client '{client.id}' has the same public key as another client or approver",
                "give every client a key of its own (`jamjet approvals keygen <client id>`)",
            )
        client_ids.setdefault(client.id, index)
        keys.setdefault(client.public_key, -1)
    for index, rule in enumerate(config.rules):
        resolved = True
        for name in ("approvers", "escalate_to"):
            entries: tuple[str, ...] = getattr(rule, name)
            for position, entry in enumerate(entries):
                problem = _unknown_entry(entry, ids, members)
                if problem is not None:
                    resolved = False
                    yield _Problem(("rules", index, name, position), *problem)
        if resolved:
            yield from _enough_approvers(rule, index, members)


def _unknown_entry(
    entry: str, ids: Mapping[str, int], groups: Mapping[str, set[str]]
) -> tuple[str, str] | None:
    if entry.startswith(GROUP_PREFIX):
        group = entry.removeprefix(GROUP_PREFIX)
        if group in groups:
            return None
        close = did_you_mean(group, sorted(groups))
        hint = f"did you mean 'group:{close}'? " if close else ""
        return (
            f"no approver is in group '{group}'",
            f"{hint}add `groups: [{group}]` to the approvers who belong to it",
        )
    if entry in ids:
        return None
    if entry in groups:
        return (
            f"'{entry}' is a group, not an approver id",
            f"write it as 'group:{entry}'",
        )
    close = did_you_mean(entry, list(ids))
    hint = f"did you mean '{close}'? " if close else ""
    return (
        f"unknown approver '{entry}'",
        f"{hint}add it under `approvers:` with its public key, or write 'group:<name>' for a group",
    )


def _enough_approvers(
    rule: ApprovalRule, index: int, members: Mapping[str, set[str]]
) -> Iterator[_Problem]:
    # The escalated stage only adds approvers, so the primary stage is the one to check.
    named: set[str] = set()
    for entry in rule.approvers:
        if entry.startswith(GROUP_PREFIX):
            named |= members[entry.removeprefix(GROUP_PREFIX)]
        else:
            named.add(entry)
    needed = rule.max_required
    if needed <= len(named):
        return
    path: tuple[str | int, ...] = ("rules", index, "required")
    if rule.required <= len(named):
        worst = max(range(len(rule.thresholds)), key=lambda i: rule.thresholds[i].required)
        path = ("rules", index, "thresholds", worst, "required")
    yield _Problem(
        path,
        f"the rule can require {needed} distinct approvers but its approvers name only "
        f"{len(named)}, so such a request could never be approved",
        f"add approvers to the rule, or lower `required` to {len(named)} or less",
    )


# --------------------------------------------------------------------------------------------
# Loading (worker start, client side; never in workflow code)


class _File(BaseModel):
    """The whole file, as written."""

    model_config = _CONFIG

    version: int = 1
    approvers: tuple[Approver, ...] = ()
    rules: tuple[ApprovalRule, ...] = ()
    clients: tuple[TrustedClient, ...] = ()


def parse_approvals(text: str, file: str = "<string>") -> ApprovalConfig:
    """Parses and validates an approvals config from YAML text.

    Args:
        text: The YAML document.
        file: Where the text came from, for messages.

    Returns:
        The validated config.

    Raises:
        ApprovalConfigError: The first problem found, with file, line and fix.
    """
    try:
        root, data = load_mapping(
            text,
            what="approvals configs",
            start_fix="start the file with `version: 1`, then `approvers:` and `rules:` lists",
            alias_fix='quote globs that start with `*`, e.g. `action: "*_transfer"`',
        )
    except YamlSourceError as exc:
        raise ApprovalConfigError(exc.reason, file=file, line=exc.line, fix=exc.fix) from None
    return _Validator(file, root).validate(data)


def load_approvals(path: str | os.PathLike[str]) -> ApprovalConfig:
    """Reads, parses and validates an approvals config file.

    Args:
        path: The YAML file.

    Returns:
        The validated config.

    Raises:
        ApprovalConfigError: The file cannot be read, or the config is invalid.
    """
    file, text = read_file(path, what="approvals config file", error=ApprovalConfigError)
    return parse_approvals(text, file)


class _Validator:
    def __init__(self, file: str, root: yaml.Node) -> None:
        self.file = file
        self.root = root

    def _error(self, reason: str, path: tuple[str | int, ...], fix: str) -> ApprovalConfigError:
        line = locate(self.root, path)[0]
        return ApprovalConfigError(reason, file=self.file, line=line, fix=fix)

    def validate(self, data: dict[object, object]) -> ApprovalConfig:
        self._check_version(data)
        try:
            parsed = _File.model_validate(data)
        except ValidationError as exc:
            raise self._from_validation(exc) from None
        try:
            config = ApprovalConfig(
                approvers=parsed.approvers, rules=parsed.rules, clients=parsed.clients
            )
        except ValidationError as exc:
            raise self._from_validation(exc) from None
        if not config.rules and not config.clients:
            raise ApprovalConfigError(
                "the config has no rules, so no action could ever be approved",
                file=self.file,
                line=locate(self.root, ("rules",))[0],
                fix='add `rules:` with at least one `- action: "<glob>"` and its `approvers:`',
            )
        self._check_reachable(config.rules)
        return config

    def _from_validation(self, exc: ValidationError) -> ApprovalConfigError:
        picked = pick_error(exc, self.root)
        error, path, line = picked.error, picked.path, picked.line
        ctx = error.get("ctx") or {}
        if error["type"] == _PROBLEM:
            full = (*path, *ctx["path"])
            line = locate(self.root, full)[0]
            return ApprovalConfigError(
                f"{_name(full)}: {ctx['reason']}", file=self.file, line=line, fix=ctx["fix"]
            )
        reason, fix = _explain(error, path)
        return ApprovalConfigError(reason, file=self.file, line=line, fix=fix)

    def _check_version(self, data: dict[object, object]) -> None:
        if "version" not in data:
            return
        version = data["version"]
        if version == 1 and isinstance(version, int) and not isinstance(version, bool):
            return
        if isinstance(version, str) and version.strip() == "1":
            reason, fix = "'version' is text, not a number", "write `version: 1` without quotes"
        else:
            reason = f"unsupported approvals config version {short(version)}"
            fix = "this release reads `version: 1`"
        raise self._error(reason, ("version",), fix)

    def _check_reachable(self, rules: Sequence[ApprovalRule]) -> None:
        first_of: dict[str, int] = {}
        catch_all: int | None = None
        for index, rule in enumerate(rules):
            path = ("rules", index, "action")
            if catch_all is not None:
                raise self._error(
                    f"rule {index + 1} ('{rule.action}') can never match: rule {catch_all + 1} "
                    f"('{rules[catch_all].action}') before it matches every action",
                    path,
                    "move the catch-all rule last (first match wins), or remove this rule",
                )
            if rule.action in first_of:
                raise self._error(
                    f"rule {index + 1} repeats the glob '{rule.action}' of rule "
                    f"{first_of[rule.action] + 1}, so it can never match",
                    path,
                    "remove one of them (first match wins)",
                )
            first_of[rule.action] = index
            if set(rule.action) == {"*"}:
                catch_all = index


def _name(path: tuple[str | int, ...]) -> str:
    """The element at ``path`` counted from 1, e.g. ``rule 2 'escalate_to'``."""
    entry = ""
    if len(path) >= 3 and isinstance(path[-1], int):
        entry = f" entry {path[-1] + 1}"
        path = path[:-1]
    if len(path) >= 2 and path[0] in ("rules", "approvers", "clients") and isinstance(path[1], int):
        what = {"rules": "rule", "approvers": "approver", "clients": "client"}[str(path[0])]
        rest = display_path(path[2:])
        return f"{what} {path[1] + 1}" + (f" '{rest}'" if rest else "") + entry
    return f"'{display_path(path)}'{entry}"


def _explain(error: ErrorDetails, path: tuple[str | int, ...]) -> tuple[str, str]:
    """Turns one pydantic error into a reason and a fix, in approvals-config terms."""
    kind = error["type"]
    value = error.get("input")
    given = short(value)
    name = _name(path)
    last = path[-1] if path else ""
    if kind == "public_key":
        return f"{name}: {error['msg']}, got {given}", _KEY_FIX
    if kind.startswith("glob_"):
        fix = "remove the spaces around the glob" if kind == "glob_whitespace" else _GLOB_FIX
        return f"{name}: {error['msg']}, got {given}", fix
    if kind == "acts_for_empty":
        return (
            f"{name}: {error['msg']}",
            'list the users it acts for, e.g. `acts_for: ["*@example.com"]`',
        )
    if kind.startswith("name_") or kind in ("approver_group_prefix", "group_prefix"):
        fix = "remove the 'group:' prefix" if "group" in kind else "write a plain name"
        return f"{name}: {error['msg']}, got {given}", fix
    if kind == "positive_seconds":
        return f"{name} {error['msg']}, got {given}", (
            f"give a positive number of seconds, or remove '{last}' (no limit)"
        )
    if value is None and kind.endswith("_type"):
        return f"{name} has no value", f"give '{last}' a value, or remove the key"
    if kind == "string_type":
        return f"{name} must be text, got {given}", (
            "quote it: YAML reads it as a number or a boolean"
        )
    if (
        kind == "extra_forbidden"
        and len(path) == 3
        and path[0] in ("rules", "approvers", "clients")
    ):
        models: dict[str, type[BaseModel]] = {
            "rules": ApprovalRule,
            "approvers": Approver,
            "clients": TrustedClient,
        }
        model = models[str(path[0])]
        close = did_you_mean(str(last), list(model.model_fields))
        fix = (
            f"did you mean '{close}'?"
            if close
            else f"remove it (allowed: {', '.join(model.model_fields)})"
        )
        return f"unknown key '{last}' in {_name(path[:2])}", fix
    if kind == "missing" and len(path) == 3 and path[0] in ("rules", "approvers", "clients"):
        example = {
            "action": '"<glob>"',
            "approvers": "[<approver id>, group:<name>]",
            "acts_for": '["*@example.com"]',
        }.get(str(last), "...")
        return f"{_name(path[:2])} has no '{last}'", f"add `{last}: {example}` to it"
    if kind == "literal_error" and last == "on_timeout":
        close = did_you_mean(str(value), ["reject", "escalate"]) if isinstance(value, str) else None
        hint = f"did you mean '{close}'? " if close else ""
        return f"{name} must be 'reject' or 'escalate', got {given}", f"{hint}write one of them"
    if kind == "model_type" and len(path) == 2 and path[0] in ("rules", "approvers"):
        first, second = ("action", "approvers") if path[0] == "rules" else ("id", "public_key")
        return f"{name} must be a mapping with '{first}' and '{second}', got {given}", (
            f"write it as `- {first}: ...` with `{second}: ...` indented under it"
        )
    if kind in ("tuple_type", "list_type") and last in _LISTS:
        example = f"`{last}: [{value}]`" if isinstance(value, str) else f"`{last}: [...]`"
        return f"{name} must be a list, got {given}", f"write it as a list, {example}"
    return explain_error(error, path, _File, "an approvals config")
