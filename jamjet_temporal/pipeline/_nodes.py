"""The node types of a pipeline, as validated models: JamJet's spellings accepted as written.

Each model accepts every spelling JamJet's docs, templates and compiler use for a field
(``system``/``system_prompt``, ``output_key``/``output_to_state``, ``tool``/``tool_ref``,
``arguments``/``input``, ``if``/``when``, ``next``/``to``, ...): pydantic validation aliases, so an
error still points at the key as written. The models are pure data: they travel in the pipeline
workflow's input and are read inside the workflow sandbox.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
)

from jamjet_temporal.policy import Policy

__all__ = [
    "END",
    "A2ATaskNode",
    "AgentNode",
    "AnyNode",
    "AssertionScorer",
    "ConditionNode",
    "CostScorer",
    "Edge",
    "EndNode",
    "EvalNode",
    "HumanApprovalNode",
    "JudgeScorer",
    "LatencyScorer",
    "McpToolNode",
    "ModelNode",
    "Node",
    "NodeBase",
    "ParallelNode",
    "RetrySpec",
    "Scorer",
    "Seconds",
    "ToolNode",
    "WaitNode",
    "parse_duration",
]

#: The implicit terminal: ``next: end`` ends the pipeline when no node is called ``end``.
END: Final = "end"

_CONFIG: Final = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
_DURATION_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> object:
    """``30s``, ``5m``, ``2h``, ``1d``, ``500ms`` or a number of seconds, as seconds.

    Anything else is returned unchanged for the field's own validation to refuse.
    """
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match is None:
            raise ValueError(
                f"{value!r} is not a duration; write a number of seconds or e.g. 30s, 5m, 2h, 1d"
            )
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return value


#: Seconds, written as a number or a duration text (``30s``, ``24h``).
Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0, allow_inf_nan=False)]


def _hours(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) * 3600.0
    return parse_duration(value)


_BACKOFF: Final = {"exponential": 2.0, "constant": 1.0, "fixed": 1.0, "linear": 1.0}


class RetrySpec(BaseModel):
    """A node's retry policy (Temporal's retry policy for its activity).

    ``backoff`` is a coefficient or JamJet's name: ``exponential`` (2), ``constant``/``fixed``
    (1); ``linear`` has no Temporal equivalent and retries at a constant interval.
    """

    model_config = _CONFIG

    max_attempts: int = Field(default=3, ge=1)
    initial_interval_seconds: Annotated[float, BeforeValidator(parse_duration)] = Field(
        default=1.0,
        gt=0,
        allow_inf_nan=False,
        validation_alias=AliasChoices("initial_interval_seconds", "base_delay", "delay"),
    )
    delay_ms: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    backoff: float = Field(default=2.0, ge=1, allow_inf_nan=False)
    max_interval_seconds: Annotated[float, BeforeValidator(parse_duration)] = Field(
        default=30.0,
        gt=0,
        allow_inf_nan=False,
        validation_alias=AliasChoices("max_interval_seconds", "max_delay"),
    )
    max_delay_ms: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    jitter: bool = False

    @field_validator("backoff", mode="before")
    @classmethod
    def _named_backoff(cls, value: object) -> object:
        if isinstance(value, str):
            if value not in _BACKOFF:
                raise ValueError(
                    f"unknown backoff {value!r}; use exponential, constant, fixed, linear or a "
                    "number >= 1"
                )
            return _BACKOFF[value]
        return value

    @property
    def initial_seconds(self) -> float:
        """The first retry's delay (``delay_ms`` wins when given)."""
        return self.delay_ms / 1000 if self.delay_ms is not None else self.initial_interval_seconds

    @property
    def max_seconds(self) -> float:
        """The cap between attempts, never below the first delay."""
        cap = (
            self.max_delay_ms / 1000 if self.max_delay_ms is not None else self.max_interval_seconds
        )
        return max(cap, self.initial_seconds)


class Edge(BaseModel):
    """An outgoing edge: go to ``to`` if ``when`` holds (or has no ``when``)."""

    model_config = _CONFIG

    to: str = Field(validation_alias=AliasChoices("to", "next", "then", "target"))
    when: str | None = Field(default=None, validation_alias=AliasChoices("when", "if", "condition"))


Next = str | list[Edge] | None


class NodeBase(BaseModel):
    """Fields every node that does work or routes has (all but ``end``)."""

    model_config = _CONFIG

    label: str | None = None
    description: str | None = None
    labels: dict[str, str] | list[str] | None = None
    next: Next = None
    timeout_seconds: Seconds | None = Field(
        default=None, validation_alias=AliasChoices("timeout_seconds", "timeout")
    )
    heartbeat_timeout_seconds: Seconds | None = None
    retry: RetrySpec | None = None
    retry_policy: str | None = None
    policy: Policy | None = None


class ModelNode(NodeBase):
    """Calls a language model; ``prompt`` and ``system`` are Jinja2 templates.

    ``prompt`` may name a file beside the pipeline (``prompts/plan.md``): the loader reads it.
    With ``output_schema`` the model is asked for JSON matching it and the state gets the object.
    """

    type: Literal["model"]
    model: str | None = None
    system: str | None = Field(
        default=None, validation_alias=AliasChoices("system", "system_prompt")
    )
    prompt: str
    output_key: str | None = Field(
        default=None, validation_alias=AliasChoices("output_key", "output_to_state")
    )
    output_schema: dict[str, JsonValue] | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class ToolNode(NodeBase):
    """Calls a ``@task`` tool, or with ``server:`` a tool of that MCP server."""

    type: Literal["tool"]
    tool: str = Field(validation_alias=AliasChoices("tool", "tool_ref"))
    server: str | None = None
    arguments: dict[str, JsonValue] = Field(
        default_factory=dict, validation_alias=AliasChoices("arguments", "input")
    )
    output_key: str | None = Field(
        default=None, validation_alias=AliasChoices("output_key", "output_to_state")
    )
    output_schema: dict[str, JsonValue] | None = None


class McpToolNode(NodeBase):
    """Calls tool ``tool`` of the MCP server declared as ``server``."""

    type: Literal["mcp_tool"]
    server: str
    tool: str = Field(validation_alias=AliasChoices("tool", "tool_ref"))
    arguments: dict[str, JsonValue] = Field(
        default_factory=dict, validation_alias=AliasChoices("arguments", "input")
    )
    output_key: str | None = Field(
        default=None, validation_alias=AliasChoices("output_key", "output_to_state")
    )
    output_schema: dict[str, JsonValue] | None = None


class A2ATaskNode(NodeBase):
    """Delegates to a remote A2A agent: an alias from ``a2a.remote_agents`` or a URL."""

    type: Literal["a2a_task"]
    remote_agent: str = Field(
        validation_alias=AliasChoices("remote_agent", "agent_url", "agent_uri")
    )
    skill: str | None = None
    input: dict[str, JsonValue] | str = Field(default_factory=dict)
    output_key: str | None = Field(
        default=None, validation_alias=AliasChoices("output_key", "output_to_state")
    )
    output_schema: dict[str, JsonValue] | None = None
    stream: bool = False
    on_input_required: str | None = None


class Branch(BaseModel):
    """One of a branch node's ``conditions``: ``if``/``when`` and ``next``/``to``."""

    model_config = _CONFIG

    when: str = Field(validation_alias=AliasChoices("when", "if", "condition"))
    to: str = Field(validation_alias=AliasChoices("to", "next", "then", "target"))


class ConditionNode(NodeBase):
    """Routes and does no work, in any of JamJet's three spellings.

    - ``conditions: [{if, next}]`` and ``default`` (first match wins, then ``default``);
    - ``expression`` with ``if_true`` / ``if_false``;
    - ``next:`` as a list of ``{to, when}`` edges.
    """

    type: Literal["condition", "branch"]
    conditions: list[Branch] | None = Field(
        default=None, validation_alias=AliasChoices("conditions", "branches")
    )
    default: str | None = None
    expression: str | None = None
    if_true: str | None = None
    if_false: str | None = None

    def routes(self) -> list[tuple[Edge, tuple[str | int, ...]]]:
        """The node's edges in order, each with the path (under the node) it was written at."""
        routes: list[tuple[Edge, tuple[str | int, ...]]] = []
        if self.expression is not None:
            if self.if_true is not None:
                routes.append((Edge(to=self.if_true, when=self.expression), ("if_true",)))
            if self.if_false is not None:
                negated = f"not ({self.expression})"
                routes.append((Edge(to=self.if_false, when=negated), ("if_false",)))
        for index, branch in enumerate(self.conditions or ()):
            routes.append((Edge(to=branch.to, when=branch.when), ("conditions", index)))
        if isinstance(self.next, list):
            routes.extend((edge, ("next", index)) for index, edge in enumerate(self.next))
        fallback = self.default if self.default is not None else None
        if fallback is None and isinstance(self.next, str):
            fallback = self.next
        if fallback is not None:
            key = "default" if self.default is not None else "next"
            routes.append((Edge(to=fallback), (key,)))
        return routes


class ParallelNode(NodeBase):
    """Runs ``branches`` concurrently, then goes on at ``join`` (or ``next``).

    Each branch starts at its node and follows ``next`` until it reaches the join node or ends.
    Every branch sees the state as it was at the fork; their writes are merged in branch order
    (the last writer of a key wins). ``on_branch_failure: fail`` (the default) fails the run
    once every branch has finished; ``continue`` records the failure and goes on.
    """

    type: Literal["parallel"]
    branches: list[str] = Field(min_length=1)
    join: str | None = None
    on_branch_failure: Literal["fail", "continue"] = "fail"
    output_key: str | None = Field(
        default=None, validation_alias=AliasChoices("output_key", "output_to_state")
    )


class WaitNode(NodeBase):
    """Waits, durably, for the external event ``event``; its JSON data is merged into the state.

    ``jamjet resume RUN --event NAME --data '{...}'`` sends it (a Temporal signal, so the
    Temporal CLI and Web UI can too). With ``output_key`` the data goes under that key instead.
    ``timeout``/``timeout_hours`` bound the wait (not an activity: a wait node runs none);
    past it the run goes to ``on_timeout``, or fails.
    """

    type: Literal["wait"]
    event: str = Field(validation_alias=AliasChoices("event", "correlation_key"))
    timeout_hours: Annotated[float | None, BeforeValidator(_hours)] = Field(
        default=None, gt=0, allow_inf_nan=False
    )
    on_timeout: str | None = None
    output_key: str | None = Field(
        default=None, validation_alias=AliasChoices("output_key", "output_to_state")
    )

    @property
    def deadline_seconds(self) -> float | None:
        """How long to wait: ``timeout`` or ``timeout_hours`` (already in seconds)."""
        return self.timeout_seconds or self.timeout_hours


class HumanApprovalNode(NodeBase):
    """A signed human approval through the approvals feature, routed on the decision.

    Approved: ``on_approve`` (or ``next``). Rejected: ``on_reject`` (or the run fails). Timed out:
    ``fallback``/``on_timeout`` (or the run fails). ``timeout`` overrides the approval rule's.
    """

    type: Literal["human_approval"]
    action: str | None = None
    description: str | None = Field(
        default=None, validation_alias=AliasChoices("description", "message", "prompt")
    )
    arguments: dict[str, JsonValue] = Field(
        default_factory=dict, validation_alias=AliasChoices("arguments", "args", "input")
    )
    fallback: str | None = Field(
        default=None, validation_alias=AliasChoices("fallback", "on_timeout")
    )
    on_approve: str | None = Field(
        default=None, validation_alias=AliasChoices("on_approve", "on_approved")
    )
    on_reject: str | None = Field(
        default=None, validation_alias=AliasChoices("on_reject", "on_rejected")
    )
    output_key: str | None = Field(
        default=None, validation_alias=AliasChoices("output_key", "output_to_state")
    )


class AssertionScorer(BaseModel):
    """Passes when every check (a condition over ``state`` and ``output``) holds."""

    model_config = _CONFIG

    type: Literal["assertion"]
    checks: list[str] = Field(
        min_length=1, validation_alias=AliasChoices("checks", "check", "expression")
    )

    @field_validator("checks", mode="before")
    @classmethod
    def _one_check(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class JudgeScorer(BaseModel):
    """Asks a model to score the output against ``rubric`` from 1 to ``scale``."""

    model_config = _CONFIG

    type: Literal["llm_judge"]
    rubric: str
    min_score: float = Field(default=3, ge=0, allow_inf_nan=False)
    scale: int = Field(default=5, ge=1)
    model: str | None = None


class LatencyScorer(BaseModel):
    """Passes when the node evaluated took at most ``max_ms``."""

    model_config = _CONFIG

    type: Literal["latency"]
    max_ms: float = Field(
        default=5000, gt=0, validation_alias=AliasChoices("max_ms", "threshold_ms")
    )


class CostScorer(BaseModel):
    """Passes when the run's model calls so far cost at most ``max_usd``."""

    model_config = _CONFIG

    type: Literal["cost"]
    max_usd: float = Field(
        default=1.0, gt=0, validation_alias=AliasChoices("max_usd", "threshold_usd")
    )


Scorer = Annotated[
    AssertionScorer | JudgeScorer | LatencyScorer | CostScorer, Field(discriminator="type")
]


class EvalNode(NodeBase):
    """Scores the last output (or ``input``) and acts on a failure.

    ``on_fail``: ``halt`` (fail the run), ``retry_with_feedback`` (run ``retry_node`` again, by
    default the last model or agent node, with the scorers' feedback, up to ``max_retries``
    times, then halt), ``escalate`` (go to ``escalate_to``), ``log_and_continue``.
    ``fail_under`` fails the evaluation when the judges' mean score is below it.
    """

    type: Literal["eval"]
    scorers: list[Scorer] = Field(min_length=1)
    on_fail: Literal["halt", "retry_with_feedback", "escalate", "log_and_continue"] = "halt"
    max_retries: int = Field(default=2, ge=0)
    fail_under: float | None = Field(default=None, allow_inf_nan=False)
    input: str | None = Field(default=None, validation_alias=AliasChoices("input", "input_expr"))
    retry_node: str | None = None
    escalate_to: str | None = None
    output_key: str | None = Field(
        default=None, validation_alias=AliasChoices("output_key", "output_to_state")
    )


class AgentNode(NodeBase):
    """Runs an ``@task(tools=...)`` agent: its tools, its allow-list, a model loop."""

    type: Literal["agent"]
    agent_ref: str = Field(validation_alias=AliasChoices("agent_ref", "agent"))
    prompt: str | None = None
    input: dict[str, JsonValue] | str | None = None
    system: str | None = Field(
        default=None, validation_alias=AliasChoices("system", "system_prompt")
    )
    model: str | None = None
    max_turns: int = Field(default=8, ge=1)
    output_key: str | None = Field(
        default=None, validation_alias=AliasChoices("output_key", "output_to_state")
    )


class EndNode(BaseModel):
    """Ends the pipeline; its result is ``state[output]``, or the whole state."""

    model_config = _CONFIG

    type: Literal["end"]
    label: str | None = None
    description: str | None = None
    labels: dict[str, str] | list[str] | None = None
    output: str | None = None


#: Any node model.
AnyNode = (
    ModelNode
    | ToolNode
    | McpToolNode
    | A2ATaskNode
    | ConditionNode
    | ParallelNode
    | WaitNode
    | HumanApprovalNode
    | EvalNode
    | AgentNode
    | EndNode
)
#: A node, told apart by its ``type``.
Node = Annotated[AnyNode, Field(discriminator="type")]
