"""One errors module: every error class of the package lives in ``errors.py``, is in the tree
its docstring draws, and is raised somewhere (no error class that nothing raises)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jamjet_temporal.errors as errors

PACKAGE = Path(errors.__file__).resolve().parent

#: Exceptions that never leave the module that raises them: each is caught by its caller and
#: turned into one of ours (the file, line and fix of a config file; a page's HTTP status).
INTERNAL = {
    "_HttpError": "approvals/_ui.py",
    "YamlSourceError": "_shared/_yaml.py",
    "TemplateSyntaxError": "pipeline/_template.py",
    "_NotJson": "pipeline/_template.py",
    "KeyFormatError": "_shared/_keys.py",
    "PrivateKeyFileError": "_shared/_keys.py",
    # The local model server is a program of its own (python -m jamjet_temporal.modelserver).
    "ScriptError": "modelserver/_script.py",
    # Caught by the A2A server and answered as the protocol says (HTTP 401, InvalidParams).
    "CallerRefused": "a2a/_token.py",
    "InputProblem": "a2a/_skills.py",
}


def _exception_classes() -> dict[str, str]:
    """Every class in the package whose bases name an exception, by name -> file."""
    found: dict[str, str] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                re.search(r"(Error|Exception)$", ast.unparse(base)) for base in node.bases
            ):
                found[node.name] = str(path.relative_to(PACKAGE))
    return found


def test_every_error_class_lives_in_errors_py() -> None:
    elsewhere = {
        name: where
        for name, where in _exception_classes().items()
        if where != "errors.py" and INTERNAL.get(name) != where
    }
    assert elsewhere == {}, f"error classes outside errors.py: {elsewhere}"


def test_the_docstring_tree_lists_every_public_error() -> None:
    tree = errors.__doc__ or ""
    drawn = set(re.findall(r"[├└]── (\w+)|^    (JamJetError)", tree, re.M))
    names = {a or b for a, b in drawn}
    public = {name for name in errors.__all__}
    assert names == public


def test_every_public_error_is_raised_somewhere() -> None:
    """No dead error classes: each is raised (or is a base others raise) by package code."""
    source = "\n".join(
        path.read_text() for path in PACKAGE.rglob("*.py") if path.name != "errors.py"
    )
    subclasses = {
        name: {sub.__name__ for sub in getattr(errors, name).__subclasses__()}
        for name in errors.__all__
    }
    unraised = [
        name
        for name in errors.__all__
        if not re.search(rf"\b{name}\b\(", source)
        and not re.search(rf"= {name}\b|type=\"{name}\"|\b{name}\.__name__", source)
        and not subclasses[name]
    ]
    assert unraised == []
