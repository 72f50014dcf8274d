"""The store read-through shared by every request kind: a fully stored rerun computes nothing and loads no
weights; a kind's version is part of its keys, so bumping it recomputes that kind and no other."""

from __future__ import annotations

import numpy as np
import pytest

from lm_helpers import make_mlm, make_mlm_tokenizer, synthetic_texts
from miakit.signals import (
    GradNormRequest,
    HiddenStatesRequest,
    NeighboursRequest,
    NoisyLossRequest,
    TokenCountsRequest,
    TokenStatsRequest,
)
from miakit.signals.engine import Engine
from miakit.signals.store import Store
from miakit.targets.hf_causal import HFCausalLM
from miakit.targets.hf_mlm import HFMaskedLM

TEXTS = synthetic_texts(4, seed=31, min_words=4, max_words=10)
KINDS = (
    TokenStatsRequest,
    TokenCountsRequest,
    HiddenStatesRequest,
    GradNormRequest,
    NoisyLossRequest,
    NeighboursRequest,
)


@pytest.fixture(scope="module", autouse=True)
def _isolated_cache(tmp_path_factory):
    """MIAKIT_CACHE (where file hashes are memoised) in a temporary folder for the whole module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MIAKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def mlm_parts():
    tokenizer = make_mlm_tokenizer(TEXTS + synthetic_texts(20, seed=32))
    return make_mlm(len(tokenizer)), tokenizer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(synthetic_texts(10, seed=33)) + "\n")
    return path


def _requests(corpus) -> list:
    return [
        *(TokenStatsRequest(t) for t in TEXTS),
        *(TokenStatsRequest(t, context="The king said ") for t in TEXTS[:2]),  # a shared prefix
        TokenCountsRequest(str(corpus)),
        *(HiddenStatesRequest(t) for t in TEXTS),
        *(GradNormRequest(t) for t in TEXTS),
        *(NoisyLossRequest(t, sigma=0.1, n=2) for t in TEXTS),
        *(NeighboursRequest(t, "tiny-mlm", n=2) for t in TEXTS),
    ]


def _engine(store, tiny_model, tiny_tokenizer, mlm_parts, loads: list[str], *, refuse: bool = False) -> Engine:
    """An engine over targets built without weights: their loaders count calls (or refuse to load)."""

    def loader(name: str, model):
        def load():
            if refuse:
                raise AssertionError(f"weights of {name} loaded although every signal is stored")
            loads.append(name)
            return model

        return load

    mlm_model, mlm_tokenizer = mlm_parts
    target = HFCausalLM(
        tiny_tokenizer,
        name="tiny",
        fingerprint="test:tiny",
        config=tiny_model.config,
        loader=loader("tiny", tiny_model),
    )
    mlm = HFMaskedLM(
        mlm_tokenizer,
        name="tiny-mlm",
        fingerprint="test:tiny-mlm",
        config=mlm_model.config,
        loader=loader("tiny-mlm", mlm_model),
    )
    return Engine({None: target}, store, batch_size=3, progress=False, mlms={"tiny-mlm": mlm})


def _per_kind(requests) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in requests:
        out[r.kind] = out.get(r.kind, 0) + 1
    return out


@pytest.fixture(scope="module")
def stored(tmp_path_factory, tiny_model, tiny_tokenizer, mlm_parts, corpus):
    """A store holding every signal of every kind, and the values of that first run."""
    store = Store(tmp_path_factory.mktemp("store"))
    requests = _requests(corpus)
    loads: list[str] = []
    engine = _engine(store, tiny_model, tiny_tokenizer, mlm_parts, loads)
    signals = engine.run(requests)
    return store, requests, signals, engine, loads


def test_first_run_computes_every_kind(stored):
    _, requests, _, engine, loads = stored
    assert {k: c.computed for k, c in engine.kind_counts.items()} == _per_kind(requests)
    assert all(c.cached == 0 for c in engine.kind_counts.values())
    assert engine.counts.forward_passes_computed > 0 and engine.counts.backward_passes_computed == len(TEXTS)
    assert sorted(set(loads)) == ["tiny", "tiny-mlm"]


def test_fully_stored_rerun_computes_nothing_and_loads_no_weights(stored, tiny_model, tiny_tokenizer, mlm_parts):
    store, requests, first, first_engine, _ = stored
    engine = _engine(store, tiny_model, tiny_tokenizer, mlm_parts, [], refuse=True)
    signals = engine.run(requests)
    assert {k: c.cached for k, c in engine.kind_counts.items()} == _per_kind(requests)
    assert all(c.computed == 0 for c in engine.kind_counts.values())
    counts = engine.counts
    assert counts.forward_passes_computed == 0 and counts.tokens_computed == 0 and counts.backward_passes_computed == 0
    assert counts.forward_passes_cached == len(requests) - 1  # every stored item but the corpus token counts
    assert counts.tokens_cached == first_engine.counts.tokens_computed
    for r in requests:
        if isinstance(r, TokenStatsRequest):
            np.testing.assert_array_equal(signals[r].logprob, first[r].logprob)
            np.testing.assert_array_equal(signals[r].token_ids, first[r].token_ids)
        elif isinstance(r, NeighboursRequest):
            assert signals[r] == first[r] and len(signals[r]) == 2
        else:
            np.testing.assert_array_equal(signals[r], first[r])


@pytest.mark.parametrize("kind", KINDS, ids=[k.kind for k in KINDS])
def test_bumping_one_kinds_version_recomputes_only_that_kind(
    kind, stored, tiny_model, tiny_tokenizer, mlm_parts, monkeypatch
):
    store, requests, first, _, _ = stored
    monkeypatch.setattr(kind, "version", kind.version + 1)
    loads: list[str] = []
    engine = _engine(store, tiny_model, tiny_tokenizer, mlm_parts, loads)
    signals = engine.run(requests)
    computed = {k: c.computed for k, c in engine.kind_counts.items() if c.computed}
    assert computed == {kind.kind: _per_kind(requests)[kind.kind]}
    assert engine.kind_counts[kind.kind].cached == 0
    if kind is not TokenCountsRequest:
        assert set(loads) == {"tiny-mlm" if kind is NeighboursRequest else "tiny"}
    for r in requests:
        if isinstance(r, kind) and isinstance(r, (TokenCountsRequest, HiddenStatesRequest)):
            np.testing.assert_allclose(signals[r], first[r], rtol=1e-5, atol=1e-6)  # recomputed, same values
