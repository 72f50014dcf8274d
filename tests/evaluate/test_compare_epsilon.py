"""Paired bootstrap comparison of attacks and the epsilon lower bound, against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from miakit.evaluate.compare import paired_auroc_comparison
from miakit.evaluate.epsilon import clopper_pearson, epsilon_lower_bound


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    labels = np.array([1] * 15 + [0] * 17)
    strong = labels * 1.5 + rng.normal(size=32)
    weak = labels * 0.4 + rng.normal(size=32)
    return labels, {"strong": strong, "weak": weak, "noise": rng.normal(size=32)}


def test_paired_comparison_matches_a_plain_loop_over_the_same_resamples(data):
    labels, columns = data
    got = paired_auroc_comparison(labels, columns, n_bootstrap=200, seed=7)
    assert got["best"] == "strong"
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    rng = np.random.default_rng(7)
    pos_draws = pos[rng.integers(0, len(pos), size=(200, len(pos)))]
    neg_draws = neg[rng.integers(0, len(neg), size=(200, len(neg)))]
    y = np.array([1] * len(pos) + [0] * len(neg))

    def boot(scores):
        return np.array(
            [
                roc_auc_score(y, np.concatenate([scores[p], scores[n]]))
                for p, n in zip(pos_draws, neg_draws, strict=True)
            ]
        )

    for name in ("weak", "noise"):
        diff = boot(columns["strong"]) - boot(columns[name])
        pair = got["pairs"][name]
        observed = roc_auc_score(labels, columns["strong"]) - roc_auc_score(labels, columns[name])
        assert pair["auroc_difference"] == pytest.approx(observed)
        assert pair["ci_low"] == pytest.approx(np.quantile(diff, 0.025))
        assert pair["ci_high"] == pytest.approx(np.quantile(diff, 0.975))
        tail = min((diff <= 0).sum(), (diff >= 0).sum())
        assert pair["p_value"] == pytest.approx(min(1.0, 2 * (tail + 1) / 201))


def test_identical_attacks_do_not_differ(data):
    labels, columns = data
    got = paired_auroc_comparison(labels, {"a": columns["weak"], "b": columns["weak"].copy()}, n_bootstrap=100)
    pair = next(iter(got["pairs"].values()))
    assert pair["auroc_difference"] == 0 and pair["ci_low"] == 0 and pair["ci_high"] == 0 and pair["p_value"] == 1


def test_clopper_pearson_matches_scipy():
    for k, n in ((0, 20), (3, 20), (20, 20), (57, 140)):
        want = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert clopper_pearson(k, n) == pytest.approx((want.low, want.high))


def test_epsilon_of_a_perfect_attack_is_limited_by_the_sample_size():
    labels = np.array([1] * 100 + [0] * 100)
    scores = labels.astype(float)
    got = epsilon_lower_bound(labels, scores, fpr_budget=0.05)
    tpr_lo, fpr_hi = 0.025 ** (1 / 100), 1 - 0.025 ** (1 / 100)
    assert got["true_positives"] == 100 and got["false_positives"] == 0
    assert got["epsilon_lower_bound"] == pytest.approx(math.log(tpr_lo / fpr_hi))
    assert "randomised split" in got["assumptions"]


def test_epsilon_follows_the_formula_at_the_chosen_point():
    rng = np.random.default_rng(0)
    labels = np.array([1] * 200 + [0] * 200)
    scores = labels * 1.0 + rng.normal(size=400)
    got = epsilon_lower_bound(labels, scores, fpr_budget=0.1, delta=1e-3)
    tp, fp = got["true_positives"], got["false_positives"]
    assert fp <= 20 and got["fpr"] == fp / 200 and got["tpr"] == tp / 200
    lo = binomtest(tp, 200).proportion_ci(method="exact").low
    hi = binomtest(fp, 200).proportion_ci(method="exact").high
    want = max(0.0, math.log((lo - 1e-3) / hi), math.log((1 - hi - 1e-3) / (1 - lo)))
    assert got["epsilon_lower_bound"] == pytest.approx(want)
    # no better threshold with FPR <= 0.1 exists
    best_tp = max(
        int(((scores >= t) & (labels == 1)).sum()) for t in scores if ((scores >= t) & (labels == 0)).sum() <= 20
    )
    assert tp == best_tp


def test_a_chance_attack_proves_nothing():
    labels = np.array([1, 0] * 50)
    got = epsilon_lower_bound(labels, np.random.default_rng(1).normal(size=100))
    assert got["epsilon_lower_bound"] < 0.5


def test_audit_figures_follow_the_nan_policy():
    """Under nan_policy "omit" the epsilon bound and the paired comparison leave out what the metrics leave
    out (the comparison: samples any compared attack failed on); under "lowest" they keep every sample."""
    from types import SimpleNamespace

    from miakit.api import _audit_figures
    from miakit.evaluate import evaluate_scores

    rng = np.random.default_rng(5)
    labels = np.r_[np.ones(60, dtype=int), np.zeros(60, dtype=int)]
    strong = labels + rng.normal(scale=0.7, size=120)
    weak = labels * 0.2 + rng.normal(size=120)
    strong[:6] = np.nan  # six members the strong attack could not score
    weak[100:103] = np.nan  # three non-members the weak one could not
    columns = {"strong": strong, "weak": weak}
    kinds = {"strong": "attack", "weak": "attack"}
    for policy, n_members, n_rows in (("omit", 54, 111), ("lowest", 60, 120)):
        cfg = SimpleNamespace(nan_policy=policy, bootstrap=50, seed=0)
        evaluations = {c: evaluate_scores(labels, s, n_bootstrap=0, nan_policy=policy) for c, s in columns.items()}
        figures = _audit_figures(labels, columns, kinds, evaluations, cfg)
        eps = figures["epsilon"]
        assert eps["attack"] == "strong" and eps["n_members"] == n_members and eps["n_nonmembers"] == 60
        comparison = figures["comparison"]
        expected = paired_auroc_comparison(
            labels[:n_rows] if policy == "lowest" else np.delete(labels, [*range(6), 100, 101, 102]),
            {c: (s if policy == "lowest" else np.delete(s, [*range(6), 100, 101, 102])) for c, s in columns.items()},
            best="strong",
            n_bootstrap=50,
            seed=0,
        )
        assert comparison["pairs"] == expected["pairs"]
        assert comparison.get("n_omitted", 0) == 120 - n_rows
