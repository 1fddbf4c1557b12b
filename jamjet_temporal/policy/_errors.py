"""The policy loader's error (to be moved into ``jamjet_temporal.errors``)."""

from __future__ import annotations

from jamjet_temporal.errors import ConfigError

__all__ = ["PolicyError"]


class PolicyError(ConfigError):
    """A policy file cannot be read or is malformed; raised at worker start, never later.

    Attributes:
        file: The policy file (or ``"<string>"``).
        line: 1-based line of the offending element, when known.
        reason: What is wrong.
        fix: What to change.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str = "<string>",
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        self.fix = fix
        where = file if line is None else f"{file}:{line}"
        text = f"{where}: {reason}"
        if fix:
            text += f" (fix: {fix})"
        super().__init__(text)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_policy_error, (self.reason, self.file, self.line, self.fix))


def _rebuild_policy_error(reason: str, file: str, line: int | None, fix: str | None) -> PolicyError:
    return PolicyError(reason, file=file, line=line, fix=fix)
