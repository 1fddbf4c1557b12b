"""Lazy package exports: a package ``__init__`` imports a submodule only when a name is used.

This is what keeps the determinism boundary cheap to hold: ``import jamjet_temporal.gate``
from workflow code loads the gate and nothing else, not the audit stores' drivers nor the
model client (which Temporal's sandbox would otherwise re-import, or refuse, in every run).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, namespace: dict[str, Any], exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a module ``__getattr__`` and ``__dir__`` serving ``exports`` lazily.

    ``namespace`` is the package's ``globals()``: a name, once imported, is kept there. The
    import goes through ``__import__`` (not ``importlib.import_module``) on purpose: inside
    Temporal's workflow sandbox, ``__import__`` is the sandbox's importer, which passes
    passthrough modules to the worker's own imports and re-imports the rest in the sandbox;
    ``importlib`` would execute the module half inside, half outside the sandbox.

    ``exports`` maps a module (absolute, or relative to ``package`` with a leading dot) to the
    names it provides; a name equal to the module's last part (``"._call"`` providing
    ``"_call"``) is not special: every name is read with ``getattr`` from its module. A name
    whose module path ends in ``:module`` (``{".memory:module": ["engram"]}``) is the module
    itself.
    """
    where: dict[str, tuple[str, bool]] = {}
    for module, names in exports.items():
        path, _, kind = module.partition(":")
        absolute = importlib.util.resolve_name(path, package) if path.startswith(".") else path
        for name in names:
            if name in where:
                raise ValueError(f"{package}: {name!r} is exported twice")
            where[name] = (absolute, kind == "module")

    def __getattr__(name: str) -> Any:
        try:
            module_name, whole = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        module = __import__(module_name, fromlist=["__name__"])
        value = module if whole else getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(where) | set(namespace))

    return __getattr__, __dir__
