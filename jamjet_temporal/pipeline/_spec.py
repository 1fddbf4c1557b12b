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
run (shape and types, node types, edge targets, ``when`` expressions, ``{{ state.x }}``
templates, reachability, loops that can never exit) and report the first problem as a
:class:`~jamjet_temporal.errors.PipelineSpecError` with the file, line, node and a fix. The
resulting :class:`PipelineSpec` is the input of the pipeline workflow.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Annotated, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
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
from jamjet_temporal.errors import PipelineSpecError, PolicyError
from jamjet_temporal.pipeline._expr import ALLOWED_SYNTAX, compile_condition
from jamjet_temporal.pipeline._template import TemplateSyntaxError, check_template
from jamjet_temporal.policy import Policy
from jamjet_temporal.policy._load import policy_from_node

__all__ = [
    "ConditionNode",
    "Edge",
    "EndNode",
    "ModelNode",
    "Node",
    "NodeBase",
    "PipelineSpec",
    "RetrySpec",
    "ToolNode",
    "WorkflowMeta",
    "load_pipeline",
    "parse_pipeline",
]

_CONFIG: Final = ConfigDict(frozen=True, extra="forbid")


class Edge(BaseModel):
    """An outgoing edge: go to ``to`` if ``when`` is true (or has no ``when``)."""

    model_config = _CONFIG

    to: str
    when: str | None = None


class RetrySpec(BaseModel):
    """Retry policy for a node's activity."""

    model_config = _CONFIG

    max_attempts: int = Field(default=3, ge=1)
    initial_interval_seconds: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    backoff: float = Field(default=2.0, ge=1, allow_inf_nan=False)
    max_interval_seconds: float = Field(default=30.0, gt=0, allow_inf_nan=False)


class NodeBase(BaseModel):
    """Fields shared by the node types that do work or route (all but ``end``)."""

    model_config = _CONFIG

    label: str | None = None
    next: str | list[Edge] | None = None
    timeout_seconds: float = Field(default=300.0, gt=0, allow_inf_nan=False)
    heartbeat_timeout_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    retry: RetrySpec | None = None
    policy: Policy | None = None


class ModelNode(NodeBase):
    """Calls a language model with ``prompt`` (and ``system``); both are templates."""

    type: Literal["model"]
    model: str | None = None
    system: str | None = None
    prompt: str
    output_key: str | None = None
    max_tokens: int | None = Field(default=None, gt=0)


class ToolNode(NodeBase):
    """Calls a registered tool; string ``arguments`` are templates."""

    type: Literal["tool"]
    tool: str
    arguments: dict[str, JsonValue] = Field(default_factory=dict)
    output_key: str | None = None


class ConditionNode(NodeBase):
    """Does no work, only routes: its ``next`` is a list of edges."""

    type: Literal["condition"]


class EndNode(BaseModel):
    """Ends the pipeline; its result is ``state[output]``, or the whole state."""

    model_config = _CONFIG

    type: Literal["end"]
    label: str | None = None
    output: str | None = None


Node = Annotated[ModelNode | ToolNode | ConditionNode | EndNode, Field(discriminator="type")]


class WorkflowMeta(BaseModel):
    """The ``workflow:`` section: identity, entry node and defaults for every node."""

    model_config = _CONFIG

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    version: str = "0.1.0"
    start: str
    description: str | None = None
    model: str = "gpt-4o-mini"
    heartbeat_timeout_seconds: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    retry: RetrySpec = Field(default_factory=RetrySpec)
    max_steps: int = Field(default=100, ge=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        # `version: 0.1` is a YAML float; the loader passes the raw text, this covers code.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value


class PipelineSpec(BaseModel):
    """A validated pipeline: the input of the pipeline workflow."""

    model_config = _CONFIG

    workflow: WorkflowMeta
    nodes: dict[str, Node]
    policy: Policy | None = None
    source: str = "<string>"


def parse_pipeline(text: str, filename: str = "<string>") -> PipelineSpec:
    """Parses and validates a pipeline from YAML text.

    Args:
        text: The YAML document.
        filename: Where the text came from, used in error messages and kept as ``source``.

    Returns:
        The validated pipeline.

    Raises:
        PipelineSpecError: The first problem found, with file, line, node and a fix.
    """
    try:
        root, data = load_yaml(text, what="pipelines")
    except YamlSourceError as exc:
        raise _yaml_error(exc, filename) from None
    return _Validator(filename, root).validate(data)


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


_AnyNode = ModelNode | ToolNode | ConditionNode | EndNode
_NODE_TYPES: Final[dict[str, type[_AnyNode]]] = {
    "model": ModelNode,
    "tool": ToolNode,
    "condition": ConditionNode,
    "end": EndNode,
}
_PLANNED_TYPES: Final = ("human_approval", "mcp_tool", "a2a_task")
_SUPPORTED: Final = "model, tool, condition, end"
_TOP_KEYS: Final = ("workflow", "nodes", "policy")
_EDGE_FIX: Final = (
    "write `next: <node id>`, or a list of edges: `- to: <node id>` with an optional "
    "`when: <condition>`"
)
_CONDITION_FIX: Final = f"conditions are Python expressions over `state`; allowed: {ALLOWED_SYNTAX}"
_TEMPLATE_FIX: Final = (
    "reference values as {{ state.key }} or {{ state.items.0.name }}; "
    "to keep literal braces, write '{ {' or '} }'"
)


def _successors(node: BaseModel) -> list[str]:
    if not isinstance(node, NodeBase) or node.next is None:
        return []
    if isinstance(node.next, str):
        return [node.next]
    return [edge.to for edge in node.next]


def _forced_successor(node: BaseModel) -> str | None:
    """The node always run after ``node``, if there is no choice."""
    if not isinstance(node, NodeBase) or node.next is None:
        return None
    if isinstance(node.next, str):
        return node.next
    first = node.next[0] if node.next else None
    return first.to if first is not None and first.when is None else None


class _Validator:
    def __init__(self, file: str, root: yaml.Node | None) -> None:
        self.file = file
        self.root = root

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

    def validate(self, data: object) -> PipelineSpec:
        if self.root is None or not isinstance(data, dict):
            kind = "empty" if data is None else f"a {type(data).__name__}"
            raise PipelineSpecError(
                f"the top level must be a mapping with 'workflow' and 'nodes', but it is {kind}",
                file=self.file,
                line=1 if self.root is None else node_line(self.root),
                fix="start the file with `workflow:` (id, start) followed by `nodes:`",
            )
        for key in data:
            if key not in _TOP_KEYS:
                raise self._unknown_top_key(key)
        meta = self._workflow(data)
        nodes = self._nodes(data)
        policy = self._policy(data["policy"], ("policy",)) if "policy" in data else None
        spec = PipelineSpec(workflow=meta, nodes=nodes, policy=policy, source=self.file)
        self._check_graph(spec)
        return spec

    def _unknown_top_key(self, key: object) -> PipelineSpecError:
        if key == "source":
            fix = "remove it: the loader sets `source` to the file's path"
        elif isinstance(key, str) and (close := did_you_mean(key, _TOP_KEYS)):
            fix = f"did you mean '{close}'?"
        else:
            fix = "remove it; the top level has only `workflow:`, `nodes:` and `policy:`"
        return self._error(f"unknown top-level key '{key}'", (str(key),), fix=fix)

    def _workflow(self, data: dict[object, object]) -> WorkflowMeta:
        if "workflow" not in data:
            raise self._error(
                "missing the 'workflow' section",
                fix="add `workflow:` with at least `id:` and `start:` (the first node)",
            )
        raw = data["workflow"]
        if isinstance(raw, dict) and isinstance(raw.get("version"), int | float):
            assert self.root is not None
            # Keep the version as written: YAML would read `1.10` as the float 1.1.
            version = node_at(self.root, ("workflow", "version"))
            if isinstance(version, yaml.ScalarNode):
                raw = {**raw, "version": str(version.value)}
        try:
            return WorkflowMeta.model_validate(raw)
        except ValidationError as exc:
            raise self._from_pydantic(
                exc, ("workflow",), WorkflowMeta, "the workflow section", shown="workflow."
            ) from None

    def _nodes(self, data: dict[object, object]) -> dict[str, _AnyNode]:
        raw_nodes = data.get("nodes")
        if "nodes" not in data:
            raise self._error(
                "missing the 'nodes' section",
                fix="add `nodes:` with one entry per node (model, tool, condition, end)",
            )
        if not isinstance(raw_nodes, dict) or not raw_nodes:
            got = "empty" if not raw_nodes else f"a {type(raw_nodes).__name__}"
            raise self._error(
                f"'nodes' must be a mapping of node id to node, but it is {got}",
                ("nodes",),
                fix="add nodes like `classify:` with `type: model` and a `prompt:` under it",
            )
        nodes: dict[str, _AnyNode] = {}
        for node_id, raw in raw_nodes.items():
            if not isinstance(node_id, str) or not node_id:
                raise self._error(
                    f"node id {short(node_id)} is not text",
                    ("nodes", str(node_id)),
                    fix="quote the id, e.g. `'1':`, or use a name",
                )
            nodes[node_id] = self._node(node_id, raw)
        return nodes

    def _node(self, node_id: str, raw: object) -> _AnyNode:
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
        policy = None
        if "policy" in raw and model is not EndNode:
            try:
                policy = self._policy(raw["policy"], (*path, "policy"))
            except PipelineSpecError as err:
                raise PipelineSpecError(
                    err.reason, file=err.file, line=err.line, node=node_id, fix=err.fix
                ) from None
            raw = {**raw, "policy": None}
        try:
            node = model.model_validate(raw)
            return node if policy is None else node.model_copy(update={"policy": policy})
        except ValidationError as exc:
            article = "an" if node_type[0] in "aeiou" else "a"
            raise self._from_pydantic(
                exc, path, model, f"{article} {node_type} node", node=node_id
            ) from None

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
        elif node_type in _PLANNED_TYPES:
            reason = f"node type '{node_type}' is not supported yet"
            fix = f"the node types supported now are: {_SUPPORTED}"
        else:
            reason = f"unknown node type '{node_type}'"
            close = did_you_mean(node_type, list(_NODE_TYPES))
            hint = f"did you mean '{close}'? " if close else ""
            fix = f"{hint}supported node types: {_SUPPORTED}"
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
        if start not in nodes:
            raise self._error(
                f"workflow.start names '{start}', which is not a node",
                ("workflow", "start"),
                fix=self._node_fix(start, nodes),
            )
        for node_id, node in nodes.items():
            self._check_node(node_id, node, nodes)
        self._check_reachable(start, nodes)
        self._check_loops(nodes)

    def _node_fix(self, missing: str, nodes: dict[str, Node]) -> str:
        close = did_you_mean(missing, list(nodes))
        known = ", ".join(nodes)
        return f"did you mean '{close}'?" if close else f"use one of the node ids: {known}"

    def _check_node(self, node_id: str, node: _AnyNode, nodes: dict[str, Node]) -> None:
        if isinstance(node, ModelNode):
            for field in ("system", "prompt"):
                text = getattr(node, field)
                if text is not None:
                    self._check_template(text, ("nodes", node_id, field), node_id)
        if isinstance(node, ToolNode):
            self._check_arguments(node.arguments, ("nodes", node_id, "arguments"), node_id)
        if not isinstance(node, NodeBase):
            return
        path = ("nodes", node_id, "next")
        nxt = node.next
        if isinstance(node, ConditionNode) and not isinstance(nxt, list):
            raise self._error(
                "a condition node routes with a list of edges, but its 'next' is "
                + ("missing" if nxt is None else f"the single node '{nxt}'"),
                path if nxt is not None else ("nodes", node_id),
                node=node_id,
                fix="write `next:` as a list of `- to: <node id>` / `when: <condition>` edges; "
                "a last edge without `when` is the fallback",
            )
        if isinstance(nxt, str):
            if nxt not in nodes:
                raise self._error(
                    f"'next' names '{nxt}', which is not a node",
                    path,
                    node=node_id,
                    fix=self._node_fix(nxt, nodes),
                )
            return
        if nxt is None:
            return
        if not nxt:
            raise self._error(
                "'next' is an empty list of edges",
                path,
                node=node_id,
                fix="add edges, or remove `next` to end the pipeline after this node",
            )
        for index, edge in enumerate(nxt):
            edge_path = (*path, index)
            if edge.to not in nodes:
                raise self._error(
                    f"edge {index + 1} goes to '{edge.to}', which is not a node",
                    (*edge_path, "to"),
                    node=node_id,
                    fix=self._node_fix(edge.to, nodes),
                )
            if edge.when is None:
                if index < len(nxt) - 1:
                    skipped = ", ".join(f"'{later.to}'" for later in nxt[index + 1 :])
                    raise self._error(
                        f"edge {index + 1} (to '{edge.to}') has no 'when', so it is always "
                        f"taken and the edges after it (to {skipped}) can never be",
                        edge_path,
                        node=node_id,
                        fix="move the edge without `when` last, or give it a `when`",
                    )
                continue
            try:
                compile_condition(edge.when)
            except ValueError as exc:
                raise self._error(
                    f"invalid condition {edge.when!r}: {exc}",
                    (*edge_path, "when"),
                    node=node_id,
                    fix=_CONDITION_FIX,
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

    def _check_reachable(self, start: str, nodes: dict[str, Node]) -> None:
        reached = {start}
        queue = [start]
        while queue:
            for target in _successors(nodes[queue.pop()]):
                if target not in reached:
                    reached.add(target)
                    queue.append(target)
        unreachable = [node_id for node_id in nodes if node_id not in reached]
        if unreachable:
            raise self._error(
                f"not reachable from the start node '{start}': {', '.join(unreachable)}",
                ("nodes", unreachable[0]),
                node=unreachable[0],
                fix="link them from a reachable node with `next`, or remove them",
            )

    def _check_loops(self, nodes: dict[str, Node]) -> None:
        # Each node has at most one forced successor, so following them from every node finds
        # each loop with no way out exactly once; a loop that passes a `when` is allowed
        # (workflow.max_steps still bounds it at run time).
        done: set[str] = set()
        for first in nodes:
            path: list[str] = []
            on_path: set[str] = set()
            current: str | None = first
            while current is not None and current not in done and current not in on_path:
                path.append(current)
                on_path.add(current)
                current = _forced_successor(nodes[current])
            if current is not None and current in on_path:
                loop = path[path.index(current) :]
                last = loop[-1]
                closing = nodes[last]
                assert isinstance(closing, NodeBase)
                where = ("next",) if isinstance(closing.next, str) else ("next", 0, "to")
                raise self._error(
                    "these nodes loop forever with no condition to leave the loop: "
                    + " -> ".join([*loop, loop[0]]),
                    ("nodes", last, *where),
                    node=last,
                    fix="route through a condition node with a `when` edge that leaves the "
                    "loop, or point one of these `next`s elsewhere",
                )
            done.update(path)


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
