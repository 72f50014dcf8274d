"""ReCaLL and Con-ReCall against an independent computation, and the prefix key/value cache of the engine."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lm_helpers import make_model, synthetic_texts
from miakit.attacks import ATTACKS
from miakit.data import Sample
from miakit.errors import MiakitError
from miakit.signals.engine import Engine
from miakit.targets.hf_causal import HFCausalLM


@pytest.fixture(scope="module")
def tiny_model(tiny_tokenizer):
    """A tiny model with room for a prefix of several shots plus the text (256 positions)."""
    return make_model(len(tiny_tokenizer), n_positions=256)


@pytest.fixture(scope="module")
def target(tiny_model, tiny_tokenizer):
    return HFCausalLM.from_model(tiny_model, tiny_tokenizer)


@pytest.fixture(scope="module")
def data():
    calibration = [Sample(f"cn{i}", t, 0) for i, t in enumerate(synthetic_texts(8, seed=5, min_words=4, max_words=7))]
    calibration += [Sample(f"cm{i}", t, 1) for i, t in enumerate(synthetic_texts(8, seed=7, min_words=4, max_words=7))]
    samples = [Sample(f"s{i}", t, i % 2) for i, t in enumerate(synthetic_texts(10, seed=6, min_words=5, max_words=12))]
    return calibration, samples


def _logprobs(model, ids: list[int]) -> np.ndarray:
    """log p(ids[j] | ids[:j]) for j >= 1, plain torch."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    return np.array([float(logp[j - 1, ids[j]]) for j in range(1, len(ids))])


def _ll(model, tok, text: str) -> float:
    return float(np.mean(_logprobs(model, tok(text)["input_ids"])))


def _conditional_ll(model, tok, prefix: str, text: str) -> float:
    """Mean log-prob of the text's tokens after ``prefix + " "`` (first text token predicted from the prefix)."""
    whole = tok(prefix + " " + text)["input_ids"]
    n_ctx = len(tok(prefix)["input_ids"])
    return float(np.mean(_logprobs(model, whole)[n_ctx - 1 :]))


def test_recall_matches_an_independent_computation(target, data, tiny_model, tiny_tokenizer):
    calibration, samples = data
    attack = ATTACKS["recall"](n_shots=3, seed=1).fit(calibration, {})
    shots = random.Random(1).sample([s for s in calibration if s.label == 0], 3)
    assert [s.id for s in attack.shots_] == [s.id for s in shots]
    prefix = " ".join(s.text for s in shots)
    signals = Engine({None: target}, None, progress=False).run(attack.requests(samples))
    got = attack.score(samples, signals)
    want = [
        _conditional_ll(tiny_model, tiny_tokenizer, prefix, s.text) / _ll(tiny_model, tiny_tokenizer, s.text)
        for s in samples
    ]
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert "3 calibration non-members" in attack.fitted_on()


def test_con_recall_matches_an_independent_computation(target, data, tiny_model, tiny_tokenizer):
    calibration, samples = data
    attack = ATTACKS["con_recall"](n_shots=2, gamma=0.5, seed=4).fit(calibration, {})
    nm = " ".join(s.text for s in random.Random(4).sample([s for s in calibration if s.label == 0], 2))
    m = " ".join(s.text for s in random.Random(4).sample([s for s in calibration if s.label == 1], 2))
    signals = Engine({None: target}, None, progress=False).run(attack.requests(samples))
    got = attack.score(samples, signals)
    want = [
        (
            _conditional_ll(tiny_model, tiny_tokenizer, nm, s.text)
            - 0.5 * _conditional_ll(tiny_model, tiny_tokenizer, m, s.text)
        )
        / _ll(tiny_model, tiny_tokenizer, s.text)
        for s in samples
    ]
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_prefix_attacks_need_fitting_and_calibration_of_the_right_labels(data):
    calibration, samples = data
    with pytest.raises(MiakitError, match="fitted on a calibration set"):
        ATTACKS["recall"]().requests(samples)
    with pytest.raises(MiakitError, match="calibration members"):
        ATTACKS["con_recall"]().fit([s for s in calibration if s.label == 0], {})


def test_prefix_cache_equals_whole_sequences(target, data, monkeypatch):
    """The engine's shared-prefix path (prefix encoded once, key/value cache reused) vs whole sequences."""
    calibration, samples = data
    attack = ATTACKS["recall"](n_shots=3).fit(calibration, {})
    requests = attack.requests(samples)
    cached_engine = Engine({None: target}, None, batch_size=4, progress=False)
    cached = cached_engine.run(requests)
    assert cached_engine.notes[target.name].prefix_cached_texts == len(samples)
    monkeypatch.setattr(Engine, "_shared_prefixes", lambda self, target, items, n_windows: ({}, items))
    plain_engine = Engine({None: target}, None, batch_size=3, progress=False)
    plain = plain_engine.run(requests)
    assert plain_engine.notes[target.name].prefix_cached_texts == 0
    for r in requests:
        for field in ("logprob", "mu", "sigma", "entropy", "rank"):
            np.testing.assert_allclose(getattr(cached[r], field), getattr(plain[r], field), atol=1e-4, rtol=1e-4)
        np.testing.assert_array_equal(cached[r].token_ids, plain[r].token_ids)


def test_long_prefix_is_cut_from_the_left_to_fit_the_context(target, data):
    _, samples = data
    long_shots = [Sample(f"L{i}", t, 0) for i, t in enumerate(synthetic_texts(40, seed=9, min_words=20))]
    attack = ATTACKS["recall"](n_shots=40).fit(long_shots, {})  # far more than 256 tokens
    engine = Engine({None: target}, None, progress=False)
    signals = engine.run(attack.requests(samples))
    scores = attack.score(samples, signals)
    assert np.isfinite(scores).all()
    assert engine.notes[target.name].truncated_contexts == len(samples)


def test_con_recall_orientation_on_signals():
    """Members: a member prefix raises their likelihood and a non-member prefix lowers it; they score higher."""
    from miakit.signals import TokenStats, TokenStatsRequest

    def stats(ll: float) -> TokenStats:
        n = 4
        arrays = {f: np.zeros(n, np.float32) for f in TokenStats.__dataclass_fields__}
        arrays["logprob"] = np.full(n, ll, np.float32)
        return TokenStats.from_arrays(arrays)

    attack = ATTACKS["con_recall"](n_shots=1)
    attack.nonmember_prefix_, attack.member_prefix_ = "NM", "M"
    member, nonmember = Sample("a", "member text", 1), Sample("b", "other text", 0)
    signals = {
        TokenStatsRequest("member text"): stats(-2.0),
        TokenStatsRequest("member text", "NM "): stats(-3.0),
        TokenStatsRequest("member text", "M "): stats(-1.5),
        TokenStatsRequest("other text"): stats(-2.0),
        TokenStatsRequest("other text", "NM "): stats(-2.1),
        TokenStatsRequest("other text", "M "): stats(-2.0),
    }
    member_score, nonmember_score = attack.score([member, nonmember], signals)
    assert member_score > nonmember_score
