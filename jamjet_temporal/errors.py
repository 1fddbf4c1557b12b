"""Every error jamjet-temporal raises.

The tree::

    JamJetError                      root; catch this to catch everything of ours
    ├── ConfigError                  bad plugin / task / CLI configuration (raised at construction)
    ├── PipelineSpecError            a YAML pipeline is malformed (file, line, node, fix)
    ├── PipelineRuntimeError         a pipeline failed while running (node, reason)
    │   └── TemplateError            a ``{{ state.x }}`` reference could not be resolved
    └── DevServerError               the embedded Temporal dev server could not be started

Errors raised inside workflow code are registered by ``JamJetPlugin`` as workflow failure
types: a plain exception there would fail the workflow *task* and retry it forever, ours fail
the workflow with a readable message instead. Each error carries structured fields, not just
a string, and its message says what to do next.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DevServerError",
    "JamJetError",
    "PipelineRuntimeError",
    "PipelineSpecError",
    "TemplateError",
]


class JamJetError(Exception):
    """Root of every jamjet-temporal error."""


class ConfigError(JamJetError):
    """A configuration value is invalid; the message names the field and the fix."""


class PipelineSpecError(JamJetError):
    """A YAML pipeline is malformed.

    Attributes:
        file: The pipeline file (or ``"<string>"``).
        line: 1-based line of the offending element, when known.
        node: The node id concerned, when there is one.
        reason: What is wrong.
        fix: What to change.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str = "<string>",
        line: int | None = None,
        node: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.node = node
        self.reason = reason
        self.fix = fix
        where = file if line is None else f"{file}:{line}"
        text = f"{where}: "
        if node is not None:
            text += f"node '{node}': "
        text += reason
        if fix:
            text += f" (fix: {fix})"
        super().__init__(text)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_spec_error, (self.reason, self.file, self.line, self.node, self.fix))


def _rebuild_spec_error(
    reason: str, file: str, line: int | None, node: str | None, fix: str | None
) -> PipelineSpecError:
    return PipelineSpecError(reason, file=file, line=line, node=node, fix=fix)


class PipelineRuntimeError(JamJetError):
    """A pipeline failed while running.

    Attributes:
        node: The node that failed.
        reason: What went wrong.
    """

    def __init__(self, reason: str, *, node: str | None = None) -> None:
        self.node = node
        self.reason = reason
        super().__init__(f"node '{node}': {reason}" if node else reason)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.reason,), {"node": self.node})


class TemplateError(PipelineRuntimeError):
    """A ``{{ state.x }}`` reference names a value the pipeline state does not hold."""


class DevServerError(JamJetError):
    """The embedded Temporal dev server could not be started or reached."""
