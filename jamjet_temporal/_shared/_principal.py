"""Principal ids compared the way people read them (pure: safe in workflow code).

Who requested an action and who approves it are compared with :func:`principal_key`, never
byte for byte: ``Alice@example.com``, ``alice@example.com `` (a trailing space), the full-width
``ａlice`` and ``аlice`` with a Cyrillic ``а`` are all the same person as ``alice@example.com``.
The key is NFKC, stripped, case-folded, with every character that Unicode lists as confusable
with an ASCII character (``confusable_homoglyphs``' copy of Unicode's confusables table)
replaced by that character, then case-folded again.
"""

from __future__ import annotations

import functools
import unicodedata

from confusable_homoglyphs import confusables  # type: ignore[import-untyped]

__all__ = ["principal_key", "same_principal"]


@functools.cache
def _ascii_look_alikes() -> dict[str, str]:
    table: dict[str, str] = {}
    for char, glyphs in confusables.confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        for glyph in glyphs:
            if len(glyph["c"]) == 1 and glyph["c"].isascii() and glyph["c"].isprintable():
                table[char] = glyph["c"]
                break
    return table


def principal_key(identifier: str) -> str:
    """The form two ids are compared in (see the module docstring).

    Args:
        identifier: A user or approver id.

    Returns:
        Its comparison key; equal keys mean the same principal.
    """
    text = unicodedata.normalize("NFKC", identifier).strip().casefold()
    table = _ascii_look_alikes()
    return "".join(table.get(char, char) for char in text).casefold()


def same_principal(first: str | None, second: str | None) -> bool:
    """Whether two ids name the same principal (False when either is unknown)."""
    if first is None or second is None:
        return False
    return principal_key(first) == principal_key(second)
