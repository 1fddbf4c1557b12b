"""Jinja2 templates for prompts and tool arguments, rendered in Jinja2's sandbox.

A template is Jinja2 text whose only variable is ``state``, the pipeline state::

    Ticket: {{ state.ticket }} ({{ state.tags | join(", ") }})
    {% for item in state.items %}- {{ item.name }}{% endfor %}
    {% if state.score is defined and state.score > 0.5 %}urgent{% endif %}

Expressions, filters (``join``, ``length``, ``default``, ``upper``, ``tojson``, ...), tests and
``{% if %}`` / ``{% for %}`` / ``{% set %}`` blocks work as in Jinja2; ``{{ state.items.0 }}``
indexes a list and ``{{ state.by_id.0 }}`` also finds the key ``"0"`` of a dict. A name after
``.`` is read as a key of a dict first, so ``{{ state.items }}`` is the state's ``items`` even
though dicts have an ``items`` method. The globals are ``range`` (at most 100 000 items) and
the functions ``len str int float bool abs min max``; the Python spellings ``is None``,
``is True`` and ``is False`` work as tests; there is no ``include``/``import``.

Output: strings are inserted as they are, any other value (numbers, booleans, None, lists,
dicts) as the package's canonical JSON (``_shared._canonical``: compact, key-sorted, non-ASCII
kept, no NaN), so the output is byte-for-byte stable; the ``tojson`` filter writes the same
text. No autoescaping; a trailing newline is kept. A missing value is an error naming the
reference and the keys that are there (``{{ state.tikcet }}: state has no key 'tikcet'; keys
there: ...``) unless a ``default`` filter or an ``is defined`` test handles it. Literal braces
need no escaping unless they spell ``{{``, ``{%`` or ``{#``: write ``{{ '{{' }}`` or use a
``{% raw %}`` block.

The sandbox (``jinja2.sandbox.ImmutableSandboxedEnvironment``) refuses Python internals
(``__class__``, any ``_attribute`` of an object) and methods that modify a value
(``list.append``, ``dict.update``); ``*`` may build at most 100 000 items or characters and
``**`` only computes numbers of moderate size. Filters that would make the output differ
between runs (``random``) are removed.

This module runs inside the Temporal workflow sandbox: pure and deterministic. Jinja2 and
MarkupSafe are passed through the sandbox (imported once per worker). The module keeps one
Jinja2 environment, created on first use, and caches compiled templates by their text: the
caches hold only code compiled from the text, so no run can see another's data.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar, cast

from jinja2 import StrictUndefined, Undefined, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.exceptions import TemplateSyntaxError as JinjaSyntaxError
from jinja2.lexer import Token, TokenStream, describe_token
from jinja2.meta import find_undeclared_variables
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

from jamjet_temporal._shared._canonical import canonical_json
from jamjet_temporal.errors import TemplateError

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.environment import TemplateExpression
    from jinja2.runtime import Context
    from pydantic import JsonValue

__all__ = ["TemplateSyntaxError", "check_template", "render", "render_value"]

N = TypeVar("N", bound=nodes.Node)

_SHOWN_KEYS: Final = 20
_MAX_ITEMS: Final = 100_000  # what `*` may build: items of a list, characters of a string
_MAX_POWER_BITS: Final = 100_000  # the size of an integer `**` may compute
_CACHE_SIZE: Final = 1024
_WHOLE_RE: Final = re.compile(r"\s*\{\{(?P<expr>.*)\}\}\s*", re.DOTALL)
_NEWLINE_RE: Final = re.compile(r"\r\n|\r")
_TAG_OPEN_RE: Final = re.compile(r"\{[{%#]")
_REFUSED_TAGS: Final = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


class TemplateSyntaxError(ValueError):
    """A malformed template: a :class:`ValueError` that also says where.

    Attributes:
        line: 1-based line of the problem within the template text.
        column: 1-based column within that line (of the token Jinja2 stopped at; 1 when
            unknown).
    """

    def __init__(self, message: str, *, line: int, column: int) -> None:
        super().__init__(message)
        self.line = line
        self.column = column

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_syntax_error, (str(self), self.line, self.column))


def _rebuild_syntax_error(message: str, line: int, column: int) -> TemplateSyntaxError:
    return TemplateSyntaxError(message, line=line, column=column)


# ------------------------------------------------------------------------------------------
# The sandbox, shared with the condition evaluator (_expr).


class Reason(str):
    """An undefined value's message, carrying the failed lookup (``obj[name]``).

    Jinja2 raises :class:`UndefinedError` with only a message; this ``str`` subclass lets the
    caller, which knows the state, say which key of which part of it was missing.
    """

    obj: object
    name: object
    hint: str | None

    def __new__(cls, message: str, obj: object, name: object, hint: str | None) -> Reason:
        made = super().__new__(cls, message)
        made.obj, made.name, made.hint = obj, name, hint
        return made


def reason_of(undefined: Undefined, message: str) -> Reason:
    """The :class:`Reason` for an undefined value with Jinja2's ``message``."""
    return Reason(
        message, undefined._undefined_obj, undefined._undefined_name, undefined._undefined_hint
    )


class _StrictUndefined(StrictUndefined):
    """A missing value in a template: any use but ``default``/``is defined`` is an error."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        return reason_of(self, super()._undefined_message)


def _is_none(value: object) -> bool:
    return value is None


def _is_true(value: object) -> bool:
    return value is True


def _is_false(value: object) -> bool:
    return value is False


def _to_plain(value: Any) -> Any:
    # canonical_json's fallback: lazy sequences Jinja2 builds (range, map/select results).
    if isinstance(value, range | Iterator):
        return list(value)
    raise TypeError(f"a {type(value).__name__} is not a JSON value")


def _json_text(value: object) -> str:
    try:
        return canonical_json(value, fallback=_to_plain)
    except (TypeError, ValueError) as exc:
        raise _NotJson(f"a value cannot be written as JSON: {exc}") from None


class _NotJson(Exception):
    """A rendered value has no JSON text (e.g. a function, or NaN)."""


def _finalize(value: object) -> object:
    if isinstance(value, str):
        return value
    if isinstance(value, Undefined):
        return str(value)  # a strict undefined raises here: {{ state.missing }}
    return _json_text(value)


def _tojson(value: object) -> str:
    return _json_text(value)


def _to_str(value: object) -> str:
    return str(value)


def _to_int(value: Any) -> int:
    return int(value)


def _to_float(value: Any) -> float:
    return float(value)


def _to_bool(value: object) -> bool:
    return bool(value)


def _length(value: Any) -> int:
    return len(value)


def _abs(value: Any) -> Any:
    return abs(value)


def _min(*values: Any) -> Any:
    return min(*values)


def _max(*values: Any) -> Any:
    return max(*values)


# The callables templates and conditions may use. Plain functions rather than the builtins
# themselves: a type as a global would hand out its unbound methods (`str.format` formats
# outside the sandbox's checks).
FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    "len": _length,
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "abs": _abs,
    "min": _min,
    "max": _max,
}


def _size(value: object) -> int | None:
    return len(value) if isinstance(value, str | list | tuple) else None


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, adjusted for JSON pipeline state.

    * ``x.key`` on a dict reads the key before any attribute (``state.items`` is data);
    * ``x.0`` / ``x[0]`` on a dict without the key ``0`` reads the key ``"0"``;
    * unsafe access raises :class:`SecurityError` at once instead of giving an undefined;
    * ``*`` and ``**`` are bounded (see the module docstring).
    """

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, undefined: type[Undefined]) -> None:
        super().__init__(
            undefined=undefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=_finalize,
        )
        safe_range = self.globals["range"]
        self.globals.clear()
        self.globals.update(FUNCTIONS)
        self.globals["range"] = safe_range
        self.filters["tojson"] = _tojson
        del self.filters["random"]  # different on every call: not deterministic
        self.tests.update({"None": _is_none, "True": _is_true, "False": _is_false})

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if (
            isinstance(obj, Mapping)
            and type(argument) is int
            and argument not in obj
            and str(argument) in obj
        ):
            return obj[str(argument)]
        return super().getitem(obj, argument)

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        raise SecurityError(
            f"access to {attribute!r} of a {type(obj).__name__} is refused by the sandbox: "
            "templates and conditions read values, not Python internals"
        )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                length = _size(sequence)
                if length is not None and isinstance(count, int) and length * count > _MAX_ITEMS:
                    raise SecurityError(
                        f"'*' would build {length * count} items or characters; "
                        f"the limit is {_MAX_ITEMS}"
                    )
        elif operator == "**":
            if not (_is_number(left) and _is_number(right)):
                raise TypeError(
                    f"'**' needs numbers, got {type(left).__name__} and {type(right).__name__}"
                )
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and abs(left) > 1
                and right * left.bit_length() > _MAX_POWER_BITS
            ):
                raise SecurityError(f"'**' would compute a number of over {_MAX_POWER_BITS} bits")
        return super().call_binop(context, operator, left, right)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float)


@functools.cache
def _environment() -> Sandbox:
    return Sandbox(_StrictUndefined)


# ------------------------------------------------------------------------------------------
# Parsing with positions. Jinja2 reports only a line; the parser is fed a token stream that
# remembers where each token starts, so an error can also name the column.


class _Located:
    """The tokens of one source text and their offsets in it."""

    def __init__(self, env: Sandbox, text: str, *, expression: bool) -> None:
        self.text = _NEWLINE_RE.sub("\n", text)
        self.state = "variable" if expression else None
        self.offsets: dict[int, int] = {}  # id(token) -> offset of its first character
        self.names: list[tuple[int, str]] = []  # (offset, name) of every name token
        self.failed_at: int | None = None  # where lexing failed, if it did
        self._tokens: list[Token] = []  # keeps the tokens (and so their ids) alive
        self._env = env
        self._start = 0  # offset of the raw token last read
        self._end = 0  # offset after it

    def _raw(self) -> Iterator[tuple[int, str, str]]:
        lexer = self._env.lexer
        try:
            for lineno, kind, value in lexer.tokeniter(self.text, None, state=self.state):
                # A value is the text at the offset, unless whitespace control trimmed it.
                if not self.text.startswith(value, self._end):
                    found = self.text.find(value, self._end)
                    self._end = found if found != -1 else self._end
                self._start = self._end
                self._end += len(value)
                yield lineno, kind, value
        except JinjaSyntaxError:
            self.failed_at = self._end
            raise

    def stream(self) -> TokenStream:
        """A token stream over the text for Jinja2's parser, recording offsets."""

        def tokens() -> Iterator[Token]:
            try:
                for token in self._env.lexer.wrap(self._raw()):
                    self._tokens.append(token)
                    self.offsets[id(token)] = self._start
                    if token.type == "name":
                        self.names.append((self._start, str(token.value)))
                    yield token
            except JinjaSyntaxError:
                if self.failed_at is None:  # a bad string or name, found after lexing it
                    self.failed_at = self._start
                raise

        return TokenStream(tokens(), None, None)

    def position(self, offset: int) -> tuple[int, int]:
        offset = max(0, min(offset, len(self.text)))
        line = self.text.count("\n", 0, offset) + 1
        return line, offset - (self.text.rfind("\n", 0, offset) + 1) + 1

    def error(self, message: str, offset: int, *, lineno: int | None = None) -> TemplateSyntaxError:
        line, column = self.position(offset)
        if lineno is not None and lineno != line:
            # The offset is not on the line Jinja2 named: point at the line's first tag.
            line, column = lineno, self._tag_column(lineno)
        where = f"line {line}, column {column}" if "\n" in self.text else f"column {column}"
        return TemplateSyntaxError(f"{message.rstrip('.')} ({where})", line=line, column=column)

    def _tag_column(self, lineno: int) -> int:
        lines = self.text.split("\n")
        if not 1 <= lineno <= len(lines):
            return 1
        found = _TAG_OPEN_RE.search(lines[lineno - 1])
        return found.start() + 1 if found else 1

    def name_offset(self, name: str, lineno: int | None = None) -> int:
        for offset, value in self.names:
            if value == name and (lineno is None or self.position(offset)[0] == lineno):
                return offset
        for offset, value in self.names:
            if value == name:
                return offset
        return 0


def parse_located(env: Sandbox, text: str, *, expression: bool) -> tuple[nodes.Node, _Located]:
    """Parses a template (or, with ``expression``, one expression), keeping positions.

    Raises:
        TemplateSyntaxError: The text is malformed; the message ends with the position.
    """
    located = _Located(env, text, expression=expression)
    parser = Parser(env, "", state=located.state)
    try:
        parser.stream = located.stream()
        result: nodes.Node
        if expression:
            result = parser.parse_expression()
            if not parser.stream.eos:
                parser.fail(f"unexpected '{describe_token(parser.stream.current)}'")
        else:
            result = parser.parse()
    except JinjaSyntaxError as exc:
        token = parser.stream.current
        if located.failed_at is not None:
            offset = located.failed_at
        elif token.type == "eof" or id(token) not in located.offsets:
            offset = len(located.text)
        else:
            offset = located.offsets[id(token)]
        raise located.error(exc.message or "invalid syntax", offset, lineno=exc.lineno) from None
    except RecursionError:
        raise TemplateSyntaxError("the text is nested too deeply", line=1, column=1) from None
    return result, located


def find_nodes(tree: nodes.Node, kinds: tuple[type[N], ...]) -> list[N]:
    """The nodes of the given kinds in a tree, the tree itself included, in order."""
    found: list[N] = [tree] if isinstance(tree, kinds) else []
    found.extend(tree.find_all(kinds))
    return found


def lookup_chains(tree: nodes.Node) -> list[list[str]]:
    """Every ``state.a.0['b']`` lookup chain with constant keys, as key lists, in order."""
    found: list[list[str]] = []
    for node in find_nodes(tree, (nodes.Getattr, nodes.Getitem)):
        keys: list[str] = []
        current: nodes.Node = node
        while True:
            if isinstance(current, nodes.Getattr):
                keys.append(current.attr)
                current = current.node
            elif isinstance(current, nodes.Getitem) and isinstance(current.arg, nodes.Const):
                keys.append(str(current.arg.value))
                current = current.node
            else:
                break
        if isinstance(current, nodes.Name) and current.name == "state":
            found.append(keys[::-1])
    return found


def _step(container: object, key: str) -> tuple[bool, object]:
    if isinstance(container, Mapping):
        if key in container:
            return True, container[key]
        if key.isdigit() and int(key) in container:
            return True, container[int(key)]
        return False, None
    if isinstance(container, list | tuple) and key.lstrip("-").isdigit():
        index = int(key)
        if -len(container) <= index < len(container):
            return True, container[index]
    return False, None


def _display(keys: Iterable[str]) -> str:
    out = "state"
    for key in keys:
        out += f".{key}" if key.isidentifier() or key.isdigit() else f"[{key!r}]"
    return out


def _problem(container: object, name: object, where: str) -> str:
    if isinstance(container, Mapping):
        keys = sorted(str(key) for key in container)
        shown = ", ".join(keys[:_SHOWN_KEYS]) + (", ..." if len(keys) > _SHOWN_KEYS else "")
        return f"{where} has no key {str(name)!r}; keys there: {shown or '(none)'}"
    if isinstance(container, list | tuple):
        if isinstance(name, int) or str(name).lstrip("-").isdigit():
            return f"index {name} is out of range for {where}, a list of {len(container)} item(s)"
        return f"{where} is a list, so {str(name)!r} must be an index such as {where}.0"
    kind = "None" if container is None else type(container).__name__
    return f"{where} is {kind}, which has no key {str(name)!r}"


def _path_to(state: Mapping[str, object], target: object) -> list[str] | None:
    """The keys leading to ``target`` (by identity) inside the state, nearest first."""
    queue: list[tuple[object, list[str]]] = [(state, [])]
    seen: set[int] = set()
    while queue:
        value, keys = queue.pop(0)
        if value is target:
            return keys
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, Mapping):
            queue.extend((item, [*keys, str(key)]) for key, item in value.items())
        elif isinstance(value, list | tuple):
            queue.extend((item, [*keys, str(index)]) for index, item in enumerate(value))
    return None


def explain_missing(
    exc: UndefinedError,
    state: Mapping[str, object],
    chains: list[list[str]],
    *,
    quote_reference: bool = True,
) -> str:
    """Says which value was missing, with the reference and the keys that are there.

    Args:
        exc: The error Jinja2 raised for an undefined value.
        state: The state the text was evaluated against.
        chains: The text's lookup chains (see :func:`lookup_chains`), to name the reference.
        quote_reference: Start with the reference that failed, as ``{{ state.a.b }}: ``.
    """
    reason = exc.args[0] if exc.args else None
    if not isinstance(reason, Reason) or reason.hint is not None:
        return str(exc)
    obj, name = reason.obj, reason.name
    if obj is missing:
        return f"{name!r} is not defined; the text can only read 'state' (e.g. state.{name})"
    best: tuple[list[str], list[str]] | None = None
    for chain in chains:
        current: object = state
        for depth, key in enumerate(chain):
            if current is obj and key == str(name):
                if best is None or len(chain) > len(best[1]):
                    best = (chain[:depth], chain)
                break
            found, current = _step(current, key)
            if not found:
                break
    if best is not None:
        problem = _problem(obj, name, _display(best[0]))
        return f"{{{{ {_display(best[1])} }}}}: {problem}" if quote_reference else problem
    if isinstance(obj, Mapping | list | tuple):
        path = _path_to(state, obj)
        if path is not None:
            return _problem(obj, name, _display(path))
    return str(exc)


# ------------------------------------------------------------------------------------------
# Compiling, cached by text.


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compiled(text: str) -> tuple[Template, list[list[str]]]:
    env = _environment()
    tree, located = parse_located(env, text, expression=False)
    assert isinstance(tree, nodes.Template)
    for refused in tree.find_all(_REFUSED_TAGS):
        raise located.error(
            "templates cannot include, import or extend other templates",
            0,
            lineno=refused.lineno,
        )
    try:
        template = env.from_string(tree)
        unknown = sorted(find_undeclared_variables(tree) - {"state"} - set(env.globals))
    except JinjaSyntaxError as exc:  # an unknown filter or test, found while compiling
        quoted = re.search(r"named '([^']+)'", exc.message or "")
        lineno = exc.lineno
        offset = located.name_offset(quoted[1], lineno) if quoted else 0
        raise located.error(exc.message or "invalid template", offset, lineno=lineno) from None
    if unknown:
        name = unknown[0]
        raise located.error(
            f"unknown name {name!r}: a template can only read 'state' "
            f"(write {{{{ state.{name} }}}})",
            located.name_offset(name),
        )
    return template, lookup_chains(tree)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compiled_expression(text: str) -> tuple[TemplateExpression, list[list[str]]]:
    env = _environment()
    tree, _ = parse_located(env, text, expression=True)
    unknown = {node.name for node in find_nodes(tree, (nodes.Name,))} - {"state"}
    unknown -= set(env.globals)
    if unknown:
        raise TemplateSyntaxError(f"unknown name {min(unknown)!r}", line=1, column=1)
    try:
        expression = env.compile_expression(text, undefined_to_none=False)
    except JinjaSyntaxError as exc:
        raise TemplateSyntaxError(exc.message or "invalid", line=1, column=1) from None
    return expression, lookup_chains(tree)


# ------------------------------------------------------------------------------------------
# The public functions.


def check_template(text: str) -> None:
    """Checks that a template is well formed.

    Args:
        text: The template.

    Raises:
        TemplateSyntaxError: The template does not parse, uses an unknown filter or test,
            reads a name other than ``state`` (and its own loop variables), or includes
            another template; the message ends with the position. It is a ``ValueError``.
    """
    _compiled(text)


def render(text: str, state: Mapping[str, object], *, node: str | None = None) -> str:
    """Renders a template against the pipeline state.

    Args:
        text: The template.
        state: The pipeline state, the template's ``state``.
        node: The node being rendered, for error messages.

    Returns:
        The rendered text: strings inserted as they are, other values as canonical JSON.

    Raises:
        TemplateError: The template is malformed, reads a missing key or index, is refused
            by the sandbox, fails while rendering (e.g. ``1 / 0``), or prints a value that
            cannot be written as JSON.
    """
    try:
        template, chains = _compiled(text)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"invalid template: {exc}", node=node) from None
    try:
        return template.render(state=state)
    except Exception as exc:
        raise _failure(exc, state, chains, node) from None


def render_value(
    value: JsonValue, state: Mapping[str, object], *, node: str | None = None
) -> JsonValue:
    """Renders every string inside a JSON value (e.g. a tool's arguments).

    A string that is exactly one ``{{ expression }}`` (whitespace around it allowed), like
    ``"{{ state.count }}"`` or ``"{{ state.items | map(attribute='id') | list }}"``, is
    replaced by the expression's value itself, a copy, so numbers, lists and objects keep
    their type (tuples and lazy sequences become lists). Other strings are rendered with
    :func:`render`. Dict keys are left as they are.

    Args:
        value: The value to render.
        state: The pipeline state.
        node: The node being rendered, for error messages.

    Returns:
        A new value; the input is not modified.

    Raises:
        TemplateError: As for :func:`render`; also when a whole expression's value is
            missing or is not a JSON value.
    """
    if isinstance(value, str):
        whole = _whole_expression(value)
        if whole is None:
            return render(value, state, node=node)
        expression, chains = whole
        try:
            result = expression(state=state)
            if isinstance(result, Undefined):
                str(result)  # raises: the strict undefined's error names the missing key
            return _json_copy(result)
        except Exception as exc:
            raise _failure(exc, state, chains, node) from None
    if isinstance(value, list):
        return [render_value(item, state, node=node) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, state, node=node) for key, item in value.items()}
    return value


def _whole_expression(text: str) -> tuple[TemplateExpression, list[list[str]]] | None:
    match = _WHOLE_RE.fullmatch(text)
    if match is None:
        return None
    inner = match["expr"]
    # Whitespace control (`{{- x -}}`) is the sign right next to the braces.
    if inner[:1] in ("-", "+"):
        inner = inner[1:]
    if inner[-1:] in ("-", "+"):
        inner = inner[:-1]
    if not inner.strip():
        return None
    try:
        return _compiled_expression(inner)
    except TemplateSyntaxError:
        return None  # not one expression, e.g. "{{ a }} and {{ b }}": rendered as text


def _is_plain_json(value: object) -> bool:
    if value is None or isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, list):
        return all(_is_plain_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_plain_json(item) for key, item in value.items())
    return False


def _json_copy(value: object) -> JsonValue:
    if _is_plain_json(value):
        # A copy, so later changes to the state cannot reach into the rendered value.
        return cast("JsonValue", copy.deepcopy(value))
    return cast("JsonValue", json.loads(_json_text(value)))


def _failure(
    exc: Exception, state: Mapping[str, object], chains: list[list[str]], node: str | None
) -> TemplateError:
    # Any failure of a user template must surface as our error: a raw exception inside a
    # workflow would fail the workflow task and retry it forever.
    if isinstance(exc, UndefinedError):
        return TemplateError(explain_missing(exc, state, chains), node=node)
    if isinstance(exc, SecurityError):
        return TemplateError(str(exc), node=node)
    if isinstance(exc, _NotJson):
        return TemplateError(str(exc), node=node)
    if isinstance(exc, JinjaSyntaxError):
        return TemplateError(f"invalid template: {exc.message}", node=node)
    return TemplateError(f"rendering failed: {type(exc).__name__}: {exc}", node=node)
