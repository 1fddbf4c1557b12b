"""Tool policy models: what a policy says, and its rules compiled for fast matching.

Workflow-side (pure): stdlib and pydantic only, no I/O, no clock, no randomness, no module
state. A policy's matchers are compiled once, when the model is built, and kept on the
instance, so a policy that arrives in a Temporal payload is ready to decide at once.

Globs: ``*`` is zero or more of any character (dots included), ``?`` exactly one character,
everything else is literal (``[`` too); a glob must match the whole name. Case and Unicode
compatibility forms do not matter (:func:`fold_name`): ``*delete*`` catches ``Delete_Database``
and ``ｄｅｌｅｔｅ``, so a look-alike spelling cannot slip past a block.

A rule may add ``when:`` conditions on what an MCP server says about the tool (its annotations,
recorded in the run's history when the run listed the server's tools): the rule then matches a
tool its glob matches only when every condition holds. Conditions never hold for a tool with no
annotations to go by (a ``@task`` tool), so such a rule does not apply to it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)
from pydantic_core import PydanticCustomError

from jamjet_temporal._shared._canonical import DIGEST_PREFIX, digest
from jamjet_temporal._shared._models import CompiledModel
from jamjet_temporal._shared._wire import fold_name

__all__ = [
    "CONDITIONS",
    "Action",
    "Decision",
    "Policy",
    "PolicyScopes",
    "Rule",
    "Verdict",
    "fold_name",
]

Action = Literal["allow", "block", "require_approval", "audit"]
"""What a rule does with a tool it matches."""

Verdict = Literal["ALLOWED", "BLOCKED", "WAITING_FOR_APPROVAL", "AUDIT"]
"""The outcome of a decision, as recorded in the audit trail."""

ACTIONS: Final[tuple[Action, ...]] = ("allow", "block", "require_approval", "audit")
VERDICTS: Final[Mapping[Action, Verdict]] = {
    "allow": "ALLOWED",
    "block": "BLOCKED",
    "require_approval": "WAITING_FOR_APPROVAL",
    "audit": "AUDIT",
}
_CONFIG: Final = ConfigDict(frozen=True, extra="forbid")


def _check_glob(glob: str) -> str:
    if not glob:
        raise PydanticCustomError("glob_empty", "an empty glob matches no tool")
    if glob != glob.strip():
        raise PydanticCustomError(
            "glob_whitespace", "the glob starts or ends with whitespace, so it matches no tool"
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in glob):
        raise PydanticCustomError("glob_control", "the glob contains a control character")
    return glob


Glob = Annotated[str, AfterValidator(_check_glob)]
"""A tool (or model) name pattern: ``*`` any characters, ``?`` one character."""

#: What a rule's ``when:`` may test: the MCP tool annotations, read with the defaults of the MCP
#: specification (a tool that says nothing is not read-only, is destructive and open-world).
CONDITIONS: Final = ("destructive", "read_only", "idempotent", "open_world")
#: MCP's own names of the annotations, and the condition each one is.
_HINT_NAMES: Final = {
    "destructivehint": "destructive",
    "readonlyhint": "read_only",
    "idempotenthint": "idempotent",
    "openworldhint": "open_world",
    "readonly": "read_only",
    "read-only": "read_only",
    "open-world": "open_world",
}


def _as_conditions(value: object) -> object:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise PydanticCustomError(
            "when_type",
            "'when' must be a condition or a list of conditions, got {value}",
            {"value": repr(value)},
        )
    return value


def _check_when(conditions: tuple[str, ...]) -> tuple[str, ...]:
    if not conditions:
        raise PydanticCustomError(
            "when_empty", "'when' lists no condition (leave it out for a rule without one)"
        )
    checked: list[str] = []
    for condition in conditions:
        words = condition.split()
        negated = len(words) == 2 and words[0] == "not"
        name = words[-1] if words else ""
        if name not in CONDITIONS or len(words) != (2 if negated else 1):
            close = _HINT_NAMES.get(name.lower()) or next(
                iter(difflib.get_close_matches(name.lower(), CONDITIONS, n=1)), None
            )
            hint = f" (did you mean '{'not ' if negated else ''}{close}'?)" if close else ""
            raise PydanticCustomError(
                "when_condition",
                "unknown condition {condition}{hint}",
                {"condition": repr(condition), "hint": hint},
            )
        checked.append(f"not {name}" if negated else name)
    return tuple(checked)


When = Annotated[tuple[str, ...], BeforeValidator(_as_conditions), AfterValidator(_check_when)]
"""A rule's conditions, all of which must hold: names from :data:`CONDITIONS`, each optionally
preceded by ``not`` (``destructive``, ``[open_world, "not read_only"]``)."""


def conditions_hold(when: tuple[str, ...], holds: frozenset[str] | None) -> bool:
    """Whether every condition of ``when`` holds for a tool of which ``holds`` is true
    (None: nothing is known about the tool, and no condition holds)."""
    if holds is None:
        return False
    return all((c[4:] not in holds) if c.startswith("not ") else (c in holds) for c in when)


def glob_to_regex(glob: str) -> str:
    """The regular expression that, with ``fullmatch`` and ``DOTALL``, matches what ``glob`` does.

    A glob is fixed-length pieces between stars. Taking each middle piece at its earliest
    place is always right (it leaves the most room for the rest), so those are atomic
    groups: the regex never backtracks across stars, and a long tool name against a glob
    with many stars costs O(name x glob) instead of growing with a power of the name.
    """

    def piece(text: str) -> str:
        return "".join("." if char == "?" else re.escape(char) for char in text)

    if "*" not in glob:
        return piece(glob)
    head, *middle, tail = glob.split("*")
    inner = "".join(f"(?>.*?{piece(part)})" for part in middle if part)
    return f"{piece(head)}{inner}.*{piece(tail)}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One compiled glob: what it decides and the sentence that explains it."""

    glob: str
    action: Action
    verdict: Verdict
    reason: str
    #: The rule's ``when:`` conditions (empty: none), and its own regex when it has some.
    when: tuple[str, ...] = ()
    regex: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True)
class Matcher:
    """Ordered globs compiled into one regex alternation, one group per glob.

    Alternation is tried left to right and ``fullmatch`` backtracks into the next branch when a
    branch cannot reach the end, so the group that matched is the first glob that matches.
    """

    pattern: re.Pattern[str] | None
    entries: tuple[Entry, ...]

    @classmethod
    def build(cls, entries: Iterable[Entry]) -> Matcher:
        """Compiles ``entries`` in order."""
        entries = tuple(entries)
        if any(entry.when for entry in entries):
            # Conditions: each entry also gets its own regex, for when the first glob that
            # matches belongs to a rule whose conditions do not hold.
            entries = tuple(
                Entry(
                    entry.glob,
                    entry.action,
                    entry.verdict,
                    entry.reason,
                    entry.when,
                    re.compile(glob_to_regex(fold_name(entry.glob)), re.DOTALL),
                )
                for entry in entries
            )
        if not entries:
            return cls(None, ())
        source = "|".join(f"({glob_to_regex(fold_name(entry.glob))})" for entry in entries)
        return cls(re.compile(source, re.DOTALL), entries)

    def first(self, name: str, holds: frozenset[str] | None = None) -> Entry | None:
        """The first entry whose glob matches all of ``name`` (already :func:`fold_name`-ed)
        and whose ``when:`` conditions hold (``holds``: what is true of the tool)."""
        if self.pattern is None:
            return None
        found = self.pattern.fullmatch(name)
        if found is None:
            return None
        index = found.lastindex
        assert index is not None
        entry = self.entries[index - 1]
        if not entry.when or conditions_hold(entry.when, holds):
            return entry
        # The glob matched but its conditions do not hold: the later entries, one by one.
        for later in self.entries[index:]:
            assert later.regex is not None
            if (not later.when or conditions_hold(later.when, holds)) and later.regex.fullmatch(
                name
            ):
                return later
        return None


@dataclass(frozen=True, slots=True)
class Compiled:
    """Everything derived from a policy's fields, computed once per instance."""

    digest: str
    version_id: str
    blocked: Matcher
    approval: Matcher
    rules: Matcher
    models: Matcher | None
    has_rules: bool
    has_tool_config: bool
    #: Whether a rule has ``when:`` conditions (its decisions then depend on annotations).
    has_conditions: bool = False


class Rule(BaseModel):
    """One rule of the portable format: tools matching ``match`` get ``action``.

    Attributes:
        match: The glob, matched against the whole tool name.
        action: ``allow``, ``block``, ``require_approval`` or ``audit`` (allow and record).
        when: Conditions on the MCP tool's annotations, all of which must hold for the rule
            to match (None: the glob alone decides): ``destructive``, ``read_only``,
            ``idempotent``, ``open_world``, each optionally preceded by ``not``. A tool with
            no annotations to go by (a ``@task`` tool) never satisfies one.
    """

    model_config = _CONFIG

    match: Glob
    action: Action
    when: When | None = None

    @model_serializer(mode="wrap")
    def _without_unset_when(self, handler: SerializerFunctionWrapHandler) -> object:
        # A rule without conditions dumps as it did before they existed: a policy's digest
        # (pinned in run histories through its version id) must not change.
        data = handler(self)
        if self.when is None and isinstance(data, dict):
            data.pop("when", None)
        return data


class Policy(CompiledModel):
    """A tool policy: JamJet's portable rules and workflow-level keys, in one model.

    Rules are ordered and the first match wins. ``blocked_tools`` and then
    ``require_approval_for`` are absolute (no scope's allow rule or allow-list undoes them): see
    :func:`~jamjet_temporal.policy.decide_tool`. Equality, hashing and :attr:`version_id`
    consider what the policy decides, not ``source``.

    Attributes:
        version: Format version; only ``1`` exists.
        rules: Ordered rules; once any scope has rules, a tool no rule matches is blocked.
        blocked_tools: Globs of tools blocked whatever any scope says.
        require_approval_for: Globs of tools that wait for a human approval.
        model_allowlist: Globs of the models that may be called; ``None`` allows any model,
            ``()`` none.
        closed: An allow-list: a tool nothing here matches is blocked by this scope, without
            asking less specific ones. Set by :meth:`allow_list`.
        source: Where the policy came from (a file path), for messages.
    """

    model_config = _CONFIG

    version: Literal[1] = 1
    rules: tuple[Rule, ...] = ()
    blocked_tools: tuple[Glob, ...] = ()
    require_approval_for: tuple[Glob, ...] = ()
    model_allowlist: tuple[Glob, ...] | None = None
    closed: bool = False
    source: str = "<inline>"

    _compiled: Compiled = PrivateAttr()

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_an_integer(cls, value: object) -> object:
        # Lax mode would read `true` or `1.0` as 1; a version is written as the integer.
        if isinstance(value, bool) or not isinstance(value, int):
            raise PydanticCustomError(
                "policy_version",
                "the policy version must be the integer 1, got {value!r}",
                {"value": value},
            )
        return value

    def model_post_init(self, context: object, /) -> None:
        self._compiled = self._compile()

    def _compile(self) -> Compiled:
        # Canonical JSON (``_shared._canonical``) of the semantic fields; pinned in histories
        # through version_id, so it must not change.
        hexdigest = digest(self.model_dump(mode="json", exclude={"source"}))
        hexdigest = hexdigest.removeprefix(DIGEST_PREFIX)
        blocked = Matcher.build(
            Entry(glob, "block", "BLOCKED", "tool is in blocked_tools")
            for glob in self.blocked_tools
        )
        approval = Matcher.build(
            Entry(
                glob,
                "require_approval",
                "WAITING_FOR_APPROVAL",
                f"matched require_approval_for '{glob}'",
            )
            for glob in self.require_approval_for
        )
        ruled = (
            Entry(
                rule.match,
                rule.action,
                VERDICTS[rule.action],
                f"matched {rule.action} rule '{rule.match}'"
                + (f" when {', '.join(rule.when)}" if rule.when else ""),
                rule.when or (),
            )
            for rule in self.rules
        )
        models = None
        if self.model_allowlist is not None:
            models = Matcher.build(
                Entry(glob, "allow", "ALLOWED", f"model matches model_allowlist '{glob}'")
                for glob in self.model_allowlist
            )
        has_rules = bool(self.rules) or self.closed
        return Compiled(
            digest=hexdigest,
            version_id="pol_" + hexdigest[:12],
            blocked=blocked,
            approval=approval,
            rules=Matcher.build(ruled),
            models=models,
            has_rules=has_rules,
            has_tool_config=has_rules or bool(self.blocked_tools or self.require_approval_for),
            has_conditions=any(rule.when for rule in self.rules),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Policy):
            return NotImplemented
        # The digest covers exactly the semantic fields (canonical JSON without `source`).
        return self._compiled.digest == other._compiled.digest

    def __hash__(self) -> int:
        # From the digest, not hash(): the same in every process, and cheap for policies
        # used as dict keys (the gate caches scope stacks per run).
        return int(self._compiled.digest[:16], 16)

    @property
    def version_id(self) -> str:
        """``pol_`` and 12 hex digits of a hash of what the policy decides (not its source)."""
        return self._compiled.version_id

    @property
    def is_empty(self) -> bool:
        """Whether the policy sets nothing at all (no rules of any kind, no model allow-list)."""
        return not (self._compiled.has_tool_config or self.model_allowlist is not None)

    @classmethod
    def allow_list(cls, tools: Iterable[str], *, source: str) -> Policy:
        """A closed allow-list: exactly these tools, every other tool blocked.

        Used for agents declared with ``@task(tools=[...])``. Entries are globs, so
        ``"fs.*"`` allows a whole family.

        Args:
            tools: Tool names (or globs) the agent may call.
            source: What declared the list, for messages (e.g. ``"@task assistant"``).

        Returns:
            The policy.

        Raises:
            TypeError: ``tools`` is a single string.
            pydantic.ValidationError: A name is empty or has surrounding whitespace.
        """
        if isinstance(tools, str):
            raise TypeError("Policy.allow_list takes a list of tool names, not one string")
        return cls(
            rules=tuple(Rule(match=tool, action="allow") for tool in tools),
            closed=True,
            source=source,
        )


class PolicyScopes(CompiledModel):
    """The policies in force, from the least to the most specific scope.

    A typical stack is ``run`` (the plugin's policy), ``workflow``, then ``node:<id>`` or
    ``agent:<name>``.

    Attributes:
        scopes: ``(scope name, policy)`` pairs, least specific first. Names are unique and
            ``"default"`` is reserved for decisions no policy made.
    """

    model_config = _CONFIG

    scopes: tuple[tuple[str, Policy], ...] = ()

    _reversed: tuple[tuple[str, Policy], ...] = PrivateAttr()
    _has_rules: bool = PrivateAttr()
    _has_tool_config: bool = PrivateAttr()
    _has_conditions: bool = PrivateAttr()
    _version_id: str = PrivateAttr()

    @field_validator("scopes")
    @classmethod
    def _names_are_unique(
        cls, scopes: tuple[tuple[str, Policy], ...]
    ) -> tuple[tuple[str, Policy], ...]:
        seen: set[str] = set()
        for name, _ in scopes:
            if not name:
                raise ValueError("a scope name must not be empty")
            if name == "default":
                raise ValueError("the scope name 'default' is reserved for default decisions")
            if name in seen:
                raise ValueError(f"scope '{name}' appears twice")
            seen.add(name)
        return scopes

    def model_post_init(self, context: object, /) -> None:
        self._reversed = self.scopes[::-1]
        self._has_rules = any(policy._compiled.has_rules for _, policy in self.scopes)
        self._has_tool_config = any(policy._compiled.has_tool_config for _, policy in self.scopes)
        self._has_conditions = any(policy._compiled.has_conditions for _, policy in self.scopes)
        used = [[name, policy.version_id] for name, policy in self.scopes if not policy.is_empty]
        if not used:
            self._version_id = "none"
        else:
            self._version_id = "pol_" + digest(used).removeprefix(DIGEST_PREFIX)[:12]

    def with_scope(self, name: str, policy: Policy) -> PolicyScopes:
        """These scopes with a more specific one added last.

        Args:
            name: The new scope's name, e.g. ``"agent:assistant"``.
            policy: Its policy.

        Returns:
            The new stack.
        """
        return PolicyScopes(scopes=(*self.scopes, (name, policy)))

    @property
    def version_id(self) -> str:
        """A hash of every non-empty scope's name and policy version; ``"none"`` if none."""
        return self._version_id

    @property
    def has_conditions(self) -> bool:
        """Whether a rule in force has ``when:`` conditions (decisions depend on annotations)."""
        return self._has_conditions


class Decision(BaseModel):
    """The outcome of one policy check, as recorded in the audit trail.

    Attributes:
        decision: ``ALLOWED``, ``BLOCKED``, ``WAITING_FOR_APPROVAL`` or ``AUDIT``.
        subject: The tool name (or model name, for a model check).
        rule: The glob that decided; ``None`` when a default decided.
        rule_kind: The deciding rule's action; ``None`` when a default decided.
        scope: The scope that decided (``"run"``, ``"agent:assistant"``…) or ``"default"``.
        policy_version: The deciding policy's :attr:`Policy.version_id`; for a default, the
            scopes' :attr:`PolicyScopes.version_id` (``"none"`` when there is no policy).
        reason: A sentence for humans.
    """

    model_config = _CONFIG

    decision: Verdict
    subject: str
    rule: str | None
    rule_kind: Action | None
    scope: str
    policy_version: str
    reason: str

    @property
    def allowed(self) -> bool:
        """Whether the call may go ahead now (``ALLOWED`` or ``AUDIT``)."""
        return self.decision in ("ALLOWED", "AUDIT")
