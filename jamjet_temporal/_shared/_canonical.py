"""The one canonical JSON text and the one digest over it (pure, workflow-safe).

Every digest and every signed statement in the package is computed from :func:`canonical_json`:

- object keys sorted (by the text written), no whitespace (``","`` and ``":"``);
- non-ASCII characters written as themselves and hashed as UTF-8 (never ``\\uXXXX`` escapes);
- NaN and infinities refused (JSON has no such numbers);
- pydantic models, dataclasses, datetimes, enums and the like written as pydantic writes them
  in JSON mode (``pydantic_core.to_jsonable_python``); non-text object keys written as text.

:func:`digest` is ``"sha256:"`` + hex SHA-256 of those UTF-8 bytes.

For plain JSON values (dicts with text keys, lists, text, numbers, booleans, null) the text is
exactly ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)``: the audit store's hash chain, signed checkpoints and bundles, approval
digests and signed decisions, policy versions and gate digests all use it, so it must never
change (every stored chain and every recorded digest would stop matching).

Pure: no I/O, no clock, no randomness, no module state; safe inside the workflow sandbox.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Final

from pydantic_core import PydanticSerializationError, to_jsonable_python

__all__ = ["DIGEST_PREFIX", "canonical_json", "digest"]

DIGEST_PREFIX: Final = "sha256:"
"""What every :func:`digest` starts with."""


def canonical_json(value: object, *, fallback: Callable[[Any], Any] | None = None) -> str:
    """The canonical JSON text of ``value`` (rules in the module docstring).

    Args:
        value: A JSON value, or anything pydantic can write as one (models, datetimes, ...).
        fallback: For values pydantic cannot write: a function giving what to write instead
            (e.g. ``repr``). Without it such a value is an error.

    Returns:
        The canonical JSON text.

    Raises:
        ValueError: ``value`` holds NaN or an infinity.
        TypeError: ``value`` holds something that cannot be written as JSON (and no
            ``fallback`` was given).
    """
    try:
        plain = to_jsonable_python(value, fallback=fallback)
    except PydanticSerializationError as exc:
        raise TypeError(f"cannot be written as canonical JSON: {exc}") from None
    try:
        return json.dumps(
            plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
        raise ValueError(f"canonical JSON cannot hold NaN or an infinity ({exc})") from None


def digest(value: object, *, fallback: Callable[[Any], Any] | None = None) -> str:
    """``"sha256:"`` + 64 hex digits: SHA-256 of the UTF-8 bytes of ``canonical_json(value)``.

    Args:
        value: As for :func:`canonical_json`.
        fallback: As for :func:`canonical_json`.

    Returns:
        The digest.

    Raises:
        ValueError: As for :func:`canonical_json`.
        TypeError: As for :func:`canonical_json`.
    """
    text = canonical_json(value, fallback=fallback)
    return DIGEST_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()
