"""``{{ state.x }}`` templating for prompts and tool arguments.

A template is text with references of the form ``{{ state.key }}``, where the path after
``state`` is dotted identifiers or integer list indexes (``{{ state.items.0.name }}``); there
are no filters or expressions. Strings are inserted as they are, any other value as the
package's canonical JSON (``_shared._canonical``: compact, key-sorted, non-ASCII kept, no NaN)
so the output is byte-for-byte stable. A literal ``{{`` or ``}}`` is always
read as a brace of a reference: write ``{ {`` / ``} }`` to keep braces in text.

This module runs inside the Temporal workflow sandbox: pure, deterministic, stdlib and the
pure canonical JSON module only.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

from jamjet_temporal._shared._canonical import canonical_json
from jamjet_temporal.errors import TemplateError

if TYPE_CHECKING:
    from pydantic import JsonValue

__all__ = ["TemplateSyntaxError", "check_template", "references", "render", "render_value"]

_PATH: Final = r"state(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+))+"
_PATH_RE: Final = re.compile(_PATH)
_WHOLE_REF_RE: Final = re.compile(r"\s*\{\{\s*(" + _PATH + r")\s*\}\}\s*")
_SHOWN_KEYS: Final = 20


class TemplateSyntaxError(ValueError):
    """A malformed template: a :class:`ValueError` that also says where.

    Attributes:
        line: 1-based line of the problem within the template text.
        column: 1-based column within that line.
    """

    def __init__(self, message: str, *, line: int, column: int) -> None:
        super().__init__(message)
        self.line = line
        self.column = column

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_syntax_error, (str(self), self.line, self.column))


def _rebuild_syntax_error(message: str, line: int, column: int) -> TemplateSyntaxError:
    return TemplateSyntaxError(message, line=line, column=column)


def _syntax_error(text: str, offset: int, what: str, problem: str) -> TemplateSyntaxError:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    where = f"line {line}, column {column}" if "\n" in text else f"column {column}"
    return TemplateSyntaxError(f"{what} at {where} {problem}", line=line, column=column)


@dataclass(frozen=True, slots=True)
class _Ref:
    text: str  # "state.items.0.name"

    @property
    def segments(self) -> list[str]:
        return self.text.split(".")[1:]


def check_template(text: str) -> None:
    """Checks that a template is well formed.

    Args:
        text: The template.

    Raises:
        TemplateSyntaxError: A ``{{`` or ``}}`` is unbalanced, or a reference is not
            ``state.<path>``; the message gives the position. It is a ``ValueError``.
    """
    _parse(text)


def references(text: str) -> list[str]:
    """Lists the references a template makes.

    Args:
        text: The template.

    Returns:
        The paths, as written but without whitespace (``"state.items.0.name"``), in order of
        first appearance, without duplicates.

    Raises:
        ValueError: The template is malformed (see :func:`check_template`).
    """
    found: dict[str, None] = {}
    for part in _parse(text):
        if isinstance(part, _Ref):
            found.setdefault(part.text)
    return list(found)


def render(text: str, state: Mapping[str, object], *, node: str | None = None) -> str:
    """Substitutes every reference in a template.

    Args:
        text: The template.
        state: The pipeline state the references are read from.
        node: The node being rendered, for error messages.

    Returns:
        The text with each reference replaced: strings as they are, other values as compact
        JSON with sorted keys.

    Raises:
        TemplateError: The template is malformed, a reference names a missing key or index,
            or a value cannot be written as JSON.
    """
    try:
        parts = _parse(text)
    except ValueError as exc:
        raise TemplateError(f"invalid template: {exc}", node=node) from None
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = _resolve(part, state, node)
        if isinstance(value, str):
            out.append(value)
            continue
        try:
            out.append(canonical_json(value))
        except (TypeError, ValueError) as exc:
            raise TemplateError(
                f"{{{{ {part.text} }}}} holds a value that cannot be written as JSON: {exc}",
                node=node,
            ) from None
    return "".join(out)


def render_value(
    value: JsonValue, state: Mapping[str, object], *, node: str | None = None
) -> JsonValue:
    """Renders every string inside a JSON value (e.g. a tool's arguments).

    A string that is exactly one reference, like ``"{{ state.count }}"`` (whitespace around
    it allowed), is replaced by a copy of the referenced value itself, unconverted, so numbers,
    lists and objects keep their type. Other strings are rendered with :func:`render`. Dict
    keys are left as they are.

    Args:
        value: The value to render.
        state: The pipeline state the references are read from.
        node: The node being rendered, for error messages.

    Returns:
        A new value; the input is not modified.

    Raises:
        TemplateError: As for :func:`render`.
    """
    if isinstance(value, str):
        whole = _WHOLE_REF_RE.fullmatch(value)
        if whole is not None:
            # A copy, so later changes to the state cannot reach into the rendered value.
            return cast("JsonValue", copy.deepcopy(_resolve(_Ref(whole[1]), state, node)))
        return render(value, state, node=node)
    if isinstance(value, list):
        return [render_value(item, state, node=node) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, state, node=node) for key, item in value.items()}
    return value


def _parse(text: str) -> list[str | _Ref]:
    parts: list[str | _Ref] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        close = text.find("}}", pos)
        if close != -1 and (start == -1 or close < start):
            raise _syntax_error(
                text,
                close,
                "'}}'",
                "closes nothing; open the reference with '{{' or, for literal braces, write '} }'",
            )
        if start == -1:
            parts.append(text[pos:])
            break
        end = text.find("}}", start + 2)
        nested = text.find("{{", start + 2)
        if end == -1 or (nested != -1 and nested < end):
            before = "the next '{{'" if end != -1 else "the end of the text"
            raise _syntax_error(text, start, "'{{'", f"is not closed with '}}}}' before {before}")
        inner = text[start + 2 : end].strip()
        if not _PATH_RE.fullmatch(inner):
            raise _syntax_error(
                text,
                start,
                f"'{{{{{text[start + 2 : end]}}}}}'",
                "is not a state reference; write {{ state.key }} with dotted keys and "
                "list indexes only, e.g. {{ state.items.0.name }}",
            )
        parts.append(text[pos:start])
        parts.append(_Ref(inner))
        pos = end + 2
    return [part for part in parts if part != ""]


def _resolve(ref: _Ref, state: Mapping[str, object], node: str | None) -> object:
    current: object = state
    segments = ref.segments
    for depth, segment in enumerate(segments):
        where = ".".join(["state", *segments[:depth]])
        if isinstance(current, Mapping):
            if segment in current:
                current = current[segment]
                continue
            keys = sorted(str(key) for key in current)
            shown = ", ".join(keys[:_SHOWN_KEYS]) + (", ..." if len(keys) > _SHOWN_KEYS else "")
            raise TemplateError(
                f"{{{{ {ref.text} }}}}: {where} has no key {segment!r}; "
                f"keys there: {shown or '(none)'}",
                node=node,
            )
        if isinstance(current, list | tuple) and segment.isdigit():
            index = int(segment)
            if index < len(current):
                current = current[index]
                continue
            raise TemplateError(
                f"{{{{ {ref.text} }}}}: index {index} is out of range for {where}, "
                f"a list of {len(current)} item(s)",
                node=node,
            )
        if isinstance(current, list | tuple):
            problem = f"is a list, so {segment!r} must be an index such as {where}.0"
        else:
            kind = "None" if current is None else type(current).__name__
            problem = f"is {kind}, which has no key {segment!r}"
        raise TemplateError(f"{{{{ {ref.text} }}}}: {where} {problem}", node=node)
    return current
