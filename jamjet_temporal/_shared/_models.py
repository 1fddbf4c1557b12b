"""A pydantic base for models that compile something at construction (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel


class CompiledModel(BaseModel):
    """A model whose ``model_post_init`` builds private derived state (matchers, indexes).

    pydantic's ``model_copy`` skips validation and post-init, so a copy would carry stale
    derived state; here a copy is validated and built like a new instance.
    """

    def model_copy(self, *, update: Mapping[str, object] | None = None, deep: bool = False) -> Self:
        """Returns a copy with ``update`` applied, validated and built like a new instance.

        Args:
            update: Field values to change.
            deep: Ignored: these models are immutable all the way down.

        Returns:
            The new instance (``self`` when there is nothing to change).
        """
        if not update:
            return self
        return self.model_validate({**dict(self), **update})
