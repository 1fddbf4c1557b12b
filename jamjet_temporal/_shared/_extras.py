"""Optional extras: an ImportError that names what to install (as ``pydantic-ai-slim`` does).

Heavy parts (PostgreSQL, the PDF report, the approvals page, the command line, MCP, A2A,
OpenTelemetry) are extras of the ``jamjet-temporal`` distribution; a module that needs one
imports it inside ``try`` and raises ``missing_extra(...)`` from the ImportError.
"""

from __future__ import annotations

#: The extras of pyproject.toml, with the feature each one is for.
EXTRAS = {
    "postgres": "PostgreSQL stores",
    "pdf": "the PDF evidence report",
    "ui": "the approvals web page",
    "cli": "the jamjet command line",
    "mcp": "MCP tools",
    "a2a": "agent-to-agent delegation",
    "otel": "OpenTelemetry traces",
}


def missing_extra(extra: str, error: ImportError) -> ImportError:
    """The ImportError to raise when ``extra`` is not installed.

    Args:
        extra: The extra's name, a key of ``EXTRAS``.
        error: The ImportError the missing package raised.

    Returns:
        An ImportError saying which package is missing, for what, and the command that
        installs it.
    """
    missing = (error.name or str(error)).split(".")[0]
    return ImportError(
        f"{EXTRAS[extra]} need the '{missing}' package, which is not installed: "
        f"pip install 'jamjet-temporal[{extra}]'",
        name=error.name,
    )
