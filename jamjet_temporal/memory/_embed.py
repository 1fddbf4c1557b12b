"""Embedders: meaning for Engram's retrieval (activity side).

Every fact and turn gets a vector when it is stored, and ``context_for`` fuses the vector
ranking with the lexical one. The default embedder is WordLlama (a static embedding model whose
weights ship inside its PyPI wheel: offline, pure numpy, loaded once per worker process); a team
with an OpenAI-compatible ``/v1/embeddings`` endpoint can use it instead.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from jamjet_temporal.errors import ConfigError

__all__ = ["Embedder", "OpenAIEmbedder", "WordLlamaEmbedder", "default_embedder"]

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into unit-length vectors; ``name`` tells stored vectors of models apart."""

    name: str

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One L2-normalised ``float32`` row per text."""
        ...


def _normalised(matrix: Any) -> Vectors:
    out = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: Vectors = out / norms
    return normalised


class WordLlamaEmbedder:
    """WordLlama's 256-dimension ``l2_supercat`` model, loaded from its installed wheel.

    Its loader would fetch the tokenizer file from the network although the wheel holds it:
    it is loaded with ``cache_dir`` set to the installed package and downloads disabled.
    """

    name = "wordllama/l2_supercat/256"
    _model: Any = None
    _lock = threading.Lock()

    def _load(self) -> Any:
        with WordLlamaEmbedder._lock:
            if WordLlamaEmbedder._model is None:
                import wordllama  # type: ignore[import-untyped]
                from wordllama import WordLlama

                folder = os.path.dirname(wordllama.__file__)
                WordLlamaEmbedder._model = WordLlama.load(
                    config="l2_supercat", dim=256, cache_dir=folder, disable_download=True
                )
            return WordLlamaEmbedder._model

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, 256), dtype=np.float32)
        return _normalised(self._load().embed(list(texts)))


class OpenAIEmbedder:
    """An OpenAI-compatible ``/v1/embeddings`` endpoint.

    Args:
        base_url: The API's base URL (``.../v1``).
        model: The embedding model.
        api_key: Its key; None: ``$OPENAI_API_KEY`` if set.
        timeout: Seconds per request.
    """

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, timeout: float = 30.0
    ) -> None:
        if not base_url or not model:
            raise ConfigError("OpenAIEmbedder needs a base_url and a model")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai/{model}"
        self._key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._timeout = timeout

    def embed(self, texts: Sequence[str]) -> Vectors:
        import httpx

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        response = httpx.post(
            f"{self.base_url}/embeddings",
            json={"model": self.model, "input": list(texts)},
            headers=headers,
            timeout=self._timeout,
        )
        response.raise_for_status()
        data = sorted(response.json()["data"], key=lambda item: item["index"])
        return _normalised([item["embedding"] for item in data])


_DEFAULT: Embedder | None = None


def default_embedder() -> Embedder:
    """The process's default embedder (WordLlama, loaded on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = WordLlamaEmbedder()
    return _DEFAULT
