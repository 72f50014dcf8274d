"""The one NaN policy: lowest (default), raise, omit; NaN and inf counted per class."""

from __future__ import annotations

import numpy as np
import pytest

from miakit.errors import MiakitError
from miakit.evaluate import (
    METRIC_KEYS,
    auroc,
    balanced_accuracy,
    evaluate_scores,
    fpr_at_tpr,
    prepare_scores,
    roc_points,
    tpr_at_fpr,
)

METRIC_FUNCTIONS = {
    "auroc": auroc,
    "tpr_at_5pct_fpr": lambda y, s, **kw: tpr_at_fpr(y, s, 0.05, **kw),
    "tpr_at_20pct_fpr": lambda y, s, **kw: tpr_at_fpr(y, s, 0.2, **kw),
    "fpr_at_95pct_tpr": fpr_at_tpr,
    "balanced_accuracy": balanced_accuracy,
}


def data_with_nan(seed: int = 0, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n // 2, dtype=int), np.zeros(n - n // 2, dtype=int)]
    scores = np.round(rng.normal(size=n) + labels, 1)
    scores[[0, 1, 2, n - 1, n - 2]] = np.nan  # 3 member NaNs, 2 non-member NaNs
    scores[[3, n - 3]] = -np.inf  # -inf in both classes: NaN must still rank below these
    scores[[4]] = np.inf
    return labels, scores


def test_counts_per_class():
    labels, scores = data_with_nan()
    ev = evaluate_scores(labels, scores, n_bootstrap=0)
    assert (ev.nan_members, ev.nan_nonmembers) == (3, 2)
    assert (ev.inf_members, ev.inf_nonmembers) == (2, 1)
    assert (ev.n_members, ev.n_nonmembers) == (60, 60)
    assert "5 NaN score(s) (3 members, 2 non-members) ranked lowest" in ev.metrics["auroc"].note


def test_raise_names_the_count():
    labels, scores = data_with_nan()
    with pytest.raises(MiakitError, match=r"5 NaN score\(s\) \(3 members, 2 non-members\)"):
        evaluate_scores(labels, scores, nan_policy="raise")
    with pytest.raises(MiakitError, match="5 NaN"):
        auroc(labels, scores, nan_policy="raise")
    finite = np.nan_to_num(scores, nan=0.0)
    assert auroc(labels, finite, nan_policy="raise") == auroc(labels, finite)  # no NaN: no error


@pytest.mark.parametrize("name", list(METRIC_FUNCTIONS))
def test_lowest_equals_a_value_below_minus_inf(name):
    """'lowest' = NaN strictly below -inf: map -inf to the smallest float and NaN to -inf, and compare."""
    labels, scores = data_with_nan()
    shifted = np.where(np.isneginf(scores), np.finfo(float).min, scores)
    shifted = np.where(np.isnan(shifted), -np.inf, shifted)
    fn = METRIC_FUNCTIONS[name]
    assert fn(labels, scores) == pytest.approx(fn(labels, shifted), abs=1e-12)


def test_lowest_is_not_the_same_as_nan_equals_minus_inf():
    # a NaN member and a -inf non-member: NaN below -inf means the non-member wins (AUROC 0 for that pair)
    labels = np.array([1, 0])
    assert auroc(labels, [np.nan, -np.inf]) == 0.0
    assert auroc(labels, [-np.inf, -np.inf]) == 0.5
    assert auroc(labels, [np.nan, np.nan]) == 0.5  # NaNs tie among themselves


def test_lowest_nan_level_threshold_is_nan():
    fpr, tpr, thr = roc_points([1, 0, 0], [1.0, np.nan, 0.0])
    assert np.isnan(thr[-1]) and fpr[-1] == 1.0 and tpr[-1] == 1.0
    assert len(thr) == 4  # (0,0), 1.0, 0.0, NaN


@pytest.mark.parametrize("name", list(METRIC_FUNCTIONS))
def test_omit_equals_dropping_and_warns_with_count(name):
    labels, scores = data_with_nan()
    keep = ~np.isnan(scores)
    fn = METRIC_FUNCTIONS[name]
    with pytest.warns(RuntimeWarning, match="omitted 5 NaN"):
        value = fn(labels, scores, nan_policy="omit")
    assert value == pytest.approx(fn(labels[keep], scores[keep]), abs=1e-12)


def test_omit_in_evaluation_reports_counts_and_uses_remaining_samples():
    labels, scores = data_with_nan()
    keep = ~np.isnan(scores)
    ev = evaluate_scores(labels, scores, nan_policy="omit", n_bootstrap=50)
    ref = evaluate_scores(labels[keep], scores[keep], n_bootstrap=0)
    assert (ev.nan_members, ev.nan_nonmembers, ev.n_members) == (3, 2, 60)
    for key in METRIC_KEYS:
        assert ev.metrics[key].value == ref.metrics[key].value
    assert "5 NaN score(s) (3 members, 2 non-members) omitted" in ev.metrics["auroc"].note


def test_omit_that_empties_a_class_is_not_estimable_not_a_crash():
    labels = np.array([1, 1, 0, 0])
    scores = np.array([np.nan, np.nan, 0.1, 0.2])
    ev = evaluate_scores(labels, scores, nan_policy="omit")
    assert all(not m.estimable and m.value is None for m in ev.metrics.values())
    assert "0 members" in ev.metrics["auroc"].note
    with pytest.raises(MiakitError, match="0 members"), pytest.warns(RuntimeWarning):
        auroc(labels, scores, nan_policy="omit")


def test_all_nan_lowest_ranks_nothing_and_says_so():
    ev = evaluate_scores([1, 0, 1, 0], [np.nan] * 4, n_bootstrap=20)
    assert ev.metrics["auroc"].value is None and not ev.metrics["auroc"].estimable  # not a coin toss at 0.500
    assert ev.unranked.startswith("every score is NaN")
    assert ev.nan_members == 2 and ev.nan_nonmembers == 2


def test_unknown_policy_raises():
    with pytest.raises(MiakitError, match="nan_policy"):
        prepare_scores([0, 1], [0.0, 1.0], nan_policy="zero")


def test_prepared_ranks_put_nan_lowest_and_keep_inf_order():
    p = prepare_scores([1, 0, 1, 0], [np.nan, -np.inf, np.inf, 0.0])
    assert list(p.ranks) == [0, 1, 3, 2]
    assert np.isnan(p.levels[0]) and list(p.levels[1:]) == [-np.inf, 0.0, np.inf]
