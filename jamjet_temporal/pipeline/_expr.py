"""Safe condition expressions for pipeline edges (``when: state.score > 0.5``).

Conditions use Python expression syntax, parsed with :mod:`ast` and checked against a small
whitelist at compile time, then interpreted node by node: nothing is ever passed to
``eval``/``exec``. This module runs inside the Temporal workflow sandbox, so it is pure,
deterministic, stdlib-only and keeps no state between calls.

What a condition may contain:

* the name ``state`` and the constants ``True``, ``False``, ``None``, strings and numbers;
* ``state.a.b`` (dict lookup: a missing key, or a lookup on something that is not a dict,
  gives ``None``) and ``x["key"]`` / ``x[0]`` with a constant key or index (same leniency);
* list and tuple displays such as ``["a", "b"]`` (for ``in``);
* comparisons ``== != < <= > >= in not in is is not``, ``and``/``or``/``not``, unary ``-``
  and ``+ - * / % //``;
* the functions ``len str int float bool abs min max`` and the string methods ``.lower()``,
  ``.upper()``, ``.strip()``, ``.startswith(s)``, ``.endswith(s)``.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from jamjet_temporal.errors import PipelineRuntimeError

__all__ = ["ALLOWED_SYNTAX", "Condition", "compile_condition", "evaluate_condition"]

# name -> (min args, max args or None for unbounded)
_FUNCTIONS: Final[Mapping[str, tuple[int, int | None]]] = {
    "len": (1, 1),
    "str": (1, 1),
    "int": (1, 1),
    "float": (1, 1),
    "bool": (1, 1),
    "abs": (1, 1),
    "min": (1, None),
    "max": (1, None),
}
_BUILTINS: Final[Mapping[str, Callable[..., Any]]] = {
    "len": len,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "abs": abs,
    "min": min,
    "max": max,
}
_METHODS: Final[Mapping[str, int]] = {
    "lower": 0,
    "upper": 0,
    "strip": 0,
    "startswith": 1,
    "endswith": 1,
}
_COMPARE_OPS: Final[Mapping[type[ast.cmpop], Callable[[Any, Any], object]]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_BIN_OPS: Final[Mapping[type[ast.operator], Callable[[Any, Any], object]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.FloorDiv: operator.floordiv,
}
_REFUSED: Final[Mapping[type[ast.AST], str]] = {
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.NamedExpr: "':=' (assignment)",
    ast.IfExp: "'x if c else y'",
    ast.Dict: "a dict literal",
    ast.Set: "a set literal",
    ast.Starred: "'*' unpacking",
    ast.Slice: "a slice",
    ast.Await: "'await'",
    ast.Yield: "'yield'",
    ast.YieldFrom: "'yield from'",
}
_OP_NAMES: Final[Mapping[type[ast.AST], str]] = {
    ast.Pow: "'**'",
    ast.MatMult: "'@'",
    ast.BitAnd: "'&'",
    ast.BitOr: "'|'",
    ast.BitXor: "'^'",
    ast.LShift: "'<<'",
    ast.RShift: "'>>'",
    ast.Invert: "'~'",
    ast.UAdd: "unary '+'",
}
# One-line summary of the grammar, for error fixes and docs.
ALLOWED_SYNTAX: Final = (
    "state.key, state['key'], state.items[0], constants, [lists], "
    "== != < <= > >= in, is None, and/or/not, + - * / % //, "
    "len/str/int/float/bool/abs/min/max(), .lower()/.upper()/.strip()/.startswith(s)/.endswith(s)"
)


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled, checked condition expression.

    Attributes:
        source: The expression text as written in the pipeline.
    """

    source: str
    _tree: ast.expr = field(repr=False, compare=False)

    def evaluate(self, state: Mapping[str, object], *, node: str | None = None) -> bool:
        """Evaluates the condition against the pipeline state.

        Args:
            state: The pipeline state, bound to the name ``state``.
            node: The node whose edge is being evaluated, for error messages.

        Returns:
            The truth value of the expression.

        Raises:
            PipelineRuntimeError: The expression failed, e.g. ``None < 3`` or ``1 / 0``.
        """
        try:
            return bool(_eval(self._tree, state))
        except PipelineRuntimeError as exc:
            raise PipelineRuntimeError(
                f"condition {self.source!r}: {exc.reason}", node=node
            ) from None
        except Exception as exc:
            # Any failure of a user expression must surface as our error: a raw exception
            # inside a workflow would fail the workflow task and retry it forever.
            raise PipelineRuntimeError(
                f"condition {self.source!r} failed: {type(exc).__name__}: {exc}", node=node
            ) from exc


def compile_condition(src: str) -> Condition:
    """Parses and checks a condition expression.

    Args:
        src: The expression, e.g. ``"state.review.approved and len(state.items) > 0"``.

    Returns:
        The compiled condition.

    Raises:
        ValueError: The expression does not parse or uses something outside the whitelist;
            the message says what and where.
    """
    if not isinstance(src, str):
        raise ValueError(f"a condition must be text, got {type(src).__name__}")
    text = src.strip()
    if not text:
        raise ValueError("the condition is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(_syntax_message(exc)) from None
    except (RecursionError, MemoryError):
        raise ValueError("the condition is nested too deeply") from None
    try:
        _check(tree.body)
    except RecursionError:
        raise ValueError("the condition is nested too deeply") from None
    return Condition(src, tree.body)


def evaluate_condition(src: str, state: Mapping[str, object], *, node: str | None = None) -> bool:
    """Compiles and evaluates a condition in one step.

    Args:
        src: The expression.
        state: The pipeline state.
        node: The node concerned, for error messages.

    Returns:
        The truth value of the expression.

    Raises:
        PipelineRuntimeError: The expression is invalid or failed while evaluating.
    """
    try:
        condition = compile_condition(src)
    except ValueError as exc:
        raise PipelineRuntimeError(f"condition {src!r}: {exc}", node=node) from None
    return condition.evaluate(state, node=node)


def _syntax_message(exc: SyntaxError) -> str:
    detail = "" if exc.msg == "invalid syntax" else f": {exc.msg}"
    if not exc.offset:
        # CPython reports offset 0 when the expression stops short, e.g. "state.a >".
        return f"the expression is incomplete{detail}"
    line = f"line {exc.lineno}, " if exc.lineno and exc.lineno > 1 else ""
    return f"invalid syntax at {line}column {exc.offset}{detail}"


def _refuse(what: str) -> ValueError:
    return ValueError(f"{what} is not allowed in a condition")


def _op_name(op: ast.AST) -> str:
    return _OP_NAMES.get(type(op), type(op).__name__)


def _is_key(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return type(node.value) in (str, int)
    return (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) is int
    )


def _is_singleton(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and (node.value is None or type(node.value) is bool)


def _check(node: ast.expr) -> None:
    if isinstance(node, ast.Constant):
        if node.value is not None and type(node.value) not in (str, int, float, bool):
            raise _refuse(f"the constant {node.value!r}")
    elif isinstance(node, ast.Name):
        if node.id != "state":
            hint = f"; call it as {node.id}(x)" if node.id in _FUNCTIONS else ""
            raise ValueError(
                f"unknown name {node.id!r}: a condition can only read 'state' "
                f"(e.g. state.{node.id}){hint}"
            )
    elif isinstance(node, ast.Attribute):
        if node.attr.startswith("__"):
            raise _refuse(f"the attribute {node.attr!r}")
        _check(node.value)
    elif isinstance(node, ast.Subscript):
        if not _is_key(node.slice):
            raise _refuse("a subscript that is not a constant key or index")
        _check(node.value)
    elif isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            if type(op) not in _COMPARE_OPS:
                raise _refuse(f"the comparison {_op_name(op)}")
            if isinstance(op, ast.Is | ast.IsNot) and not (
                _is_singleton(left) or _is_singleton(right)
            ):
                raise ValueError("'is' / 'is not' only compare with None, True or False; use ==")
        for operand in operands:
            _check(operand)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.Not | ast.USub):
            raise _refuse(f"the operator {_op_name(node.op)}")
        _check(node.operand)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BIN_OPS:
            raise _refuse(f"the operator {_op_name(node.op)}")
        _check(node.left)
        _check(node.right)
    elif isinstance(node, ast.Call):
        _check_call(node)
    elif isinstance(node, ast.List | ast.Tuple):
        for element in node.elts:
            _check(element)
    else:
        raise _refuse(_REFUSED.get(type(node), type(node).__name__))


def _check_call(node: ast.Call) -> None:
    if node.keywords:
        raise _refuse("a keyword argument")
    func = node.func
    if isinstance(func, ast.Name) and func.id in _FUNCTIONS:
        low, high = _FUNCTIONS[func.id]
        name = f"{func.id}()"
    elif isinstance(func, ast.Attribute) and func.attr in _METHODS:
        low = high = _METHODS[func.attr]
        name = f".{func.attr}()"
        _check(func.value)
    else:
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "this")
        raise _refuse(f"calling {called!r}")
    count = len(node.args)
    if count < low or (high is not None and count > high):
        wanted = f"{low}" if low == high else f"at least {low}"
        raise ValueError(f"{name} takes {wanted} argument(s), got {count}")
    for arg in node.args:
        _check(arg)


def _lookup(container: object, key: object) -> object:
    if isinstance(container, Mapping):
        return container.get(key)
    if isinstance(container, list | tuple | str) and type(key) is int:
        return container[key] if -len(container) <= key < len(container) else None
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float)


def _eval(node: ast.expr, state: Mapping[str, object]) -> object:
    if isinstance(node, ast.Constant):
        value: object = node.value
        return value
    if isinstance(node, ast.Name):
        return state
    if isinstance(node, ast.Attribute):
        return _lookup(_eval(node.value, state), node.attr)
    if isinstance(node, ast.Subscript):
        return _lookup(_eval(node.value, state), _eval(node.slice, state))
    if isinstance(node, ast.BoolOp):
        is_and = isinstance(node.op, ast.And)
        result = _eval(node.values[0], state)
        for value_node in node.values[1:]:
            if bool(result) != is_and:
                break
            result = _eval(value_node, state)
        return result
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, state)
        if isinstance(node.op, ast.Not):
            return not operand
        if not isinstance(operand, int | float):
            raise PipelineRuntimeError(f"unary '-' needs a number, got {_kind(operand)}")
        return -operand
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, state), _eval(node.right, state)
        # '*' on text and '%' formatting could build huge strings from a small expression.
        if not isinstance(node.op, ast.Add) and not (_is_number(left) and _is_number(right)):
            raise PipelineRuntimeError(
                f"arithmetic needs numbers, got {_kind(left)} and {_kind(right)}"
            )
        return _BIN_OPS[type(node.op)](left, right)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, state)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, state)
            if not _COMPARE_OPS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        return _call(node, state)
    if isinstance(node, ast.List):
        return [_eval(element, state) for element in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_eval(element, state) for element in node.elts)
    raise PipelineRuntimeError(f"unsupported syntax {type(node).__name__}")  # unreachable


def _call(node: ast.Call, state: Mapping[str, object]) -> object:
    args = [_eval(arg, state) for arg in node.args]
    func = node.func
    if isinstance(func, ast.Name):
        builtin = _BUILTINS[func.id]
        value: object = builtin(*args)
        return value
    assert isinstance(func, ast.Attribute)
    receiver = _eval(func.value, state)
    if not isinstance(receiver, str):
        raise PipelineRuntimeError(f".{func.attr}() needs a string, got {_kind(receiver)}")
    if args and not isinstance(args[0], str):
        raise PipelineRuntimeError(f".{func.attr}() needs a string argument, got {_kind(args[0])}")
    method: Callable[..., Any] = getattr(receiver, func.attr)
    result: object = method(*args)
    return result


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__
