"""Point metrics against independent computations: scikit-learn, brute-force threshold loops, a hand ROC."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from miakit.errors import MiakitError
from miakit.evaluate import auroc, balanced_accuracy, fpr_at_tpr, roc_points, tpr_at_fpr


def tied_data(seed: int, n: int = 300, with_inf: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Labels and coarsely rounded scores (many ties across classes), optionally with +-inf."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = np.round(rng.normal(size=n) + 0.8 * labels, 1)
    if with_inf:
        scores[rng.choice(n, 6, replace=False)] = [np.inf, np.inf, -np.inf, -np.inf, np.inf, -np.inf]
    return labels, scores


def brute_force_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) for 'member iff score >= t' at every distinct score, plus the empty prediction."""
    pos, neg = labels == 1, labels == 0
    fprs, tprs = [0.0], [0.0]
    for t in np.unique(scores):
        pred = scores >= t
        fprs.append((pred & neg).sum() / neg.sum())
        tprs.append((pred & pos).sum() / pos.sum())
    return np.array(fprs), np.array(tprs)


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_sklearn_with_ties(seed):
    labels, scores = tied_data(seed)
    assert len(np.unique(scores)) < len(scores) / 3  # the data really is tie-heavy
    assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auroc_mann_whitney_ties_count_half():
    # one member, one non-member, same score: P(>) = 0, P(=) = 1 -> 1/2
    assert auroc([1, 0], [3.0, 3.0]) == 0.5
    # member 2 beats non-member 1 and ties non-member 2 -> (1 + 0.5) / 2
    assert auroc([1, 0, 0], [2.0, 1.0, 2.0]) == 0.75


def test_auroc_with_infinities_is_ordinary_order():
    labels = np.array([1, 1, 0, 0])
    assert auroc(labels, [np.inf, 5.0, 4.0, -np.inf]) == 1.0
    # pairs: (inf, inf) tie = 1/2, (inf, 0) = 1, (-inf, inf) = 0, (-inf, 0) = 0 -> 1.5 / 4
    assert auroc(labels, [np.inf, -np.inf, np.inf, 0.0]) == pytest.approx(0.375)


@pytest.mark.parametrize("seed", range(3))
def test_roc_points_match_sklearn_without_dropping(seed):
    labels, scores = tied_data(seed)
    fpr, tpr, thr = roc_points(labels, scores)
    ref_fpr, ref_tpr, ref_thr = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    np.testing.assert_array_equal(thr[1:], ref_thr[1:])
    assert thr[0] == np.inf and fpr[0] == 0 and tpr[0] == 0
    assert len(thr) == len(np.unique(scores)) + 1  # one point per distinct threshold


def test_tpr_at_fpr_hand_built_roc():
    # 10 non-members scored 0..9, so a budget of 0.1 allows exactly one false positive (the 9).
    nonmembers = np.arange(10, dtype=float)
    members = np.array([9.5, 8.5, 8.2, 7.5, 0.5])
    labels = np.r_[np.ones(5), np.zeros(10)]
    scores = np.r_[members, nonmembers]
    # ROC points: (0,.2) (.1,.2) (.1,.4) (.1,.6) (.2,.6) (.2,.8) ...
    assert tpr_at_fpr(labels, scores, 0.1) == pytest.approx(0.6)
    # the next point (FPR 0.2, TPR 0.8) exceeds the budget and must not be taken
    assert tpr_at_fpr(labels, scores, 0.1) != pytest.approx(0.8)
    assert tpr_at_fpr(labels, scores, 0.199) == pytest.approx(0.6)
    assert tpr_at_fpr(labels, scores, 0.2) == pytest.approx(0.8)
    # just below one false positive: only the members above every non-member count
    assert tpr_at_fpr(labels, scores, 0.0999) == pytest.approx(0.2)
    assert tpr_at_fpr(labels, scores, 0.0) == pytest.approx(0.2)


def test_tpr_at_fpr_includes_origin_and_respects_ties():
    # the top member ties the top non-member: no threshold has FPR 0 and TPR > 0
    labels = np.r_[1, np.zeros(10)]
    scores = np.r_[9.0, np.arange(10.0)]
    assert tpr_at_fpr(labels, scores, 0.05) == 0.0  # only (0, 0) fits the budget
    assert tpr_at_fpr(labels, scores, 0.1) == 1.0


def test_tpr_at_fpr_budget_arithmetic_is_exact():
    # 0.07 * 100 is 7.000000000000001 in floats; 7 false positives must still be allowed, and 8 not.
    labels = np.r_[np.ones(100), np.zeros(100)]
    scores = np.r_[np.arange(100.0) + 0.5, np.arange(100.0)]
    fpr, tpr, _ = roc_points(labels, scores)
    expected = tpr[fpr <= 7 / 100 + 1e-12].max()
    assert tpr_at_fpr(labels, scores, 0.07) == pytest.approx(expected)
    assert tpr_at_fpr(labels, scores, 0.07) < tpr_at_fpr(labels, scores, 0.08)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("with_inf", [False, True])
def test_threshold_metrics_match_brute_force(seed, with_inf):
    labels, scores = tied_data(seed, n=200, with_inf=with_inf)
    fprs, tprs = brute_force_points(labels, scores)
    for beta in (0.0, 0.01, 0.05, 0.1, 0.3):
        assert tpr_at_fpr(labels, scores, beta) == pytest.approx(tprs[fprs <= beta + 1e-12].max())
    for target in (0.5, 0.9, 0.95, 1.0):
        assert fpr_at_tpr(labels, scores, target) == pytest.approx(fprs[tprs >= target - 1e-12].min())


def out_of_fold_reference(labels, scores, seed, groups=None):
    """Balanced accuracy of out-of-fold thresholds by a plain loop: scikit-learn's folds, every cut between two
    training ranks tried from the top, the first best (by sklearn's balanced_accuracy_score) applied to the
    held-out fold."""
    from scipy.stats import rankdata
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    ranks = rankdata(scores, method="dense") - 1
    n_levels = int(ranks.max()) + 1
    if groups is None:
        smallest = min((labels == 1).sum(), (labels == 0).sum())
        splits = StratifiedKFold(min(5, smallest), shuffle=True, random_state=seed).split(scores, labels)
    else:
        g = np.asarray(groups)
        smallest = min(len(set(g[labels == 1])), len(set(g[labels == 0])))
        splits = StratifiedGroupKFold(min(5, smallest), shuffle=True, random_state=seed).split(scores, labels, g)
    member = np.zeros(len(labels), dtype=bool)
    for train, test in splits:
        levels = np.r_[-1, np.unique(ranks[train]), n_levels]
        cuts = (levels[:-1] + levels[1:]) / 2
        best_cut, best = None, -1.0
        for cut in cuts[::-1]:
            value = balanced_accuracy_score(labels[train], ranks[train] >= cut)
            if value > best + 1e-12:
                best_cut, best = cut, value
        member[test] = ranks[test] >= best_cut
    return balanced_accuracy_score(labels, member)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("with_inf", [False, True])
def test_balanced_accuracy_uses_out_of_fold_thresholds(seed, with_inf):
    labels, scores = tied_data(seed, n=200, with_inf=with_inf)
    got = balanced_accuracy(labels, scores, seed=seed)
    assert got == pytest.approx(out_of_fold_reference(labels, scores, seed), abs=1e-12)
    fprs, tprs = brute_force_points(labels, scores)
    assert got <= np.max(1 - (fprs + (1 - tprs)) / 2) + 1e-12  # never above the in-sample best threshold


def test_balanced_accuracy_folds_keep_documents_together():
    rng = np.random.default_rng(7)
    doc_labels = np.r_[np.ones(20, dtype=int), np.zeros(20, dtype=int)]
    groups = np.repeat([f"d{i}" for i in range(40)], 4)
    labels = np.repeat(doc_labels, 4)
    scores = np.repeat(rng.normal(size=40) + 0.8 * doc_labels, 4) + 0.3 * rng.normal(size=160)
    got = balanced_accuracy(labels, scores, seed=3, groups=list(groups))
    assert got == pytest.approx(out_of_fold_reference(labels, scores, 3, groups), abs=1e-12)
    assert got != pytest.approx(out_of_fold_reference(labels, scores, 3), abs=1e-12)


def test_balanced_accuracy_and_fpr_at_tpr_extremes():
    # two members and two non-members: two folds, each threshold chosen on one of each and applied to the other
    labels = np.array([1, 1, 0, 0])
    assert balanced_accuracy(labels, [3.0, 4.0, 1.0, 2.0]) == 1.0
    assert fpr_at_tpr(labels, [3.0, 4.0, 1.0, 2.0]) == 0.0
    assert balanced_accuracy(labels, [1.0, 1.0, 1.0, 1.0]) == 0.5  # constant scores: chance
    assert fpr_at_tpr(labels, [1.0, 2.0, 3.0, 4.0]) == 1.0  # reversed: all non-members to reach TPR 0.95


@pytest.mark.parametrize("bad", [0.0 - 1e-6, 1.5])
def test_budget_out_of_range_raises(bad):
    with pytest.raises(MiakitError):
        tpr_at_fpr([0, 1], [0.0, 1.0], bad)
    with pytest.raises(MiakitError):
        fpr_at_tpr([0, 1], [0.0, 1.0], bad)


@pytest.mark.parametrize(
    ("labels", "scores", "match"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], "label"),
        ([0, 1], [0.1, 0.2, 0.3], "2 labels but 3 scores"),
        ([1, 1], [0.1, 0.2], "both members and non-members"),
        ([0, 1], ["a", "b"], "numbers"),
        ([[0, 1]], [[0.1, 0.2]], "one-dimensional"),
    ],
)
def test_bad_inputs_raise_miakit_error(labels, scores, match):
    with pytest.raises(MiakitError, match=match):
        auroc(labels, scores)
