"""YAML pipeline models and the loader that validates them.

A pipeline file has two sections::

    workflow:
      id: triage
      start: classify
    nodes:
      classify:
        type: model
        prompt: "Classify this ticket: {{ state.ticket }}"
        output_key: category
        next: route
      route:
        type: condition
        next:
          - to: escalate
            when: state.category == "urgent"
          - to: done
      ...

:func:`load_pipeline` / :func:`parse_pipeline` check everything that can be checked before a
run (shape and types, node types and JamJet's spellings, edge targets, conditions, Jinja2
templates, the state schema, reachability, loops that can never exit) and report the first
problem as a :class:`~jamjet_temporal.errors.PipelineSpecError` with the file, line, node and a
fix; :func:`check_pipeline` returns all of them (``jamjet validate``). The node models live in
``_nodes``; the resulting :class:`PipelineSpec` is the input of the pipeline workflow. This
module reads files and imports PyYAML and jsonschema: client and worker start only, never
workflow code (which uses ``_nodes`` and ``_state``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from jamjet_temporal._shared._yaml import (
    YamlSourceError,
    did_you_mean,
    display_path,
    explain_error,
    load_yaml,
    locate,
    model_at,
    node_at,
    node_line,
    pick_error,
    read_file,
    short,
)
from jamjet_temporal.errors import (
    ConfigFileError,
    PipelineInputError,
    PipelineSpecError,
    PolicyError,
)
from jamjet_temporal.mcp._config import McpServer
from jamjet_temporal.pipeline._expr import ALLOWED_SYNTAX, compile_condition
from jamjet_temporal.pipeline._nodes import (
    END,
    A2ATaskNode,
    AgentNode,
    AnyNode,
    AssertionScorer,
    ConditionNode,
    Edge,
    EndNode,
    EvalNode,
    HumanApprovalNode,
    McpToolNode,
    ModelNode,
    Node,
    NodeBase,
    ParallelNode,
    RetrySpec,
    Seconds,
    ToolNode,
    WaitNode,
)
from jamjet_temporal.pipeline._state import apply_defaults, input_example, normalize_schema
from jamjet_temporal.pipeline._template import TemplateSyntaxError, check_template
from jamjet_temporal.policy import Policy
from jamjet_temporal.policy._load import policy_from_node

__all__ = [
    "BUILTIN_RETRY_POLICIES",
    "ConditionNode",
    "Edge",
    "EndNode",
    "ModelAlias",
    "ModelNode",
    "Node",
    "NodeBase",
    "PipelineCheck",
    "PipelineSpec",
    "RetrySpec",
    "Timeouts",
    "ToolNode",
    "WorkflowMeta",
    "check_input",
    "check_pipeline",
    "load_pipeline",
    "parse_pipeline",
]

_T = TypeVar("_T")
_CONFIG: Final = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ModelAlias(BaseModel):
    """A ``models:`` entry: a name nodes use for a model, with its defaults."""

    model_config = _CONFIG

    model: str
    provider: str | None = None
    temperature: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_tokens: int | None = Field(default=None, gt=0)
    #: USD per million tokens, for a model genai-prices does not know (self-hosted): budgets
    #: (``cost_budget_usd``) price its calls with these. Both or neither.
    input_per_mtok: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    output_per_mtok: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _both_prices(self) -> ModelAlias:
        if (self.input_per_mtok is None) != (self.output_per_mtok is None):
            raise ValueError(
                "give both input_per_mtok and output_per_mtok (USD per million tokens)"
            )
        return self

    def prices(self) -> dict[str, float] | None:
        """The price override this entry sets for its model, if any."""
        if self.input_per_mtok is None or self.output_per_mtok is None:
            return None
        return {"input_per_mtok": self.input_per_mtok, "output_per_mtok": self.output_per_mtok}


class Timeouts(BaseModel):
    """The ``timeouts:`` section: defaults of every node and of the whole run."""

    model_config = _CONFIG

    node_timeout: Seconds = 300.0
    heartbeat_interval: Seconds | None = None
    workflow_timeout: Seconds | None = None
    approval_timeout: Seconds | None = None


class TokenBudget(BaseModel):
    """``workflow.token_budget``: caps on the run's model tokens."""

    model_config = _CONFIG

    total_tokens: int | None = Field(default=None, gt=0)
    input_tokens: int | None = Field(default=None, gt=0)
    output_tokens: int | None = Field(default=None, gt=0)


class WorkflowMeta(BaseModel):
    """The ``workflow:`` section: identity, entry node, input schema and defaults."""

    model_config = _CONFIG

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    version: str = "0.1.0"
    name: str | None = None
    description: str | None = None
    labels: dict[str, str] | list[str] | None = None
    start: str | None = None
    state_schema: dict[str, JsonValue] | None = None
    model: str = "gpt-4o-mini"
    heartbeat_timeout_seconds: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    retry: RetrySpec = Field(default_factory=RetrySpec)
    max_steps: int = Field(default=100, ge=1)
    escalate: str | None = None
    cost_budget_usd: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    token_budget: TokenBudget | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        # `version: 0.1` is a YAML float; the loader passes the raw text, this covers code.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("state_schema", mode="before")
    @classmethod
    def _schema(cls, value: object) -> object:
        if isinstance(value, dict):
            return normalize_schema(value)
        return value


class PipelineSpec(BaseModel):
    """A validated pipeline: the input of the pipeline workflow.

    Attributes:
        workflow: The ``workflow:`` section.
        nodes: Node id to node, in file order.
        policy: The pipeline's own policy (narrows the worker's, never widens it).
        models: Model aliases.
        retry_policies: Named retry policies (``retry_policy: NAME`` on a node).
        timeouts: Defaults for nodes and the run.
        mcp_servers: MCP servers by alias, from ``mcp.servers`` and a ``jamjet.toml`` beside
            the file (``${VAR}`` left as written: the worker expands it).
        remote_agents: A2A agents by alias, from ``a2a.remote_agents``.
        source: The file it was read from.
    """

    model_config = _CONFIG

    workflow: WorkflowMeta
    nodes: dict[str, Node]
    policy: Policy | None = None
    models: dict[str, ModelAlias] = Field(default_factory=dict)
    retry_policies: dict[str, RetrySpec] = Field(default_factory=dict)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    mcp_servers: dict[str, dict[str, JsonValue]] = Field(default_factory=dict)
    remote_agents: dict[str, dict[str, JsonValue]] = Field(default_factory=dict)
    source: str = "<string>"

    @property
    def start(self) -> str:
        """The first node: ``workflow.start``, else the first node in the file."""
        return self.workflow.start or next(iter(self.nodes))

    def retry_for(self, node: NodeBase) -> RetrySpec:
        """The retry policy of a node: its own, its named one, or the workflow's."""
        if node.retry is not None:
            return node.retry
        if node.retry_policy is not None:
            named = self.retry_policies.get(node.retry_policy)
            return named or BUILTIN_RETRY_POLICIES[node.retry_policy]
        return self.workflow.retry

    def model_for(self, name: str | None) -> tuple[str, ModelAlias | None]:
        """The model id a node's ``model`` names (through ``models:``), and its alias entry."""
        chosen = name or self.workflow.model
        alias = self.models.get(chosen)
        return (alias.model, alias) if alias is not None else (chosen, None)


#: JamJet's named retry policies.
BUILTIN_RETRY_POLICIES: Final[dict[str, RetrySpec]] = {
    "llm_default": RetrySpec(max_attempts=3, backoff=2.0),
    "io_default": RetrySpec(max_attempts=5, backoff=2.0),
    "fast": RetrySpec(max_attempts=2, backoff=1.0, initial_interval_seconds=1.0),
    "no_retry": RetrySpec(max_attempts=1),
}


@dataclass
class PipelineCheck:
    """Everything ``jamjet validate`` reports about one file.

    Attributes:
        spec: The validated pipeline, when it has no error.
        problems: Errors, in file order: each has file, line, node and a fix.
        warnings: What could not be checked here (a tool module or an MCP server not found).
    """

    spec: PipelineSpec | None
    problems: list[PipelineSpecError] = field(default_factory=list)
    warnings: list[PipelineSpecError] = field(default_factory=list)


def check_pipeline(
    text: str, filename: str = "<string>", *, base_dir: str | os.PathLike[str] | None = None
) -> PipelineCheck:
    """Validates a pipeline and returns every problem found, not only the first.

    Args:
        text: The YAML document.
        filename: Where the text came from, used in messages and kept as ``source``.
        base_dir: Where prompt files and ``jamjet.toml`` are looked up (default: the file's
            folder, when ``filename`` is a path).

    Returns:
        The spec (None when there are problems), the problems and the warnings.
    """
    try:
        root, data = load_yaml(text, what="pipelines")
    except YamlSourceError as exc:
        return PipelineCheck(None, [_yaml_error(exc, filename)])
    if base_dir is None and filename != "<string>":
        base_dir = os.path.dirname(os.path.abspath(filename))
    validator = _Validator(filename, root, None if base_dir is None else Path(base_dir))
    spec = validator.validate(data)
    problems = validator.problems
    return PipelineCheck(None if problems else spec, problems, validator.warnings)


def parse_pipeline(
    text: str, filename: str = "<string>", *, base_dir: str | os.PathLike[str] | None = None
) -> PipelineSpec:
    """Parses and validates a pipeline from YAML text.

    Args:
        text: The YAML document.
        filename: Where the text came from, used in error messages and kept as ``source``.
        base_dir: Where prompt files and ``jamjet.toml`` are looked up (default: the file's
            folder, when ``filename`` is a path).

    Returns:
        The validated pipeline.

    Raises:
        PipelineSpecError: The first problem found, with file, line, node and a fix.
    """
    check = check_pipeline(text, filename, base_dir=base_dir)
    if check.problems:
        raise check.problems[0]
    assert check.spec is not None
    return check.spec


def load_pipeline(path: str | os.PathLike[str]) -> PipelineSpec:
    """Reads, parses and validates a pipeline file.

    Args:
        path: The YAML file.

    Returns:
        The validated pipeline, with ``source`` set to ``path``.

    Raises:
        PipelineSpecError: The file cannot be read, or the pipeline is invalid.
    """
    file, text = read_file(path, what="pipeline file", error=PipelineSpecError)
    return parse_pipeline(text, file)


# --------------------------------------------------------------------------------------------
# Validation


_NODE_TYPES: Final[dict[str, type[AnyNode]]] = {
    "model": ModelNode,
    "tool": ToolNode,
    "mcp_tool": McpToolNode,
    "a2a_task": A2ATaskNode,
    "condition": ConditionNode,
    "branch": ConditionNode,
    "parallel": ParallelNode,
    "wait": WaitNode,
    "human_approval": HumanApprovalNode,
    "eval": EvalNode,
    "agent": AgentNode,
    "end": EndNode,
}
_SUPPORTED: Final = ", ".join(_NODE_TYPES)
_TOP_KEYS: Final = (
    "workflow",
    "nodes",
    "policy",
    "models",
    "retry_policies",
    "timeouts",
    "mcp",
    "a2a",
)
_EDGE_FIX: Final = (
    "write `next: <node id>`, or a list of edges: `- to: <node id>` with an optional "
    "`when: <condition>`"
)
_CONDITION_FIX: Final = f"conditions are expressions over `state`: {ALLOWED_SYNTAX}"
_TEMPLATE_FIX: Final = (
    "templates are Jinja2: {{ state.key }}, {{ state.items | join(', ') }}, "
    "{% if state.x %}...{% endif %}; check the braces and names"
)
_PROMPT_SUFFIXES: Final = (".md", ".txt", ".j2", ".jinja", ".jinja2", ".prompt", ".tmpl")
#: JamJet's old node-list shape: each key and its spelling now.
_OLD_SPELLINGS: Final[dict[str, str]] = {
    "start_node": "`workflow.start: <node id>`",
    "nodes": "a top-level `nodes:` mapping of node id to node (`nodes: {assess_risk: {...}}`)",
    "id": "the node's key in the `nodes:` mapping",
    "kind": "`type:`",
    "config": "the config's keys written on the node itself",
    "edges": "`next:` (a node id, or a list of `{to, when}`)",
    "condition": "`when:` on the edge",
    "prompt_template": "`prompt:` (with `{{ state.x }}` instead of `{{ x }}`)",
    "output_to_state": "`output_key: <state key>` (one key per node)",
    "fn": "`tool: <tool name>` on a tool node",
    "input_from_state": '`arguments: {param: "{{ state.key }}"}`',
    "agent_url": "`remote_agent:` on an a2a_task node",
    "server_url": "`server: <alias>` with the server under `mcp: {servers: ...}`",
    "structured_output": "`output_schema:` (a JSON Schema)",
    "timeout": "`timeout: 30s` on the node",
}


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://")) or "{{" in text


def _targets(node: BaseModel) -> list[tuple[str, tuple[str | int, ...]]]:
    """Every node id ``node`` may go to, with the path (under the node) that names it."""
    found: list[tuple[str, tuple[str | int, ...]]] = []
    if not isinstance(node, NodeBase):
        return found
    if isinstance(node, ConditionNode):
        for edge, path in node.routes():
            found.append((edge.to, path if isinstance(path[-1], str) else (*path, "to")))
        return found
    if isinstance(node.next, str):
        found.append((node.next, ("next",)))
    elif isinstance(node.next, list):
        found.extend((edge.to, ("next", index, "to")) for index, edge in enumerate(node.next))
    for attr in (
        "on_timeout",
        "fallback",
        "on_approve",
        "on_reject",
        "join",
        "retry_node",
        "escalate_to",
        "on_input_required",
    ):
        value = getattr(node, attr, None)
        if isinstance(value, str):
            found.append((value, (attr,)))
    if isinstance(node, ParallelNode):
        found.extend((branch, ("branches", index)) for index, branch in enumerate(node.branches))
    return found


def _forced_successor(node: BaseModel) -> str | None:
    """The node always run after ``node``, if there is no choice."""
    if isinstance(node, ConditionNode):
        routes = node.routes()
        first = routes[0][0] if routes else None
        return first.to if first is not None and first.when is None else None
    if not isinstance(node, NodeBase) or isinstance(
        node, WaitNode | HumanApprovalNode | EvalNode | ParallelNode
    ):
        # These may leave by another way (timeout, rejection, escalation, failure).
        return None
    if isinstance(node.next, str):
        return node.next
    if isinstance(node.next, list) and node.next and node.next[0].when is None:
        return node.next[0].to
    return None


class _Validator:
    def __init__(self, file: str, root: yaml.Node | None, base_dir: Path | None) -> None:
        self.file = file
        self.root = root
        self.base_dir = base_dir
        self.problems: list[PipelineSpecError] = []
        self.warnings: list[PipelineSpecError] = []

    def _error(
        self,
        reason: str,
        path: Sequence[str | int] = (),
        *,
        node: str | None = None,
        fix: str | None = None,
    ) -> PipelineSpecError:
        line = None if self.root is None else locate(self.root, path)[0]
        return PipelineSpecError(reason, file=self.file, line=line, node=node, fix=fix)

    def _report(self, error: PipelineSpecError) -> None:
        self.problems.append(error)

    def validate(self, data: object) -> PipelineSpec | None:
        if self.root is None or not isinstance(data, dict):
            kind = "empty" if data is None else f"a {type(data).__name__}"
            self._report(
                PipelineSpecError(
                    "the top level must be a mapping with 'workflow' and 'nodes', "
                    f"but it is {kind}",
                    file=self.file,
                    line=1 if self.root is None else node_line(self.root),
                    fix="start the file with `workflow:` (id, start) followed by `nodes:`",
                )
            )
            return None
        if self._old_shape(data):
            return None
        for key in data:
            if key not in _TOP_KEYS:
                self._report(self._unknown_top_key(key))
        meta = self._attempt(lambda: self._workflow(data))
        nodes = self._nodes(data)
        policy = None
        if "policy" in data:
            policy = self._attempt(lambda: self._policy(data["policy"], ("policy",)))
        extras = self._attempt(lambda: self._sections(data))
        if meta is None or nodes is None or extras is None:
            return None
        try:
            spec = PipelineSpec.model_validate(
                {"workflow": meta, "nodes": nodes, "policy": policy, "source": self.file, **extras}
            )
        except ValidationError as exc:
            self._report(self._from_pydantic(exc, (), PipelineSpec, "the pipeline"))
            return None
        self._check_graph(spec)
        return spec

    def _soft(self, check: Callable[..., None], *args: object, **kwargs: object) -> None:
        """Run one check, reporting its problem instead of stopping at it."""
        try:
            check(*args, **kwargs)
        except PipelineSpecError as err:
            self._report(err)

    def _attempt(self, step: Callable[[], _T]) -> _T | None:
        try:
            return step()
        except PipelineSpecError as err:
            self._report(err)
            return None

    # ----------------------------------------------------------------------------------------
    # sections

    def _old_shape(self, data: dict[object, object]) -> bool:
        """JamJet's old shape gets one problem per key, with its new spelling."""
        meta = data.get("workflow")
        old_meta = isinstance(meta, dict) and (
            "start_node" in meta or isinstance(meta.get("nodes"), list)
        )
        old_nodes = isinstance(data.get("nodes"), list)
        if not (old_meta or old_nodes):
            return False
        intro = (
            "this is JamJet's old pipeline shape (a list of nodes with kind/config/edges), "
            "which JamJet itself compiles to zero nodes"
        )
        found: list[tuple[tuple[str | int, ...], str]] = []
        if isinstance(meta, dict):
            for key in ("start_node", "nodes"):
                if key in meta:
                    found.append((("workflow", key), key))
        node_list = (
            meta.get("nodes")
            if isinstance(meta, dict) and isinstance(meta.get("nodes"), list)
            else data.get("nodes")
        )
        base: tuple[str | int, ...] = (
            ("workflow", "nodes")
            if old_meta and isinstance(meta, dict) and "nodes" in meta
            else ("nodes",)
        )
        if old_nodes:
            found.append((("nodes",), "nodes"))
        if isinstance(node_list, list):
            for index, item in enumerate(node_list):
                if not isinstance(item, dict):
                    continue
                for key in ("id", "kind", "config", "edges"):
                    if key in item:
                        found.append(((*base, index, key), key))
                config = item.get("config")
                if isinstance(config, dict):
                    for key in config:
                        if key in _OLD_SPELLINGS:
                            found.append(((*base, index, "config", key), str(key)))
                edges = item.get("edges")
                if isinstance(edges, list):
                    for e_index, edge in enumerate(edges):
                        if isinstance(edge, dict) and "condition" in edge:
                            found.append(
                                ((*base, index, "edges", e_index, "condition"), "condition")
                            )
        for path, key in found:
            node = None
            position = path[len(base)] if len(path) > len(base) else None
            if isinstance(position, int) and isinstance(node_list, list):
                item = node_list[position]
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    node = item["id"]
            self._report(
                self._error(
                    f"{intro}: '{key}' is written {_OLD_SPELLINGS[key]} now",
                    path,
                    node=node,
                    fix="docs/pipelines.md shows the whole shape, with every node type",
                )
            )
        return True

    def _unknown_top_key(self, key: object) -> PipelineSpecError:
        if key == "source":
            fix = "remove it: the loader sets `source` to the file's path"
        elif isinstance(key, str) and (close := did_you_mean(key, _TOP_KEYS)):
            fix = f"did you mean '{close}'?"
        else:
            fix = f"remove it; the top level has: {', '.join(_TOP_KEYS)}"
        return self._error(f"unknown top-level key '{key}'", (str(key),), fix=fix)

    def _workflow(self, data: dict[object, object]) -> WorkflowMeta:
        if "workflow" not in data:
            raise self._error(
                "missing the 'workflow' section",
                fix="add `workflow:` with at least `id:` (and `start:`, the first node)",
            )
        raw = data["workflow"]
        if isinstance(raw, dict) and isinstance(raw.get("version"), int | float):
            assert self.root is not None
            # Keep the version as written: YAML would read `1.10` as the float 1.1.
            version = node_at(self.root, ("workflow", "version"))
            if isinstance(version, yaml.ScalarNode):
                raw = {**raw, "version": str(version.value)}
        try:
            meta = WorkflowMeta.model_validate(raw)
        except ValidationError as exc:
            raise self._from_pydantic(
                exc, ("workflow",), WorkflowMeta, "the workflow section", shown="workflow."
            ) from None
        except ValueError as exc:  # the state schema's own check
            raise self._error(
                f"invalid state_schema: {exc}",
                ("workflow", "state_schema"),
                fix="write `field: type` (str, int, float, bool, list, dict) or JSON Schema",
            ) from None
        if meta.state_schema is not None:
            self._check_schema(meta.state_schema)
        return meta

    def _check_schema(self, schema: dict[str, JsonValue]) -> None:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            where = "/".join(str(part) for part in exc.path) or "the schema"
            raise self._error(
                f"state_schema is not valid JSON Schema at {where}: {exc.message}",
                ("workflow", "state_schema", *exc.path),
                fix="see https://json-schema.org/understanding-json-schema/ or use the short "
                "form `field: type`",
            ) from None
        for name, default in _schema_defaults(schema):
            problems = list(Draft202012Validator(schema).iter_errors({name: default}))
            bad = [p for p in problems if p.path and p.path[0] == name]
            if bad:
                raise self._error(
                    f"state_schema: the default of '{name}' does not match its own type: "
                    f"{bad[0].message}",
                    ("workflow", "state_schema", "properties", name, "default"),
                    fix=f"give '{name}' a default of its declared type",
                )

    def _sections(self, data: dict[object, object]) -> dict[str, object]:
        extras: dict[str, object] = {}
        for key, model, what in (
            ("models", dict[str, ModelAlias], "models"),
            ("retry_policies", dict[str, RetrySpec], "retry_policies"),
        ):
            if key not in data:
                continue
            raw = data[key]
            if key == "models" and isinstance(raw, dict):
                raw = {
                    name: {"model": value} if isinstance(value, str) else value
                    for name, value in raw.items()
                }
            try:
                extras[key] = TypeAdapter(model).validate_python(raw)
            except ValidationError as exc:
                assert self.root is not None
                picked = pick_error(exc, self.root, (key,))
                raise PipelineSpecError(
                    f"'{what}.{display_path(picked.path)}': {picked.error['msg']}",
                    file=self.file,
                    line=picked.line,
                    fix=f"see the `{what}:` section in docs/pipelines.md",
                ) from None
        if "timeouts" in data:
            try:
                extras["timeouts"] = Timeouts.model_validate(data["timeouts"])
            except ValidationError as exc:
                raise self._from_pydantic(
                    exc, ("timeouts",), Timeouts, "the timeouts section", shown="timeouts."
                ) from None
        extras["mcp_servers"] = self._mcp(data)
        extras["remote_agents"] = self._a2a(data)
        return extras

    def _block(
        self, data: dict[object, object], key: str, inner: str
    ) -> dict[str, dict[str, JsonValue]]:
        raw = data.get(key)
        if raw is None:
            return {}
        if not isinstance(raw, dict) or set(raw) - {inner}:
            extra = sorted(str(k) for k in raw) if isinstance(raw, dict) else []
            raise self._error(
                f"'{key}' must be a mapping with '{inner}:'"
                + (f", found {extra}" if extra else ""),
                (key,),
                fix=f"write `{key}: {{{inner}: {{ALIAS: {{...}}}}}}`",
            )
        entries = raw.get(inner) or {}
        if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
            raise self._error(
                f"'{key}.{inner}' must map each alias to its settings",
                (key, inner),
                fix=f"write `{inner}: {{ALIAS: {{...}}}}`",
            )
        return {str(k): v for k, v in entries.items()}

    def _mcp(self, data: dict[object, object]) -> dict[str, dict[str, JsonValue]]:
        """The MCP servers: a ``jamjet.toml`` beside the file, then the file's ``mcp:`` block
        (which wins for an alias declared in both), validated now, kept as plain settings."""
        from jamjet_temporal.mcp._config import read_jamjet_toml, servers_from_mapping

        servers: dict[str, McpServer] = {}
        if self.base_dir is not None and (self.base_dir / "jamjet.toml").is_file():
            try:
                servers.update(read_jamjet_toml(self.base_dir / "jamjet.toml"))
            except ConfigFileError as err:
                raise PipelineSpecError(
                    err.reason, file=err.file, line=err.line, fix=err.fix
                ) from None
        block = self._block(data, "mcp", "servers")
        for alias, entry in block.items():
            try:
                servers.update(servers_from_mapping({"servers": {alias: entry}}, self.file))
            except ConfigFileError as err:
                raise self._error(err.reason, ("mcp", "servers", alias), fix=err.fix) from None
        return {alias: self._settings(server) for alias, server in servers.items()}

    def _settings(self, server: McpServer) -> dict[str, JsonValue]:
        """A server's settings as data; a stdio server starts in the pipeline's folder."""
        settings: dict[str, JsonValue] = server.model_dump(mode="json", exclude_none=True)
        if server.transport == "stdio" and self.base_dir is not None:
            cwd = Path(server.cwd) if server.cwd else Path()
            if "${" not in str(cwd) and not cwd.is_absolute():
                settings["cwd"] = str((self.base_dir / cwd).resolve())
        return settings

    def _a2a(self, data: dict[object, object]) -> dict[str, dict[str, JsonValue]]:
        """The remote A2A agents of the ``a2a:`` block, validated now, kept as plain data."""
        from jamjet_temporal.a2a._config import agents_from_mapping

        agents: dict[str, dict[str, JsonValue]] = {}
        for alias, entry in self._block(data, "a2a", "remote_agents").items():
            try:
                found = agents_from_mapping({"remote_agents": {alias: entry}}, self.file)
            except ConfigFileError as err:
                raise self._error(
                    err.reason, ("a2a", "remote_agents", alias), fix=err.fix
                ) from None
            agents.update(
                {
                    name: agent.model_dump(mode="json", exclude_none=True)
                    for name, agent in found.items()
                }
            )
        return agents

    # ----------------------------------------------------------------------------------------
    # nodes

    def _nodes(self, data: dict[object, object]) -> dict[str, AnyNode] | None:
        raw_nodes = data.get("nodes")
        if "nodes" not in data:
            self._report(
                self._error(
                    "missing the 'nodes' section",
                    fix=f"add `nodes:` with one entry per node ({_SUPPORTED})",
                )
            )
            return None
        if not isinstance(raw_nodes, dict) or not raw_nodes:
            got = "empty" if not raw_nodes else f"a {type(raw_nodes).__name__}"
            self._report(
                self._error(
                    f"'nodes' must be a mapping of node id to node, but it is {got}",
                    ("nodes",),
                    fix="add nodes like `classify:` with `type: model` and a `prompt:` under it",
                )
            )
            return None
        nodes: dict[str, AnyNode] = {}
        ok = True
        for node_id, raw in raw_nodes.items():
            if not isinstance(node_id, str) or not node_id:
                self._report(
                    self._error(
                        f"node id {short(node_id)} is not text",
                        ("nodes", str(node_id)),
                        fix="quote the id, e.g. `'1':`, or use a name",
                    )
                )
                ok = False
                continue
            node = self._attempt(functools.partial(self._node, node_id, raw))
            if node is None:
                ok = False
            else:
                nodes[node_id] = node
        return nodes if ok else None

    def _node(self, node_id: str, raw: object) -> AnyNode:
        path = ("nodes", node_id)
        if not isinstance(raw, dict):
            got = "empty" if raw is None else f"a {type(raw).__name__} ({short(raw)})"
            raise self._error(
                f"a node must be a mapping, but this one is {got}",
                path,
                node=node_id,
                fix=f"give it `type:` ({_SUPPORTED}) and that type's keys",
            )
        if "type" not in raw:
            raise self._error(
                "the node has no 'type'",
                path,
                node=node_id,
                fix=f"add `type:` with one of: {_SUPPORTED}",
            )
        node_type = raw["type"]
        model = _NODE_TYPES.get(node_type) if isinstance(node_type, str) else None
        if model is None:
            raise self._bad_type(node_id, node_type)
        self._check_spellings(node_id, raw, model)
        if model is ModelNode and isinstance(raw.get("prompt"), str):
            raw = {**raw, "prompt": self._prompt_text(node_id, raw["prompt"])}
        elif model is ModelNode and "prompt" not in raw:
            default = self.base_dir / "prompts" / f"{node_id}.md" if self.base_dir else None
            if default is not None and default.is_file():
                raw = {**raw, "prompt": default.read_text(encoding="utf-8")}
        policy = None
        if "policy" in raw and model is not EndNode:
            try:
                policy = self._policy(raw["policy"], (*path, "policy"))
            except PipelineSpecError as err:
                raise PipelineSpecError(
                    err.reason, file=err.file, line=err.line, node=node_id, fix=err.fix
                ) from None
            raw = {**raw, "policy": None}
        article = "an" if node_type[0] in "aeiou" else "a"
        what = f"{article} {node_type} node"
        try:
            node = model.model_validate(raw)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            unknown = [e["loc"][0] for e in errors if e["type"] == "extra_forbidden" and e["loc"]]
            if len(unknown) < len(errors):
                raise self._from_pydantic(exc, path, model, what, node=node_id) from None
            # Only unknown keys (typos): report each, then check the rest of the node and the
            # graph as if they were not there, so one run of validate shows every problem.
            for key in unknown:
                one = ValidationError.from_exception_data(
                    exc.title,
                    [e for e in errors if e["loc"][:1] == (key,)],  # type: ignore[misc]
                )
                self._report(self._from_pydantic(one, path, model, what, node=node_id))
            node = model.model_validate({k: v for k, v in raw.items() if k not in unknown})
        return node if policy is None else node.model_copy(update={"policy": policy})

    def _check_spellings(
        self, node_id: str, raw: dict[object, object], model: type[BaseModel]
    ) -> None:
        """Two spellings of one field on one node (``system`` and ``system_prompt``)."""
        for name, info in model.model_fields.items():
            alias = info.validation_alias
            if not isinstance(alias, AliasChoices):
                continue
            given = [
                str(choice) for choice in alias.choices if isinstance(choice, str) and choice in raw
            ]
            if len(given) > 1:
                raise self._error(
                    f"'{given[0]}' and '{given[1]}' are two spellings of one field",
                    ("nodes", node_id, given[1]),
                    node=node_id,
                    fix=f"keep one of them (`{name}`)",
                )

    def _prompt_text(self, node_id: str, prompt: str) -> str:
        """An inline prompt as it is, or the text of the prompt file it names."""
        candidate = prompt.strip()
        if "\n" in candidate or "{" in candidate or not candidate.endswith(_PROMPT_SUFFIXES):
            return prompt
        if self.base_dir is None:
            raise self._error(
                f"prompt names the file '{candidate}', but the pipeline was not read from a file",
                ("nodes", node_id, "prompt"),
                node=node_id,
                fix="load the pipeline from its file, or write the prompt inline",
            )
        file = (self.base_dir / candidate).resolve()
        if not file.is_file():
            raise self._error(
                f"prompt file '{candidate}' not found (looked in {self.base_dir})",
                ("nodes", node_id, "prompt"),
                node=node_id,
                fix="paths are relative to the pipeline file; or write the prompt inline",
            )
        return file.read_text(encoding="utf-8")

    def _policy(self, data: object, path: tuple[str | int, ...]) -> Policy:
        assert self.root is not None
        node = node_at(self.root, path)
        assert node is not None
        try:
            return policy_from_node(node, data, self.file)
        except PolicyError as err:
            raise PipelineSpecError(err.reason, file=err.file, line=err.line, fix=err.fix) from None

    def _bad_type(self, node_id: str, node_type: object) -> PipelineSpecError:
        path = ("nodes", node_id, "type")
        if not isinstance(node_type, str):
            reason = f"the node type must be text, got {short(node_type)}"
            fix = f"use one of: {_SUPPORTED}"
        else:
            reason = f"unknown node type '{node_type}'"
            close = did_you_mean(node_type, list(_NODE_TYPES))
            hint = f"did you mean '{close}'? " if close else ""
            fix = f"{hint}node types: {_SUPPORTED}"
        return self._error(reason, path, node=node_id, fix=fix)

    def _from_pydantic(
        self,
        exc: ValidationError,
        prefix: tuple[str, ...],
        model: type[BaseModel],
        what: str,
        *,
        node: str | None = None,
        shown: str = "",
    ) -> PipelineSpecError:
        assert self.root is not None
        picked = pick_error(exc, self.root, prefix)
        reason, fix = _explain(picked.error, picked.path, model, what, shown)
        return PipelineSpecError(reason, file=self.file, line=picked.line, node=node, fix=fix)

    # ----------------------------------------------------------------------------------------
    # graph

    def _check_graph(self, spec: PipelineSpec) -> None:
        nodes = spec.nodes
        start = spec.workflow.start
        if start is not None and start not in nodes:
            self._report(
                self._error(
                    f"workflow.start names '{start}', which is not a node",
                    ("workflow", "start"),
                    fix=self._node_fix(start, nodes),
                )
            )
            return
        if spec.workflow.escalate is not None and not self._is_target(
            spec.workflow.escalate, nodes
        ):
            self._report(
                self._error(
                    f"workflow.escalate names '{spec.workflow.escalate}', which is not a node",
                    ("workflow", "escalate"),
                    fix=self._node_fix(spec.workflow.escalate, nodes),
                )
            )
        before = len(self.problems)
        for node_id, node in nodes.items():
            self._attempt(functools.partial(self._check_node, spec, node_id, node))
        if len(self.problems) > before:
            return
        self._attempt(lambda: self._check_reachable(spec.start, spec))
        self._attempt(lambda: self._check_loops(nodes))

    @staticmethod
    def _is_target(target: str, nodes: Mapping[str, object]) -> bool:
        return target in nodes or target == END

    def _node_fix(self, missing: str, nodes: Mapping[str, object]) -> str:
        close = did_you_mean(missing, list(nodes))
        known = ", ".join(nodes)
        return (
            f"did you mean '{close}'?" if close else f"use one of the node ids ({known}) or `end`"
        )

    def _check_node(self, spec: PipelineSpec, node_id: str, node: AnyNode) -> None:
        at: tuple[str | int, ...] = ("nodes", node_id)
        if isinstance(node, ModelNode | AgentNode):
            for name in ("system", "prompt"):
                text = getattr(node, name)
                if text is not None:
                    self._soft(self._check_template, text, (*at, name), node_id)
            self._check_model(spec, node.model, (*at, "model"), node_id)
        if isinstance(node, ModelNode) and node.output_schema is not None:
            self._soft(self._check_json_schema, node.output_schema, (*at, "output_schema"), node_id)
        if isinstance(node, AgentNode) and node.input is not None:
            self._soft(self._check_arguments, node.input, (*at, "input"), node_id)
        if isinstance(node, ToolNode | McpToolNode):
            self._soft(self._check_arguments, node.arguments, (*at, "arguments"), node_id)
            server = node.server
            if server is not None and server not in spec.mcp_servers:
                self.warnings.append(
                    self._error(
                        f"MCP server '{server}' is not declared in this file's `mcp.servers` "
                        "or a jamjet.toml beside it",
                        (*at, "server"),
                        node=node_id,
                        fix="declare it under `mcp: {servers: {" + server + ": {command: ...}}}`, "
                        "or configure it on the worker (JamJetConfig(mcp_servers=...))",
                    )
                )
        if isinstance(node, A2ATaskNode):
            self._soft(self._check_arguments, node.input, (*at, "input"), node_id)
            self._soft(self._check_template, node.remote_agent, (*at, "remote_agent"), node_id)
            if not _is_url(node.remote_agent) and node.remote_agent not in spec.remote_agents:
                self.warnings.append(
                    self._error(
                        f"remote agent '{node.remote_agent}' is not declared in "
                        "`a2a.remote_agents`",
                        (*at, "remote_agent"),
                        node=node_id,
                        fix="declare it under `a2a: {remote_agents: {ALIAS: {url: ...}}}`, or "
                        "give its URL",
                    )
                )
        if isinstance(node, HumanApprovalNode):
            self._soft(self._check_arguments, node.arguments, (*at, "arguments"), node_id)
            if node.description is not None:
                self._soft(self._check_template, node.description, (*at, "description"), node_id)
        if isinstance(node, EvalNode):
            self._soft(self._check_eval, spec, node_id, node)
        if isinstance(node, NodeBase) and node.retry_policy is not None:
            known = [*spec.retry_policies, *BUILTIN_RETRY_POLICIES]
            if node.retry_policy not in known:
                close = did_you_mean(node.retry_policy, known)
                raise self._error(
                    f"retry_policy '{node.retry_policy}' is not defined",
                    (*at, "retry_policy"),
                    node=node_id,
                    fix=(f"did you mean '{close}'? " if close else "")
                    + f"define it under `retry_policies:` or use one of {', '.join(known)}",
                )
        if isinstance(node, ConditionNode):
            self._soft(self._check_routes, node_id, node, spec.nodes)
        elif isinstance(node, NodeBase):
            self._soft(self._check_next, node_id, node, spec.nodes)
        for target, path in _targets(node):
            if not self._is_target(target, spec.nodes):
                self._report(
                    self._error(
                        f"{_what_names(path)} '{target}', which is not a node",
                        (*at, *path),
                        node=node_id,
                        fix=self._node_fix(target, spec.nodes),
                    )
                )
        if isinstance(node, ParallelNode):
            join = node.join or (node.next if isinstance(node.next, str) else None)
            if join is None:
                raise self._error(
                    "a parallel node needs `join:` (or `next:`): the node its branches meet at",
                    at,
                    node=node_id,
                    fix="add `join: <node id>`",
                )

    def _check_model(
        self, spec: PipelineSpec, model: str | None, path: tuple[str | int, ...], node: str
    ) -> None:
        del spec, model, path, node  # any model id is accepted; aliases resolve at run time

    def _check_json_schema(
        self, schema: dict[str, JsonValue], path: tuple[str | int, ...], node: str
    ) -> None:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise self._error(
                f"output_schema is not valid JSON Schema: {exc.message}",
                (*path, *exc.path),
                node=node,
                fix="give a JSON Schema object, e.g. {type: object, properties: {...}}",
            ) from None

    def _check_eval(self, spec: PipelineSpec, node_id: str, node: EvalNode) -> None:
        at = ("nodes", node_id)
        for index, scorer in enumerate(node.scorers):
            if isinstance(scorer, AssertionScorer):
                for c_index, check in enumerate(scorer.checks):
                    # `output` is the value evaluated (JamJet's templates write output['x']).
                    self._check_condition(
                        check,
                        (*at, "scorers", index, "checks", c_index),
                        node_id,
                        names=("output",),
                    )
        if node.input is not None:
            self._check_condition(node.input, (*at, "input"), node_id)
        if (
            node.on_fail == "escalate"
            and node.escalate_to is None
            and spec.workflow.escalate is None
        ):
            raise self._error(
                "on_fail: escalate needs a node to escalate to",
                (*at, "on_fail"),
                node=node_id,
                fix="add `escalate_to: <node id>` to the node (or `escalate:` to the workflow)",
            )
        if node.retry_node is not None and node.retry_node in spec.nodes:
            target = spec.nodes[node.retry_node]
            if not isinstance(target, ModelNode | AgentNode):
                raise self._error(
                    f"retry_node '{node.retry_node}' is a {target.type} node; feedback can only "
                    "be given to a model or agent node",
                    (*at, "retry_node"),
                    node=node_id,
                    fix="name the model or agent node whose output this node evaluates",
                )

    def _check_next(self, node_id: str, node: NodeBase, nodes: Mapping[str, object]) -> None:
        path = ("nodes", node_id, "next")
        nxt = node.next
        if not isinstance(nxt, list):
            return
        if not nxt:
            raise self._error(
                "'next' is an empty list of edges",
                path,
                node=node_id,
                fix="add edges, or remove `next` to end the pipeline after this node",
            )
        self._check_edges(node_id, [(edge, ("next", index)) for index, edge in enumerate(nxt)])

    def _check_routes(self, node_id: str, node: ConditionNode, nodes: Mapping[str, object]) -> None:
        routes = node.routes()
        if not routes:
            raise self._error(
                "a condition node needs routes, but this one has none",
                ("nodes", node_id),
                node=node_id,
                fix="add `conditions: [{if: <condition>, next: <node id>}]` and `default:`, or "
                "`next:` as a list of `{to, when}` edges",
            )
        self._check_edges(node_id, routes)

    def _check_edges(self, node_id: str, routes: list[tuple[Edge, tuple[str | int, ...]]]) -> None:
        for index, (edge, path) in enumerate(routes):
            at = ("nodes", node_id, *path)
            if edge.when is None:
                if index < len(routes) - 1:
                    skipped = ", ".join(f"'{later.to}'" for later, _ in routes[index + 1 :])
                    raise self._error(
                        f"the route to '{edge.to}' has no condition, so it is always taken and "
                        f"the routes after it (to {skipped}) can never be",
                        at,
                        node=node_id,
                        fix="move the route without a condition last, or give it a `when`",
                    )
                continue
            key = path[-1] if isinstance(path[-1], str) else "when"
            cond_path = (
                at
                if key in ("if_true", "if_false")
                else (*at, _written_key(self.root, at, ("when", "if", "condition")))
            )
            self._check_condition(edge.when, cond_path, node_id)

    def _check_condition(
        self, text: str, path: tuple[str | int, ...], node: str, *, names: tuple[str, ...] = ()
    ) -> None:
        try:
            compile_condition(text, names=names)
        except ValueError as exc:
            raise self._error(
                f"invalid condition {text!r}: {exc}", path, node=node, fix=_CONDITION_FIX
            ) from None

    def _check_arguments(self, value: JsonValue, path: tuple[str | int, ...], node: str) -> None:
        if isinstance(value, str):
            self._check_template(value, path, node)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._check_arguments(item, (*path, index), node)
        elif isinstance(value, dict):
            for key, item in value.items():
                self._check_arguments(item, (*path, key), node)

    def _check_template(self, text: str, path: tuple[str | int, ...], node: str) -> None:
        try:
            check_template(text)
        except TemplateSyntaxError as exc:
            path = (
                (
                    *path[:2],
                    _written_key(
                        self.root, path[:2], (str(path[2]), *_ALIASES.get(str(path[2]), ()))
                    ),
                    *path[3:],
                )
                if len(path) > 2
                else path
            )
            line = None if self.root is None else locate(self.root, path)[0]
            value = None if self.root is None else node_at(self.root, path)
            if isinstance(value, yaml.ScalarNode) and value.style == "|":
                # A literal block keeps its lines: point at the template's own line.
                line = node_line(value) + exc.line
            raise PipelineSpecError(
                f"invalid template in '{display_path(path[2:])}': {exc}",
                file=self.file,
                line=line,
                node=node,
                fix=_TEMPLATE_FIX,
            ) from None

    def _check_reachable(self, start: str, spec: PipelineSpec) -> None:
        nodes = spec.nodes
        reached = {start}
        queue = [start]
        while queue:
            for target, _ in _targets(nodes[queue.pop()]):
                if target not in reached and target in nodes:
                    reached.add(target)
                    queue.append(target)
        escalate = spec.workflow.escalate
        if escalate is not None and escalate in nodes:
            reached.add(escalate)
            queue.append(escalate)
            while queue:
                for target, _ in _targets(nodes[queue.pop()]):
                    if target not in reached and target in nodes:
                        reached.add(target)
                        queue.append(target)
        unreachable = [node_id for node_id in nodes if node_id not in reached]
        # A bare `end` node nothing names is JamJet's usual closing line: harmless.
        unreachable = [n for n in unreachable if not (n == END and isinstance(nodes[n], EndNode))]
        if unreachable:
            raise self._error(
                f"not reachable from the start node '{start}': {', '.join(unreachable)}",
                ("nodes", unreachable[0]),
                node=unreachable[0],
                fix="link them from a reachable node with `next`, or remove them",
            )

    def _check_loops(self, nodes: Mapping[str, AnyNode]) -> None:
        # Each node has at most one forced successor, so following them from every node finds
        # each loop with no way out exactly once; a loop that passes a condition is allowed
        # (workflow.max_steps still bounds it at run time).
        done: set[str] = set()
        for first in nodes:
            path: list[str] = []
            on_path: set[str] = set()
            current: str | None = first
            while current is not None and current not in done and current not in on_path:
                path.append(current)
                on_path.add(current)
                successor = _forced_successor(nodes[current])
                current = successor if successor in nodes else None
            if current is not None and current in on_path:
                loop = path[path.index(current) :]
                last = loop[-1]
                where = next(
                    (at for target, at in _targets(nodes[last]) if target == loop[0]), ("next",)
                )
                raise self._error(
                    "these nodes loop forever with no condition to leave the loop: "
                    + " -> ".join([*loop, loop[0]]),
                    ("nodes", last, *where),
                    node=last,
                    fix="route through a condition node with a `when` edge that leaves the "
                    "loop, or point one of these `next`s elsewhere",
                )
            done.update(path)


_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "system": ("system_prompt",),
    "arguments": ("input", "args"),
    "description": ("message", "prompt"),
    "remote_agent": ("agent_url", "agent_uri"),
}


def _what_names(path: tuple[str | int, ...]) -> str:
    """How a message names the key that points at a node: "edge 2 goes to", "'next' names"."""
    if len(path) >= 2 and isinstance(path[1], int):
        kind = {"next": "edge", "conditions": "condition", "branches": "branch"}[str(path[0])]
        return f"{kind} {path[1] + 1} " + ("is" if kind == "branch" else "goes to")
    return f"'{display_path(path)}' names"


def _written_key(root: yaml.Node | None, at: Sequence[str | int], choices: Sequence[str]) -> str:
    """Which of a field's spellings the file uses under ``at`` (the first, if none)."""
    if root is None:
        return choices[0]
    node = node_at(root, at)
    if isinstance(node, yaml.MappingNode):
        written = {key.value for key, _ in node.value if isinstance(key, yaml.ScalarNode)}
        for choice in choices:
            if choice in written:
                return choice
    return choices[0]


def _schema_defaults(schema: Mapping[str, JsonValue]) -> list[tuple[str, JsonValue]]:
    props = schema.get("properties")
    if not isinstance(props, dict):
        return []
    return [
        (name, spec["default"])
        for name, spec in props.items()
        if isinstance(spec, dict) and "default" in spec
    ]


def _yaml_error(exc: YamlSourceError, file: str) -> PipelineSpecError:
    duplicate = exc.duplicate
    if duplicate is None:
        return PipelineSpecError(exc.reason, file=file, line=exc.line, fix=exc.fix)
    name, path = duplicate.name, duplicate.path
    if path == ("nodes",):
        return PipelineSpecError(
            f"node '{name}' is defined twice (first at line {duplicate.first_line})",
            file=file,
            line=duplicate.line,
            node=name,
            fix="give one of them another id, or merge them",
        )
    in_node = len(path) >= 2 and path[0] == "nodes"
    return PipelineSpecError(
        exc.reason,
        file=file,
        line=exc.line,
        node=str(path[1]) if in_node else None,
        fix=exc.fix,
    )


def _explain(
    error: ErrorDetails,
    path: tuple[str | int, ...],
    model: type[BaseModel],
    what: str,
    shown: str,
) -> tuple[str, str]:
    """Turns one pydantic error into a reason and a fix, in pipeline terms.

    ``path`` is relative to ``model``; ``shown`` prefixes it in messages (``"workflow."``).
    """
    kind = error["type"]
    last = path[-1] if path else ""
    field = shown + display_path(path)
    given = short(error.get("input"))
    if kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
        if "is not a duration" in message:
            return f"'{field}': {message}", f"write '{field}' as seconds or as 30s, 5m, 2h, 1d"
        return f"'{field}': {message}", f"change '{field}' as the message says"
    if kind == "extra_forbidden":
        owner = model_at(model, path[:-1])
        allowed = [name for name in owner.model_fields if name != "type"] if owner else []
        if did_you_mean(str(last), allowed) is None:
            reason, _ = explain_error(error, path, model, what, shown, hidden=("type",))
            if model is EndNode and last == "next":
                return reason, "an end node finishes the pipeline and has no `next`; remove it"
            others = [name for name, cls in _NODE_TYPES.items() if last in cls.model_fields]
            belongs = f"'{last}' is a key of {'/'.join(others)} nodes; " if others else ""
            return reason, f"{belongs}remove it (allowed here: {', '.join(allowed)})"
    elif kind == "missing":
        if path[:1] == ("next",):
            return f"edge '{display_path(path[:-1])}' has no '{last}'", _EDGE_FIX
    elif kind != "invalid_key" and path:
        if path == ("next",):
            return f"'next' must be a node id or a list of edges, got {given}", _EDGE_FIX
        if path[:1] == ("next",) and len(path) == 2:
            return f"edge '{field}' must be a mapping, got {given}", _EDGE_FIX
        if kind == "string_pattern_mismatch":
            return (
                f"'{field}': {error['msg']}, got {given}",
                f"use only letters, digits, '_', '.' and '-' in '{field}'",
            )
    return explain_error(error, path, model, what, shown, hidden=("type",))


def check_input(spec: PipelineSpec, given: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """The run's initial state: ``given`` with the schema's defaults, checked against it.

    Args:
        spec: The pipeline.
        given: The ``--input`` object.

    Returns:
        The initial state.

    Raises:
        PipelineInputError: A required field is missing or a value has the wrong type; the
            message names each field and shows an ``--input`` example.
    """
    import json

    from jsonschema import Draft202012Validator

    schema = spec.workflow.state_schema
    state = apply_defaults(schema, given)
    if schema is None:
        return state
    problems: list[str] = []
    fields: list[str] = []
    for error in sorted(Draft202012Validator(schema).iter_errors(state), key=str):
        if error.validator == "required" and isinstance(error.instance, dict):
            names = [n for n in error.validator_value if n not in error.instance]
            fields += names
            problems += [f"missing required input '{name}'" for name in names]
        else:
            where = ".".join(str(part) for part in error.absolute_path) or "the input"
            if error.absolute_path:
                fields.append(str(error.absolute_path[0]))
            problems.append(f"'{where}': {error.message}")
    if not problems:
        return state
    example = json.dumps(input_example(schema, list(dict.fromkeys(fields))))
    raise PipelineInputError(
        f"{spec.source}: the input does not match workflow.state_schema: "
        + "; ".join(problems)
        + f" (give it with --input '{example}')"
    )
