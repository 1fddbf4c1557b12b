"""Condition expressions for pipeline edges (``when: state.score > 0.5``), in Jinja2's sandbox.

A condition is one Jinja2 expression over ``state``, evaluated with the same sandbox as the
templates (``_template``): nothing is passed to Python's ``eval``/``exec``, Python internals
(``__class__``, ``_attributes``) and methods that modify a value are refused, and ``*``/``**``
are bounded. Both spellings in use read the same:

* JamJet's: ``state.a.b == "x"``, ``state.score >= 0.8 and not state.done``,
  ``state.tags | length > 0``, ``state.x is defined``;
* Python-like: ``len(state.sources) > 0``, ``state.kind in ["a", "b"]``,
  ``state.name.lower().startswith("x")``, ``True``/``False``/``None``, ``x is None``,
  ``x is not None``, ``state["key"]``, ``state.items[-1]``.

The functions are ``len str int float bool abs min max`` (and ``range``); any other name than
``state`` (and the extra ``names`` a caller declares, such as ``output`` in an eval assertion)
is refused when the condition is compiled, as is an attribute starting with ``__``.

A missing key is not an error: it reads as a missing value, which is false, equal to ``None``
(``state.missing == "x"`` is false, ``state.missing is None`` is true) and lets further lookups
through (``state.a.b.c`` is missing too). Ordering, arithmetic or a call on it is an error,
as is any other failure while evaluating (``"a" < 1``, ``1 / 0``): a
:class:`~jamjet_temporal.errors.PipelineRuntimeError` naming the condition.

This module runs inside the Temporal workflow sandbox: pure and deterministic. It keeps one
Jinja2 environment, created on first use, and caches compiled conditions by their text; the
caches hold only code compiled from the text, so no run can see another's data.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from jinja2 import ChainableUndefined, Undefined, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.exceptions import TemplateSyntaxError as JinjaSyntaxError

from jamjet_temporal.errors import PipelineRuntimeError
from jamjet_temporal.pipeline._template import (
    FUNCTIONS,
    Sandbox,
    TemplateSyntaxError,
    explain_missing,
    find_nodes,
    lookup_chains,
    parse_located,
    reason_of,
)

if TYPE_CHECKING:
    from jinja2.environment import TemplateExpression

__all__ = ["ALLOWED_SYNTAX", "Condition", "compile_condition", "evaluate_condition"]

# One-line summary of the grammar, for error fixes and docs.
ALLOWED_SYNTAX: Final = (
    "state.key, state['key'], state.items[0], constants, [lists], "
    "== != < <= > >= in / not in, is None / is not None / is defined, and/or/not, "
    "+ - * / % //, len/str/int/float/bool/abs/min/max(), string methods such as "
    ".lower()/.startswith(s), Jinja filters such as state.tags | length"
)
_CACHE_SIZE: Final = 1024
_POSITION_RE: Final = re.compile(r" \((?:line (\d+), )?column (\d+)\)$")
_MISSING_HINT: Final = (
    "a missing value can only be tested (`is none`, `is defined`, `==`) or read as false"
)


class _MissingValue(ChainableUndefined):
    """A missing value in a condition: false, equal to None, and chainable."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        return reason_of(self, super()._undefined_message)

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, Undefined)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(None)


def _is_none(value: object) -> bool:
    return value is None or isinstance(value, Undefined)


@functools.cache
def _environment() -> Sandbox:
    env = Sandbox(_MissingValue)
    env.tests["none"] = env.tests["None"] = _is_none
    return env


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled, checked condition expression.

    Attributes:
        source: The expression text as written in the pipeline.
        names: Names the condition may read besides ``state`` (e.g. ``output`` in an eval
            assertion), sorted.
    """

    source: str
    names: tuple[str, ...] = ()

    def evaluate(
        self,
        state: Mapping[str, object],
        *,
        node: str | None = None,
        names: Mapping[str, object] | None = None,
    ) -> bool:
        """Evaluates the condition against the pipeline state.

        Args:
            state: The pipeline state, bound to the name ``state``.
            node: The node whose edge is being evaluated, for error messages.
            names: Values for the condition's other names (see ``names``); a name not given
                reads as a missing value.

        Returns:
            The truth value of the expression (a missing value is false).

        Raises:
            PipelineRuntimeError: The expression failed, e.g. ``"a" < 3``, ``1 / 0`` or
                ``state.missing > 3``, or is invalid.
        """
        try:
            expression, chains = _compiled(self.source.strip(), self.names)
        except ValueError as exc:
            raise PipelineRuntimeError(f"condition {self.source!r}: {exc}", node=node) from None
        given = {name: value for name, value in (names or {}).items() if name in self.names}
        try:
            return bool(expression(**given, state=state))
        except UndefinedError as exc:
            why = explain_missing(exc, state, chains, quote_reference=False)
            raise PipelineRuntimeError(
                f"condition {self.source!r}: {why}; {_MISSING_HINT}", node=node
            ) from None
        except SecurityError as exc:
            raise PipelineRuntimeError(f"condition {self.source!r}: {exc}", node=node) from None
        except Exception as exc:
            # Any failure of a user expression must surface as our error: a raw exception
            # inside a workflow would fail the workflow task and retry it forever.
            raise PipelineRuntimeError(
                f"condition {self.source!r} failed: {type(exc).__name__}: {exc}", node=node
            ) from exc


def compile_condition(src: str, *, names: Iterable[str] = ()) -> Condition:
    """Parses and checks a condition expression.

    Args:
        src: The expression, e.g. ``"state.review.approved and len(state.items) > 0"``.
        names: Names the expression may read besides ``state`` (identifiers, not ``state``
            nor a function name).

    Returns:
        The compiled condition.

    Raises:
        ValueError: The expression does not parse, reads a name other than ``state`` and the
            functions, calls something else, uses an unknown filter or test, or reads a
            ``__`` attribute; the message says what and where.
    """
    if not isinstance(src, str):
        raise ValueError(f"a condition must be text, got {type(src).__name__}")
    extra = tuple(sorted(set(names)))
    _compiled(src.strip(), extra)
    return Condition(src, extra)


def evaluate_condition(
    src: str,
    state: Mapping[str, object],
    *,
    node: str | None = None,
    names: Mapping[str, object] | None = None,
) -> bool:
    """Compiles and evaluates a condition in one step.

    Args:
        src: The expression.
        state: The pipeline state.
        node: The node concerned, for error messages.
        names: Other names the expression may read, with their values (e.g. ``output``).

    Returns:
        The truth value of the expression.

    Raises:
        PipelineRuntimeError: The expression is invalid or failed while evaluating.
    """
    try:
        condition = compile_condition(src, names=names or ())
    except ValueError as exc:
        raise PipelineRuntimeError(f"condition {src!r}: {exc}", node=node) from None
    return condition.evaluate(state, node=node, names=names)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compiled(text: str, names: tuple[str, ...]) -> tuple[TemplateExpression, list[list[str]]]:
    if not text:
        raise ValueError("the condition is empty")
    env = _environment()
    for name in names:
        if not name.isidentifier() or name == "state" or name in env.globals:
            raise ValueError(f"{name!r} cannot be a condition's name")
    try:
        tree, _ = parse_located(env, text, expression=True)
    except TemplateSyntaxError as exc:
        raise ValueError(_syntax_message(text, exc)) from None
    _check(tree, env, names)
    try:
        expression = env.compile_expression(text, undefined_to_none=False)
    except JinjaSyntaxError as exc:  # an unknown filter or test, found while compiling
        raise ValueError((exc.message or "invalid condition").rstrip(".")) from None
    except RecursionError:
        raise ValueError("the condition is nested too deeply") from None
    return expression, lookup_chains(tree)


def _syntax_message(text: str, exc: TemplateSyntaxError) -> str:
    detail = _POSITION_RE.sub("", str(exc))
    lines = text.split("\n")
    if (exc.line, exc.column) == (len(lines), len(lines[-1]) + 1):
        return f"the expression is incomplete: {detail}"
    where = f"line {exc.line}, column {exc.column}" if len(lines) > 1 else f"column {exc.column}"
    return f"invalid syntax at {where}: {detail}"


def _check(tree: nodes.Node, env: Sandbox, names: tuple[str, ...]) -> None:
    functions = set(env.globals)
    called: set[int] = set()
    for call in find_nodes(tree, (nodes.Call,)):
        called.add(id(call.node))
        if isinstance(call.node, nodes.Name) and call.node.name not in functions:
            allowed = ", ".join(sorted(FUNCTIONS))
            raise ValueError(
                f"calling {call.node.name!r} is not allowed in a condition; "
                f"the functions are {allowed}"
            )
    for name in find_nodes(tree, (nodes.Name,)):
        if name.name == "state" or name.name in names:
            continue
        if name.name not in functions:
            readable = ", ".join(repr(known) for known in ("state", *names))
            raise ValueError(
                f"unknown name {name.name!r}: a condition can only read {readable} "
                f"(e.g. state.{name.name})"
            )
        if id(name) not in called:
            raise ValueError(f"unknown name {name.name!r}; call it as {name.name}(x)")
    for attribute in find_nodes(tree, (nodes.Getattr,)):
        if attribute.attr.startswith("__"):
            raise ValueError(f"the attribute {attribute.attr!r} is not allowed in a condition")
