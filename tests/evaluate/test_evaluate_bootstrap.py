"""evaluate_scores: layout, estimability flags, and the stratified bootstrap's behaviour and speed."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from miakit.errors import MiakitError
from miakit.evaluate import METRIC_KEYS, evaluate_scores, tpr_at_fpr
from miakit.evaluate.metrics import ROC_KEYS, _all_metrics, _counts, bootstrap_metrics
from miakit.evaluate.scores import prepare_scores


def gaussian(n: int, seed: int = 0, shift: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n // 2, dtype=int), np.zeros(n - n // 2, dtype=int)]
    return labels, rng.normal(size=n) + shift * labels


def test_metric_keys_and_json_layout():
    labels, scores = gaussian(400)
    ev = evaluate_scores(labels, scores, n_bootstrap=100)
    assert list(ev.metrics) == [
        "auroc",
        "tpr_at_0.1pct_fpr",
        "tpr_at_1pct_fpr",
        "tpr_at_5pct_fpr",
        "fpr_at_95pct_tpr",
        "balanced_accuracy",
    ]
    doc = ev.to_json()
    assert list(doc) == list(METRIC_KEYS)
    for entry in doc.values():
        assert set(entry) == {"value", "ci_low", "ci_high", "estimable", "note"}
    json.dumps(doc, allow_nan=False)  # plain JSON values only
    assert ev.counts() == {
        "n_members": 200,
        "n_nonmembers": 200,
        "nan_members": 0,
        "nan_nonmembers": 0,
        "inf_members": 0,
        "inf_nonmembers": 0,
    }


def test_not_estimable_low_fpr():
    labels, scores = gaussian(600)  # 300 non-members
    ev = evaluate_scores(labels, scores, n_bootstrap=50)
    m = ev.metrics["tpr_at_0.1pct_fpr"]
    assert (m.value, m.ci_low, m.ci_high, m.estimable) == (None, None, None, False)
    assert "not estimable: 300 non-members < 1/0.001" in m.note
    one = ev.metrics["tpr_at_1pct_fpr"]  # 3 false positives allowed: estimable, CI unreliable
    assert one.estimable and one.value is not None
    assert "CI unreliable: 300 non-members < 10/0.01" in one.note
    five = ev.metrics["tpr_at_5pct_fpr"]  # 15 allowed: fine
    assert five.estimable and "unreliable" not in five.note
    assert ev.metrics["auroc"].note == ""


@pytest.mark.parametrize(("n0", "estimable"), [(999, False), (1000, True)])
def test_estimability_boundary_is_one_over_beta(n0, estimable):
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(50, dtype=int), np.zeros(n0, dtype=int)]
    scores = rng.normal(size=len(labels))
    m = evaluate_scores(labels, scores, n_bootstrap=0).metrics["tpr_at_0.1pct_fpr"]
    assert m.estimable is estimable
    if estimable:
        assert m.value == tpr_at_fpr(labels, scores, 0.001)
        assert "CI unreliable" in m.note


def test_point_estimates_match_single_functions():
    labels, scores = gaussian(3000, seed=3)
    ev = evaluate_scores(labels, scores, n_bootstrap=0)
    assert ev.metrics["auroc"].value == pytest.approx(roc_auc_score(labels, scores))
    assert ev.metrics["tpr_at_1pct_fpr"].value == tpr_at_fpr(labels, scores, 0.01)
    assert ev.metrics["auroc"].ci_low is None  # no bootstrap, no CI


def test_ci_contains_point_estimate():
    labels, scores = gaussian(1000, seed=1, shift=0.7)
    ev = evaluate_scores(labels, scores, n_bootstrap=500, seed=3)
    for key in ("auroc", "tpr_at_5pct_fpr", "fpr_at_95pct_tpr", "balanced_accuracy"):
        m = ev.metrics[key]
        assert m.ci_low < m.value < m.ci_high, key


def test_bootstrap_is_deterministic_per_seed():
    labels, scores = gaussian(500, seed=2)
    a = evaluate_scores(labels, scores, n_bootstrap=200, seed=7).to_json()
    b = evaluate_scores(labels, scores, n_bootstrap=200, seed=7).to_json()
    c = evaluate_scores(labels, scores, n_bootstrap=200, seed=8).to_json()
    assert a == b
    assert a["auroc"]["ci_low"] != c["auroc"]["ci_low"]


def test_ci_narrows_with_n():
    def width(n):
        m = evaluate_scores(*gaussian(n, seed=4, shift=0.5), n_bootstrap=400).metrics["auroc"]
        return m.ci_high - m.ci_low

    small, large = width(200), width(5000)
    assert large < small / 3  # width ~ 1/sqrt(n): sqrt(25) = 5


def test_bootstrap_is_stratified():
    # 2 members among 300: an unstratified resample would often draw no member at all (NaN AUROC)
    labels = np.r_[1, 1, np.zeros(298, dtype=int)]
    scores = np.r_[5.0, 6.0, np.linspace(0, 1, 298)]
    boot = bootstrap_metrics(prepare_scores(labels, scores), n_bootstrap=300, seed=0)
    assert np.all(boot["auroc"] == 1.0)


def test_bootstrap_matches_a_slow_reference():
    """Recompute each resample with scikit-learn from the same index draws (one chunk, same order)."""
    labels, scores = gaussian(120, seed=5)
    scores = np.round(scores, 1)  # ties too
    p = prepare_scores(labels, scores)
    boot = bootstrap_metrics(p, n_bootstrap=40, seed=11)
    rng = np.random.default_rng(11)
    pos, neg = scores[labels == 1], scores[labels == 0]
    ip = rng.integers(0, len(pos), size=(40, len(pos)))
    ineg = rng.integers(0, len(neg), size=(40, len(neg)))
    for b in range(40):
        y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        s = np.r_[pos[ip[b]], neg[ineg[b]]]
        assert boot["auroc"][b] == pytest.approx(roc_auc_score(y, s))
        assert boot["tpr_at_5pct_fpr"][b] == pytest.approx(tpr_at_fpr(y, s, 0.05))


def test_all_metrics_vectorised_rows_are_independent():
    labels, scores = gaussian(200, seed=6)
    p = prepare_scores(labels, scores)
    pos, neg = _counts(p)
    stacked = _all_metrics(np.vstack([pos, pos[:, ::-1]]), np.vstack([neg, neg]))
    single = _all_metrics(pos, neg)
    for key in ROC_KEYS:
        assert stacked[key][0] == single[key][0]
    assert stacked["auroc"][1] != single["auroc"][0]


def test_bootstrap_speed_2000_samples_1000_resamples():
    labels, scores = gaussian(2000, seed=9)  # continuous: 2,000 distinct levels, the worst case
    evaluate_scores(labels, scores, n_bootstrap=10)  # warm-up (imports, allocator)
    start = time.perf_counter()
    ev = evaluate_scores(labels, scores, n_bootstrap=1000)
    elapsed = time.perf_counter() - start
    assert ev.metrics["auroc"].ci_low is not None
    assert elapsed < 1.0, f"bootstrap took {elapsed:.2f}s"


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"n_bootstrap": -1}, "n_bootstrap"), ({"confidence": 1.0}, "confidence")]
)
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(MiakitError, match=match):
        evaluate_scores([0, 1], [0.0, 1.0], **kwargs)


def test_confidence_level_changes_width():
    labels, scores = gaussian(600, seed=10)
    m90 = evaluate_scores(labels, scores, n_bootstrap=300, confidence=0.90).metrics["auroc"]
    m99 = evaluate_scores(labels, scores, n_bootstrap=300, confidence=0.99).metrics["auroc"]
    assert m99.ci_high - m99.ci_low > m90.ci_high - m90.ci_low
