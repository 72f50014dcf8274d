"""Membership metrics with one definition each, and stratified-bootstrap confidence intervals.

Conventions: label 1 = member = positive class; higher score = more likely member; a ROC point means
"member iff score >= threshold". NaN scores follow `nan_policy` ("lowest" by default: a NaN ranks below
every score, -inf included, so it is predicted non-member at every finite threshold); +inf and -inf are
ordinary values.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from miakit.errors import MiakitError
from miakit.evaluate.roc import (
    auroc_from_counts,
    balanced_accuracy_from_cum,
    cumulative_from_top,
    fpr_at_tpr_from_cum,
    level_counts,
    max_false_positives,
    tpr_at_fpr_from_cum,
)
from miakit.evaluate.scores import PreparedScores, prepare_scores

FPR_BUDGETS: dict[str, float] = {
    "tpr_at_0.1pct_fpr": 0.001,
    "tpr_at_1pct_fpr": 0.01,
    "tpr_at_5pct_fpr": 0.05,
}
TPR_TARGET = 0.95
METRIC_KEYS: tuple[str, ...] = (
    "auroc",
    *FPR_BUDGETS,
    "fpr_at_95pct_tpr",
    "balanced_accuracy",
)
_BOOTSTRAP_CELLS = 4_000_000  # resample-matrix entries per chunk (bounds memory, keeps numpy vectorised)


def _prepare(labels: ArrayLike, scores: ArrayLike, nan_policy: str) -> PreparedScores:
    """prepare_scores for the single-metric functions: warn on omitted NaNs, need both classes left."""
    p = prepare_scores(labels, scores, nan_policy)
    if nan_policy == "omit" and p.n_nan:
        warnings.warn(
            f"omitted {p.n_nan} NaN score(s) ({p.nan_members} members, {p.nan_nonmembers} non-members)",
            RuntimeWarning,
            stacklevel=3,
        )
    if p.n_pos == 0 or p.n_neg == 0:
        raise MiakitError(f"after omitting NaN scores {p.n_pos} members and {p.n_neg} non-members remain; need both")
    return p


def _counts(p: PreparedScores) -> tuple[np.ndarray, np.ndarray]:
    k = len(p.levels)
    return level_counts(p.ranks[p.labels == 1], k), level_counts(p.ranks[p.labels == 0], k)


def roc_points(
    labels: ArrayLike, scores: ArrayLike, *, nan_policy: str = "lowest"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical ROC (fpr, tpr, thresholds): one point per distinct score, preceded by (0, 0).

    Point i means "member iff score >= thresholds[i]". thresholds[0] = +inf stands for "nobody is a
    member" (the (0, 0) point, as in scikit-learn); under nan_policy="lowest" the NaN level's threshold
    is NaN and its point is (1, 1).
    """
    p = _prepare(labels, scores, nan_policy)
    tp, fp = cumulative_from_top(*_counts(p))
    thresholds = np.concatenate([[np.inf], p.levels[::-1]])
    return fp[0] / p.n_neg, tp[0] / p.n_pos, thresholds


def auroc(labels: ArrayLike, scores: ArrayLike, *, nan_policy: str = "lowest") -> float:
    """AUROC in Mann-Whitney form: P(member score > non-member score), ties counted 1/2."""
    p = _prepare(labels, scores, nan_policy)
    return float(auroc_from_counts(*_counts(p))[0])


def tpr_at_fpr(labels: ArrayLike, scores: ArrayLike, fpr: float, *, nan_policy: str = "lowest") -> float:
    """TPR at an FPR budget: the largest TPR among empirical ROC points with FPR <= fpr.

    The point (0, 0) is included, so the value is 0 when no threshold meets the budget. With n0
    non-members at most floor(fpr * n0) false positives are allowed; when fpr * n0 < 1 the value is
    TPR at FPR = 0 and `evaluate_scores` reports it as not estimable.
    """
    if not 0.0 <= fpr <= 1.0:
        raise MiakitError(f"fpr budget must lie in [0, 1]; got {fpr}")
    p = _prepare(labels, scores, nan_policy)
    return float(tpr_at_fpr_from_cum(*cumulative_from_top(*_counts(p)), fpr)[0])


def fpr_at_tpr(labels: ArrayLike, scores: ArrayLike, tpr: float = TPR_TARGET, *, nan_policy: str = "lowest") -> float:
    """Smallest FPR among empirical ROC points with TPR >= tpr (the point (1, 1) always qualifies)."""
    if not 0.0 <= tpr <= 1.0:
        raise MiakitError(f"tpr target must lie in [0, 1]; got {tpr}")
    p = _prepare(labels, scores, nan_policy)
    return float(fpr_at_tpr_from_cum(*cumulative_from_top(*_counts(p)), tpr)[0])


def balanced_accuracy(labels: ArrayLike, scores: ArrayLike, *, nan_policy: str = "lowest") -> float:
    """Best balanced accuracy over thresholds: max of 1 - (FPR + FNR) / 2 on the empirical ROC."""
    p = _prepare(labels, scores, nan_policy)
    return float(balanced_accuracy_from_cum(*cumulative_from_top(*_counts(p)))[0])


def _all_metrics(pos: np.ndarray, neg: np.ndarray) -> dict[str, np.ndarray]:
    """Every reported metric for each row of class counts, in one pass."""
    tp, fp = cumulative_from_top(pos, neg)
    out = {"auroc": auroc_from_counts(pos, neg)}
    for key, beta in FPR_BUDGETS.items():
        out[key] = tpr_at_fpr_from_cum(tp, fp, beta)
    out["fpr_at_95pct_tpr"] = fpr_at_tpr_from_cum(tp, fp, TPR_TARGET)
    out["balanced_accuracy"] = balanced_accuracy_from_cum(tp, fp)
    return out


def bootstrap_metrics(p: PreparedScores, n_bootstrap: int, seed: int) -> dict[str, np.ndarray]:
    """Stratified bootstrap: resample members and non-members separately, with replacement."""
    rng = np.random.default_rng(seed)
    k = len(p.levels)
    pos_ranks, neg_ranks = p.ranks[p.labels == 1], p.ranks[p.labels == 0]
    n1, n0 = len(pos_ranks), len(neg_ranks)
    chunk = max(1, _BOOTSTRAP_CELLS // max(k + 1, n1, n0))
    parts: dict[str, list[np.ndarray]] = {key: [] for key in METRIC_KEYS}
    for start in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - start)
        pos = level_counts(pos_ranks[rng.integers(0, n1, size=(b, n1))], k)
        neg = level_counts(neg_ranks[rng.integers(0, n0, size=(b, n0))], k)
        for key, values in _all_metrics(pos, neg).items():
            parts[key].append(values)
    return {key: np.concatenate(v) if v else np.empty(0) for key, v in parts.items()}


@dataclass(frozen=True)
class MetricValue:
    """One metric: point estimate, percentile CI (None when not computed) and why it may be missing."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    estimable: bool = True
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "estimable": self.estimable,
            "note": self.note,
        }


@dataclass(frozen=True)
class AttackEvaluation:
    """Metrics of one score vector plus the counts behind them (n_* count the input, NaNs included)."""

    metrics: dict[str, MetricValue]
    n_members: int
    n_nonmembers: int
    nan_members: int
    nan_nonmembers: int
    inf_members: int
    inf_nonmembers: int
    n_bootstrap: int = 0
    confidence: float = 0.95
    nan_policy: str = "lowest"
    seed: int = 0

    def to_json(self) -> dict[str, dict[str, Any]]:
        """{metric: {"value", "ci_low", "ci_high", "estimable", "note"}} in METRIC_KEYS order."""
        return {key: self.metrics[key].to_json() for key in METRIC_KEYS if key in self.metrics}

    def counts(self) -> dict[str, int]:
        """The six sample counts, as results.json's details record them."""
        return {
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
            "nan_members": self.nan_members,
            "nan_nonmembers": self.nan_nonmembers,
            "inf_members": self.inf_members,
            "inf_nonmembers": self.inf_nonmembers,
        }


def _nan_note(p: PreparedScores) -> str:
    if not p.n_nan:
        return ""
    who = f"{p.n_nan} NaN score(s) ({p.nan_members} members, {p.nan_nonmembers} non-members)"
    if p.nan_policy == "omit":
        return f"{who} omitted"
    return f"{who} ranked lowest (predicted non-member)"


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def evaluate_scores(
    labels: ArrayLike,
    scores: ArrayLike,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    nan_policy: str = "lowest",
    confidence: float = 0.95,
) -> AttackEvaluation:
    """All six metrics with stratified percentile-bootstrap CIs and honest estimability notes.

    A TPR@FPR budget beta is not estimable (value None) when n_nonmembers < 1/beta, and its CI is
    flagged unreliable when n_nonmembers < 10/beta. n_bootstrap=0 skips the CIs.
    """
    if n_bootstrap < 0:
        raise MiakitError(f"n_bootstrap must be >= 0; got {n_bootstrap}")
    if not 0.0 < confidence < 1.0:
        raise MiakitError(f"confidence must lie strictly between 0 and 1; got {confidence}")
    p = prepare_scores(labels, scores, nan_policy)
    counts = {
        "n_members": p.n_members,
        "n_nonmembers": p.n_nonmembers,
        "nan_members": p.nan_members,
        "nan_nonmembers": p.nan_nonmembers,
        "inf_members": p.inf_members,
        "inf_nonmembers": p.inf_nonmembers,
    }
    settings = {"n_bootstrap": n_bootstrap, "confidence": confidence, "nan_policy": nan_policy, "seed": seed}
    nan_note = _nan_note(p)
    n1, n0 = p.n_pos, p.n_neg
    if n1 == 0 or n0 == 0:
        note = _join(f"not estimable: {n1} members and {n0} non-members left", nan_note)
        metrics = {key: MetricValue(None, estimable=False, note=note) for key in METRIC_KEYS}
        return AttackEvaluation(metrics=metrics, **counts, **settings)

    point = {key: float(v[0]) for key, v in _all_metrics(*_counts(p)).items()}
    boot = bootstrap_metrics(p, n_bootstrap, seed) if n_bootstrap else {}
    alpha = (1.0 - confidence) / 2.0
    metrics: dict[str, MetricValue] = {}
    for key in METRIC_KEYS:
        beta = FPR_BUDGETS.get(key)
        if beta is not None and max_false_positives(beta, n0) < 1:
            note = _join(f"not estimable: {n0} non-members < 1/{beta:g}", nan_note)
            metrics[key] = MetricValue(None, estimable=False, note=note)
            continue
        lo = hi = None
        if boot:
            lo_v, hi_v = np.quantile(boot[key], [alpha, 1.0 - alpha])
            lo, hi = float(lo_v), float(hi_v)
        note = nan_note
        if beta is not None and beta * n0 < 10 - 1e-9:
            note = _join(f"CI unreliable: {n0} non-members < 10/{beta:g}", nan_note)
        metrics[key] = MetricValue(point[key], lo, hi, True, note)
    return AttackEvaluation(metrics=metrics, **counts, **settings)
