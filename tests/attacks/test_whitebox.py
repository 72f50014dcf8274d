"""GradNorm, Noisy Neighbours, the activation probe, PAC and the neighbourhood attack against independent
computations on a tiny model built here; their signals are stored (a rerun makes no pass)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lm_helpers import make_mlm, make_mlm_tokenizer, make_model, synthetic_texts
from miakit.attacks import ATTACKS
from miakit.attacks.perturbation import polarized_distance, swap_augmentations
from miakit.data import Sample
from miakit.run.runner import collect_signals
from miakit.signals.engine import Engine
from miakit.signals.store import Store
from miakit.targets.hf_causal import HFCausalLM


@pytest.fixture(scope="module")
def model(tiny_tokenizer):
    return make_model(len(tiny_tokenizer), n_positions=128, seed=3)


@pytest.fixture(scope="module")
def target(model, tiny_tokenizer):
    return HFCausalLM.from_model(model, tiny_tokenizer)


@pytest.fixture(scope="module")
def samples():
    texts = synthetic_texts(8, seed=21, min_words=5, max_words=14)
    return [Sample(f"s{i}", t, i % 2) for i, t in enumerate(texts)]


def _ids(tok, text):
    return torch.tensor([tok(text)["input_ids"]])


def _nll(model, ids, embeds=None):
    logits = model(input_ids=None if embeds is not None else ids, inputs_embeds=embeds).logits
    logp = torch.log_softmax(logits[:, :-1].double(), -1)
    return -logp.gather(-1, ids.expand(logits.shape[0], -1)[:, 1:, None]).squeeze(-1).mean(1)


def test_gradnorm_matches_plain_autograd(target, model, tiny_tokenizer, samples):
    engine = Engine({None: target}, None, progress=False)
    for p_norm in (1.0, 2.0, math.inf):
        attack = ATTACKS["gradnorm"](p=p_norm)
        got = attack.score(samples, engine.run(attack.requests(samples)))
        want = []
        for s in samples:
            model.zero_grad()
            _nll(model, _ids(tiny_tokenizer, s.text))[0].float().backward()
            norms = [float(p.grad.norm(p_norm)) for p in model.parameters() if p.grad is not None]
            want.append(-np.mean(norms))
        model.zero_grad()
        np.testing.assert_allclose(got, want, rtol=2e-4)


def test_noisy_neighbours_is_mean_noisy_loss_minus_clean_loss(target, model, tiny_tokenizer, samples):
    attack = ATTACKS["noisy_neighbours"](sigma=0.1, n=5, seed=2)
    signals = Engine({None: target}, None, progress=False).run(attack.requests(samples))
    got = attack.score(samples, signals)
    with torch.no_grad():
        for s, value in zip(samples, got, strict=True):
            ids = _ids(tiny_tokenizer, s.text)
            clean = float(_nll(model, ids)[0])
            noisy = signals[attack._request(s.text)]
            assert noisy.shape == (5,) and np.all(noisy > 0)
            assert value == pytest.approx(float(np.mean(noisy)) - clean, rel=1e-5, abs=1e-6)
    zero = ATTACKS["noisy_neighbours"](sigma=0.0, n=2)
    flat = zero.score(samples, Engine({None: target}, None, progress=False).run(zero.requests(samples)))
    np.testing.assert_allclose(flat, 0.0, atol=1e-5)


def test_noisy_losses_are_reproducible_and_independent_of_order(target, samples):
    attack = ATTACKS["noisy_neighbours"](sigma=0.1, n=3)
    a = Engine({None: target}, None, progress=False).run(attack.requests(samples))
    b = Engine({None: target}, None, progress=False).run(attack.requests(samples[::-1]))
    for s in samples:
        np.testing.assert_array_equal(a[attack._request(s.text)], b[attack._request(s.text)])


def test_hidden_means_match_plain_hidden_states(target, model, tiny_tokenizer, samples):
    from miakit.signals import HiddenStatesRequest

    signals = Engine({None: target}, None, batch_size=3, progress=False).run(
        [HiddenStatesRequest(s.text) for s in samples]
    )
    with torch.no_grad():
        for s in samples:
            out = model.transformer(input_ids=_ids(tiny_tokenizer, s.text), output_hidden_states=True)
            want = torch.stack([h[0].mean(0) for h in out.hidden_states]).numpy()
            np.testing.assert_allclose(signals[HiddenStatesRequest(s.text)], want, atol=1e-5)


def test_activation_probe_picks_the_separating_layer_and_never_scores_calibration():
    """Synthetic activations where only layer 2 carries the label: the probe must choose it."""
    from miakit.signals import HiddenStatesRequest

    rng = np.random.default_rng(0)
    calibration = [Sample(f"c{i}", f"calibration {i}", i % 2) for i in range(40)]
    evaluated = [Sample(f"e{i}", f"evaluated {i}", i % 2) for i in range(20)]
    signals = {}
    for s in calibration + evaluated:
        x = rng.normal(size=(4, 6))
        x[2, 0] += 3.0 * (2 * s.label - 1)
        signals[HiddenStatesRequest(s.text)] = x
    probe = ATTACKS["activation_probe"](folds=4).fit(calibration, signals)
    assert probe.best_layer_ == 2 and probe.layer_auroc_[2] > 0.9
    assert max(probe.layer_auroc_[:2] + probe.layer_auroc_[3:]) < 0.8
    scores = probe.score(evaluated, signals)
    labels = np.array([s.label for s in evaluated])
    assert scores[labels == 1].min() > scores[labels == 0].max() - 1.0
    assert "layer 2" in probe.fitted_on() and probe.fitted_details()["best_layer"] == 2


def test_pac_matches_an_independent_computation(target, model, tiny_tokenizer, samples):
    attack = ATTACKS["pac"](n_augmentations=3, seed=5)
    got = attack.score(samples, Engine({None: target}, None, progress=False).run(attack.requests(samples)))

    def pd(text):
        ids = _ids(tiny_tokenizer, text)
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, :-1].double(), -1).gather(1, ids[0, 1:, None])[:, 0]
        values = np.sort(logp.numpy())
        n = len(values)
        return values[-max(1, int(0.05 * n)) :].mean() - values[: max(1, int(0.3 * n))].mean()

    want = [np.mean([pd(t) for t in swap_augmentations(s.text, 3, 0.3, 5)]) - pd(s.text) for s in samples]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    augmented = swap_augmentations(samples[0].text, 3, 0.3, 5)
    assert all(sorted(a.split(" ")) == sorted(samples[0].text.split(" ")) for a in augmented)
    assert augmented == swap_augmentations(samples[0].text, 3, 0.3, 5)
    assert np.isnan(polarized_distance(_empty_stats(), 0.05, 0.3))


def _empty_stats():
    from miakit.signals import TokenStats

    return TokenStats.concatenate([])


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory, samples):
    tokenizer = make_mlm_tokenizer([s.text for s in samples] + synthetic_texts(30, seed=4))
    path = tmp_path_factory.mktemp("mlm")
    make_mlm(len(tokenizer), max_positions=128).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_neighbourhood_scores_ll_minus_mean_neighbour_ll(target, model, tiny_tokenizer, samples, mlm_dir):
    attack = ATTACKS["neighbourhood"](mlm=str(mlm_dir), n=4)
    engine = Engine({None: target}, None, progress=False)
    signals = collect_signals(engine, [attack], samples)
    got = attack.score(samples, signals)

    def ll(text):
        with torch.no_grad():
            return -float(_nll(model, _ids(tiny_tokenizer, text))[0])

    for s, value in zip(samples, got, strict=True):
        neighbours = signals[attack._request(s.text)]
        assert len(neighbours) == 4 and s.text not in neighbours
        assert value == pytest.approx(ll(s.text) - np.mean([ll(t) for t in neighbours]), rel=1e-4, abs=1e-5)


def test_white_box_signals_are_stored_and_reused(target, samples, mlm_dir, tmp_path):
    attacks = [
        ATTACKS["gradnorm"](),
        ATTACKS["noisy_neighbours"](n=2),
        ATTACKS["neighbourhood"](mlm=str(mlm_dir), n=2),
    ]
    store = Store(tmp_path / "store")
    first = Engine({None: target}, store, progress=False)
    collect_signals(first, attacks, samples)
    assert first.counts.backward_passes_computed == len(samples)
    again = Engine({None: target}, store, progress=False)
    signals = collect_signals(again, attacks, samples)
    assert again.counts.forward_passes_computed == 0 and again.counts.backward_passes_computed == 0
    for attack in attacks:
        assert np.isfinite(attack.score(samples, signals)).all()


def test_activation_probe_keeps_a_calibration_document_in_one_fold():
    """Layer 1 only identifies the document (a per-document offset; labels random per document, no membership
    signal); layer 2 carries a weak real signal. Split chunks would make layer 1 look perfect."""
    from miakit.signals import HiddenStatesRequest

    rng = np.random.default_rng(1)
    doc_labels = rng.permutation([1] * 10 + [0] * 10)
    offsets = rng.normal(scale=5.0, size=(20, 6))
    calibration, signals = [], {}
    for d, label in enumerate(doc_labels):
        for c in range(6):
            s = Sample(f"d{d}#{c}", f"document {d} chunk {c}", int(label), f"d{d}")
            x = rng.normal(size=(3, 6))
            x[1] += offsets[d]
            x[2, 0] += 0.5 * (2 * label - 1)
            calibration.append(s)
            signals[HiddenStatesRequest(s.text)] = x
    ungrouped = [Sample(s.id, s.text, s.label) for s in calibration]
    leaky = ATTACKS["activation_probe"](folds=4).fit(ungrouped, signals)
    assert leaky.layer_auroc_[1] > 0.85 and leaky.best_layer_ == 1  # the trap (measured 0.878): documents recognised
    probe = ATTACKS["activation_probe"](folds=4).fit(calibration, signals)
    assert probe.layer_auroc_[1] < 0.75 and probe.best_layer_ == 2  # measured: layer 1 0.651, layer 2 0.788
