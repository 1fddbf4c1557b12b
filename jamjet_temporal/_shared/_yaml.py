"""YAML configuration files whose errors point at a line: shared by pipelines and policies.

The document is composed into a node tree first (kept for line numbers) and constructed second.
Problems come back as :class:`YamlSourceError` without a file name or error class of their own:
each loader turns them into its own error (``PipelineSpecError``, ``PolicyError``).

- :func:`load_yaml` parses text into ``(root node, data)``, rejecting duplicate keys.
- :func:`locate` / :func:`node_at` map a path such as ``("rules", 2, "match")`` to a line / node.
- :func:`pick_error` chooses the most useful error of a pydantic ``ValidationError`` and where it
  is; :func:`explain_error` turns it into a reason and a fix.

This module does I/O-free parsing only, but imports PyYAML: it belongs to the loaders that run at
worker start, never to workflow code.
"""

from __future__ import annotations

import difflib
import os
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

__all__ = [
    "DuplicateKey",
    "PickedError",
    "YamlSourceError",
    "did_you_mean",
    "display_path",
    "explain_error",
    "load_yaml",
    "locate",
    "model_at",
    "node_at",
    "node_line",
    "pick_error",
    "short",
]

Path = tuple[str | int, ...]

_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_YAML_FIX: Final = (
    "check indentation (spaces, not tabs) and quoting near that line; quote values that "
    "contain ': ' or ' #', or start with one of { [ * & ! | > ' \" % @ `"
)


@dataclass(frozen=True)
class DuplicateKey:
    """A key written twice in one mapping.

    Attributes:
        name: The key.
        path: Path of the mapping that holds it (``()`` for the top level).
        first_line: 1-based line of the first occurrence.
        line: 1-based line of the second occurrence.
    """

    name: str
    path: Path
    first_line: int
    line: int


def load_mapping(
    text: str, *, what: str, start_fix: str, alias_fix: str
) -> tuple[yaml.Node, dict[object, object]]:
    """``load_yaml`` for a document whose top level must be a mapping.

    Args:
        text: The YAML document.
        what: What the files are, for messages ("policy files").
        start_fix: How such a file starts, for an empty or non-mapping document.
        alias_fix: The fix for an alias error (a leading ``*`` in an unquoted glob).

    Returns:
        The composed root node and the loaded mapping.

    Raises:
        YamlSourceError: Invalid YAML, or a top level that is not a mapping.
    """
    try:
        root, data = load_yaml(text, what=what)
    except YamlSourceError as exc:
        if "alias" not in exc.reason:
            raise
        # `match: *delete*` is the usual cause: YAML reads a leading `*` as an alias.
        raise YamlSourceError(
            exc.reason, line=exc.line, fix=alias_fix, duplicate=exc.duplicate
        ) from None
    if root is None or not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise YamlSourceError(
            f"the top level must be a mapping, but it is {kind}",
            line=1 if root is None else node_line(root),
            fix=start_fix,
        )
    return root, data


def read_source(file: str, *, what: str) -> str:
    """The text of a YAML file, or a ``YamlSourceError`` saying why it cannot be read.

    Args:
        file: The path.
        what: What the file should be, for messages ("policy file", "pipeline file").

    Returns:
        The file's text.

    Raises:
        YamlSourceError: Missing, a directory, not UTF-8, or unreadable (``line`` is None).
    """
    try:
        with open(file, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        reason = f"{what} not found"
        fix = "check the path; a relative path starts from the current directory"
    except IsADirectoryError:
        article = "an" if what[:1] in "aeiou" else "a"
        reason, fix = f"this is a directory, not {article} {what}", "pass the .yaml file"
    except UnicodeDecodeError as exc:
        reason, fix = f"the file is not valid UTF-8 (byte {exc.start})", "save it as UTF-8"
    except OSError as exc:
        reason = f"cannot read the {what}: {exc.strerror or exc}"
        fix = "check that the file exists and is readable"
    raise YamlSourceError(reason, line=None, fix=fix)


def read_file(
    path: str | os.PathLike[str], *, what: str, error: Callable[..., Exception]
) -> tuple[str, str]:
    """A config file's name and text; ``error(reason, file=..., fix=...)`` when unreadable.

    Args:
        path: The file.
        what: What the file is, for messages ("policy file").
        error: The file kind's error class (``PolicyError``, ...).

    Returns:
        The file's name as given and its text.
    """
    file = os.fspath(path)
    try:
        return file, read_source(file, what=what)
    except YamlSourceError as exc:
        raise error(exc.reason, file=file, fix=exc.fix) from None


class YamlSourceError(Exception):
    """The text is not a usable YAML document.

    Attributes:
        reason: What is wrong.
        line: 1-based line, when known.
        fix: What to change.
        duplicate: Set when the problem is a duplicate key, so that callers can word it for
            their own format (e.g. "node defined twice").
    """

    def __init__(
        self,
        reason: str,
        *,
        line: int | None,
        fix: str,
        duplicate: DuplicateKey | None = None,
    ) -> None:
        self.reason = reason
        self.line = line
        self.fix = fix
        self.duplicate = duplicate
        super().__init__(reason if line is None else f"line {line}: {reason}")


class _Loader(yaml.SafeLoader):
    """``SafeLoader`` that keeps dates as text: configuration values must be plain JSON."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str, *, what: str) -> tuple[yaml.Node | None, object]:
    """Parses one YAML document, keeping its node tree for line numbers.

    Args:
        text: The YAML document.
        what: The kind of file, plural, for messages (``"pipelines"``).

    Returns:
        The root node (``None`` for an empty document) and the constructed data.

    Raises:
        YamlSourceError: Invalid YAML, a tag, too deep nesting, or a key twice in one mapping.
    """
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        # Before construction: merge keys (`<<`) are flattened in place when constructing.
        _check_duplicates(root, (), set())
        data: object = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem and exc.context_mark:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        fix = _YAML_FIX
        if "constructor for the tag" in problem:
            fix = f"remove the tag: {what} are plain YAML (mappings, lists, text, numbers)"
        if mark is None:
            raise YamlSourceError(f"invalid YAML: {problem}", line=None, fix=fix) from None
        raise YamlSourceError(
            f"invalid YAML at column {mark.column + 1}: {problem}", line=mark.line + 1, fix=fix
        ) from None
    except yaml.YAMLError as exc:
        raise YamlSourceError(f"invalid YAML: {exc}", line=None, fix=_YAML_FIX) from None
    except RecursionError:
        raise YamlSourceError(
            "the YAML is nested too deeply", line=None, fix="flatten the document"
        ) from None
    finally:
        loader.dispose()
    return root, data


def node_line(node: yaml.Node) -> int:
    """The 1-based line where ``node`` starts."""
    return int(node.start_mark.line) + 1


def _check_duplicates(node: yaml.Node, path: Path, seen: set[int]) -> None:
    # An alias makes the same node appear many times; checking it once is enough (and keeps
    # a "billion laughs" document from taking forever).
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicates(item, (*path, index), seen)
    elif isinstance(node, yaml.MappingNode):
        first_seen: dict[tuple[str, str], yaml.Node] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                name = str(key.value)
                earlier = first_seen.setdefault((key.tag, name), key)
                if earlier is not key:
                    duplicate = DuplicateKey(name, path, node_line(earlier), node_line(key))
                    raise YamlSourceError(
                        f"key '{name}' appears twice in the same mapping (first at line "
                        f"{duplicate.first_line}); YAML would silently keep only the last one",
                        line=duplicate.line,
                        fix="remove one of them",
                        duplicate=duplicate,
                    )
            segment = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
            _check_duplicates(value, (*path, segment), seen)


def locate(
    root: yaml.Node, path: Sequence[str | int], *, missing: bool = False
) -> tuple[int, Path]:
    """Finds the line of ``path`` in the composed tree.

    Args:
        root: The root node from :func:`load_yaml`.
        path: Keys and list indexes, as in a pydantic error's ``loc``.
        missing: The last segment names a key that is missing (report its mapping's line).

    Returns:
        The line of the deepest element found (a key's line for a mapping entry) and the path
        as it exists in the file: segments that match nothing are pydantic union tags such as
        ``'list[Edge]'`` and are dropped, except, when ``missing``, the last one.
    """
    node = root
    line = node_line(root)
    found: list[str | int] = []
    for position, segment in enumerate(path):
        child: yaml.Node | None = None
        child_line = line
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:  # the last match wins, as in construction
                if isinstance(key, yaml.ScalarNode) and key.value == str(segment):
                    child, child_line = value, node_line(key)
        elif isinstance(node, yaml.SequenceNode) and isinstance(segment, int):
            if 0 <= segment < len(node.value):
                child = node.value[segment]
                child_line = node_line(child)
        if child is None:
            if missing and position == len(path) - 1 and isinstance(node, yaml.MappingNode):
                found.append(segment)
            continue
        node, line = child, child_line
        found.append(segment)
    return line, tuple(found)


def node_at(root: yaml.Node, path: Sequence[str | int]) -> yaml.Node | None:
    """The node at ``path``, or ``None`` if the file has nothing there."""
    node: yaml.Node | None = root
    for segment in path:
        if isinstance(node, yaml.SequenceNode) and isinstance(segment, int):
            node = node.value[segment] if 0 <= segment < len(node.value) else None
        elif isinstance(node, yaml.MappingNode):
            matches = [value for key, value in node.value if key.value == str(segment)]
            node = matches[-1] if matches else None
        else:
            return None
    return node


def did_you_mean(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate closest to ``word``, if one is close enough to be a typo."""
    close = difflib.get_close_matches(word, candidates, n=1)
    return close[0] if close else None


def display_path(path: Sequence[str | int]) -> str:
    """``("rules", 2, "match")`` as ``rules[2].match``."""
    text = ""
    for segment in path:
        text += f"[{segment}]" if isinstance(segment, int) else f".{segment}"
    return text.lstrip(".")


def short(value: object) -> str:
    """``repr(value)``, cut to fit in a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _submodel(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def model_at(model: type[BaseModel], path: Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model that validates the value at ``path`` under ``model``, if any."""
    current: type[BaseModel] | None = model
    for segment in path:
        if isinstance(segment, int):
            continue
        if current is None or segment not in current.model_fields:
            return None
        current = _submodel(current.model_fields[segment].annotation)
    return current


@dataclass(frozen=True)
class PickedError:
    """The pydantic error worth reporting, and where it is in the file.

    Attributes:
        line: 1-based line.
        path: Its location relative to the validated value, as it exists in the file.
        error: The pydantic error.
    """

    line: int
    path: Path
    error: ErrorDetails


def pick_error(exc: ValidationError, root: yaml.Node, prefix: Path = ()) -> PickedError:
    """Chooses the most useful of a validation's errors and finds its line.

    Args:
        exc: The error from validating the value at ``prefix``.
        root: The root node from :func:`load_yaml`.
        prefix: Path of the validated value in the file.

    Returns:
        The chosen error.
    """
    candidates = []
    for index, error in enumerate(exc.errors(include_url=False)):
        loc = (*prefix, *error["loc"])
        line, found = locate(root, loc, missing=error["type"] == "missing")
        relative = found[len(prefix) :]
        # An unknown key usually explains the "missing" error next to it (a typo); else
        # the deepest error is the most specific (union branches report at several depths).
        rank = (error["type"] != "extra_forbidden", -len(relative), index)
        candidates.append((rank, PickedError(line, relative, error)))
    return min(candidates, key=lambda candidate: candidate[0])[1]


def explain_error(
    error: ErrorDetails,
    path: Path,
    model: type[BaseModel],
    what: str,
    shown: str = "",
    *,
    hidden: Sequence[str] = (),
) -> tuple[str, str]:
    """Turns one pydantic error into a reason and a fix.

    Args:
        error: The error.
        path: Its location relative to ``model`` (see :class:`PickedError`).
        model: The model that was validated.
        what: What the model is, for messages (``"a tool node"``).
        shown: Prefix of ``path`` in messages (``"workflow."``).
        hidden: Field names never suggested as allowed keys.

    Returns:
        The reason and the fix.
    """
    kind = error["type"]
    field = shown + display_path(path)
    given = short(error.get("input"))
    last = path[-1] if path else ""
    if kind == "extra_forbidden":
        owner = model_at(model, path[:-1])
        allowed = [name for name in owner.model_fields if name not in hidden] if owner else []
        where = f" in '{shown}{display_path(path[:-1])}'" if len(path) > 1 else f" for {what}"
        close = did_you_mean(str(last), allowed)
        fix = (
            f"did you mean '{close}'?"
            if close
            else f"remove it (allowed here: {', '.join(allowed)})"
        )
        return f"unknown key '{last}'{where}", fix
    if kind == "missing":
        parent = (shown + display_path(path[:-1])).rstrip(".")
        under = f" under `{parent}:`" if parent else ""
        return f"missing required key '{field}' for {what}", f"add `{last}: ...`{under}"
    if kind == "invalid_key":
        return f"key {given} is not text", "quote the key, or use a name"
    if not path:
        return f"{what} must be a mapping, got {given}", "indent its keys under it"
    reason = f"'{field}': {error['msg']}, got {given}"
    ctx = error.get("ctx") or {}
    if kind == "string_type":
        fix = f"write '{field}' as text (quote it if YAML reads it as a number or a boolean)"
    elif kind.startswith("int_"):
        fix = f"give '{field}' a whole number"
    elif kind.startswith("float_") or kind == "finite_number":
        fix = f"give '{field}' a finite number"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = next(iter(ctx.values()), "")
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        words = kind.replace("_", " ").replace("equal", "or equal to")
        fix = f"give '{field}' a value {words} {bound}"
    elif kind in ("dict_type", "model_type"):
        fix = f"write '{field}' as a mapping (keys indented under it)"
    elif kind == "list_type":
        fix = f"write '{field}' as a list (`- item` lines)"
    else:
        fix = f"change '{field}'"
    return reason, fix
