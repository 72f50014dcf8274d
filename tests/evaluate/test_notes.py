"""What the evaluation says of figures that would mislead: a column that ranks nothing (every score -inf or NaN),
a blind baseline reliably below chance, and an epsilon bound of 0."""

from __future__ import annotations

import numpy as np
import pytest

from miakit.evaluate import EvaluationSettings, evaluate_run, evaluate_scores
from miakit.evaluate.blind_verdict import BELOW_CHANCE_PREFIX, BLIND_WARNING_PREFIX, below_chance_warning

LABELS = np.r_[np.ones(60, dtype=int), np.zeros(60, dtype=int)]


@pytest.mark.parametrize(
    ("scores", "policy", "reason"),
    [
        (np.full(120, -np.inf), "lowest", "every score is -inf"),
        (np.full(120, np.nan), "lowest", "every score is NaN"),
        (np.full(120, 3.5), "lowest", "every score is 3.5"),
        (np.r_[np.full(100, -np.inf), np.full(20, np.nan)], "omit", "every score is -inf (NaN omitted)"),
    ],
)
def test_a_column_that_ranks_nothing_is_not_estimable_with_the_reason(scores, policy, reason):
    ev = evaluate_scores(LABELS, scores, n_bootstrap=20, nan_policy=policy)
    assert ev.unranked.startswith(reason + ":")
    for key, metric in ev.metrics.items():  # not a coin toss reported as AUROC 0.500 and TPR 0 %
        assert metric.value is None and not metric.estimable, key
        assert f"not ranked: {reason}" in metric.note


def test_a_column_with_two_levels_is_still_ranked():
    scores = np.where(LABELS == 1, 0.0, -np.inf)  # -inf for every non-member: a perfect ranking, not a tie
    ev = evaluate_scores(LABELS, scores, n_bootstrap=20)
    assert ev.unranked == "" and ev.metrics["auroc"].value == 1.0


def test_a_run_never_selects_an_unranked_column_and_bounds_epsilon_on_a_ranked_one():
    rng = np.random.default_rng(0)
    columns = {"surp": np.full(120, -np.inf), "loss": 0.3 * LABELS + rng.normal(size=120)}
    run = evaluate_run(LABELS, columns, blind={"blind_bow": rng.normal(size=120)}, settings=EvaluationSettings(50))
    assert run.evaluations["surp"].metrics["auroc"].value is None
    assert run.selection["attack"] == "loss" and run.epsilon["attack"] == "loss"


def test_a_blind_baseline_below_chance_raises_a_warning_first():
    rng = np.random.default_rng(1)
    blind = {"blind_bow": -2.0 * LABELS + rng.normal(size=120), "blind_date": rng.normal(size=120)}
    run = evaluate_run(LABELS, {"loss": rng.normal(size=120)}, blind=blind, settings=EvaluationSettings(200))
    ev = run.evaluations["blind_bow"].metrics["auroc"]
    assert ev.ci_high < 0.5  # the premise: the whole interval lies below chance
    first = run.warnings[0]
    assert first.startswith(BELOW_CHANCE_PREFIX) and "(blind_bow)" in first
    assert f"AUROC {ev.value:.2f} [{ev.ci_low:.2f}, {ev.ci_high:.2f}]" in first
    assert "labels may be swapped" in first and "split is adversarial" in first
    assert not any(w.startswith(BLIND_WARNING_PREFIX) for w in run.warnings)


def test_no_below_chance_warning_when_the_interval_reaches_chance():
    rng = np.random.default_rng(2)
    blind = {"blind_bow": rng.normal(size=120)}
    run = evaluate_run(LABELS, {"loss": rng.normal(size=120)}, blind=blind, settings=EvaluationSettings(200))
    assert run.evaluations["blind_bow"].metrics["auroc"].ci_high >= 0.5
    assert below_chance_warning({"blind_bow": run.evaluations["blind_bow"]}) is None
    assert not any(w.startswith(BELOW_CHANCE_PREFIX) for w in run.warnings)
