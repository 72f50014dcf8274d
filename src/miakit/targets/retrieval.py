"""Retrievers for miakit's own RAG pipelines: sparse (BM25 with ``bm25s``) and dense (a sentence encoder and a
``faiss`` inner-product index over L2-normalised embeddings, i.e. cosine similarity).

A retriever indexes a fixed list of documents and answers ``search(queries, k)`` with, per query, the ``k`` best
document positions and their scores, best first. Its ``fingerprint`` covers the documents and every setting, so
a RAG target built on it is a different target whenever the index changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from miakit.errors import MiakitError

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Hit:
    """One retrieved document: its position in the indexed list and the retriever's score (higher = closer)."""

    doc: int
    score: float


def documents_sha(documents: Sequence[str]) -> str:
    h = hashlib.sha256()
    for text in documents:
        h.update(hashlib.sha256(text.encode()).digest())
    return h.hexdigest()


def _fingerprint(kind: str, settings: dict[str, Any], documents: Sequence[str]) -> str:
    payload = json.dumps([kind, settings, documents_sha(documents)], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class BM25Retriever:
    """Okapi BM25 (``bm25s``; lower-cased words, English stop words removed) over the documents."""

    kind = "bm25"

    def __init__(self, documents: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        import bm25s

        if not documents:
            raise MiakitError("A retriever needs at least one document to index.")
        self.documents = list(documents)
        self.settings = {"k1": k1, "b": b, "stopwords": "en", "library": f"bm25s {bm25s.__version__}"}
        self.fingerprint = _fingerprint(self.kind, self.settings, self.documents)
        self._bm25s = bm25s
        self._index = bm25s.BM25(k1=k1, b=b)
        self._index.index(self._tokens(self.documents), show_progress=False)

    def _tokens(self, texts: Sequence[str]) -> Any:
        return self._bm25s.tokenize(list(texts), stopwords="en", show_progress=False)

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """The ``k`` best documents per query (fewer when the index holds fewer), best first."""
        if not queries:
            return []
        k = min(k, len(self.documents))
        ids, scores = self._index.retrieve(self._tokens(queries), k=k, show_progress=False, n_threads=1)
        return [[Hit(int(d), float(s)) for d, s in zip(row_ids, row_scores, strict=True)] for row_ids, row_scores in
                zip(ids, scores, strict=True)]  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "documents": len(self.documents), **self.settings, "fingerprint": self.fingerprint}


class DenseRetriever:
    """Cosine similarity of sentence embeddings, searched exactly (``faiss.IndexFlatIP``) or approximately
    (``hnsw=True``: ``faiss.IndexHNSWFlat`` with the inner-product metric). ``vectors``: the documents' embeddings
    by this encoder when they are already computed (another index over the same documents)."""

    kind = "dense"

    def __init__(
        self,
        documents: Sequence[str],
        encoder: Any = DEFAULT_ENCODER,
        *,
        hnsw: bool = False,
        device: str = "auto",
        vectors: np.ndarray | None = None,
    ) -> None:
        import faiss

        from miakit.targets.embedder import SentenceEmbedder

        if not documents:
            raise MiakitError("A retriever needs at least one document to index.")
        self.documents = list(documents)
        self.encoder = encoder if isinstance(encoder, SentenceEmbedder) else SentenceEmbedder.from_pretrained(
            str(encoder), device=device
        )  # fmt: skip
        self.settings = {"encoder": self.encoder.fingerprint, "hnsw": hnsw, "library": f"faiss {faiss.__version__}"}
        self.fingerprint = _fingerprint(self.kind, self.settings, self.documents)
        if vectors is None:
            vectors = np.stack(self.encoder.embed(self.documents))
        elif len(vectors) != len(self.documents):
            raise MiakitError(f"{len(vectors)} document embeddings for {len(self.documents)} documents.")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if hnsw:
            self._index = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        else:
            self._index = faiss.IndexFlatIP(vectors.shape[1])
        self._index.add(vectors)
        self.vectors = vectors

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """The ``k`` best documents per query by cosine similarity, best first."""
        if not queries:
            return []
        k = min(k, len(self.documents))
        q = np.stack(self.encoder.embed(list(queries))).astype(np.float32)
        scores, ids = self._index.search(q, k)
        return [[Hit(int(d), float(s)) for d, s in zip(row_ids, row_scores, strict=True) if d >= 0] for row_ids,
                row_scores in zip(ids, scores, strict=True)]  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "documents": len(self.documents), **self.settings, "fingerprint": self.fingerprint}


RETRIEVERS = {"bm25": BM25Retriever, "dense": DenseRetriever}


def make_retriever(kind: str, documents: Sequence[str], **options: Any) -> BM25Retriever | DenseRetriever:
    """A retriever by name: ``bm25`` or ``dense``."""
    if kind not in RETRIEVERS:
        raise MiakitError(f"Unknown retriever '{kind}': choose one of {', '.join(RETRIEVERS)}.")
    return RETRIEVERS[kind](documents, **options)
