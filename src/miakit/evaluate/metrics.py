"""Membership metrics with one definition each, and stratified-bootstrap confidence intervals.

Conventions: label 1 = member = positive class; higher score = more likely member; a ROC point means
"member iff score >= threshold". NaN scores follow `nan_policy` ("lowest" by default: a NaN ranks below
every score, -inf included, so it is predicted non-member at every finite threshold); +inf and -inf are
ordinary values. When samples are chunks of documents (``groups`` with a repeated document), the bootstrap
resamples whole documents (see `resample`), and balanced accuracy's folds keep a document's chunks together.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from miakit.errors import MiakitError
from miakit.evaluate.folds import fold_indices
from miakit.evaluate.resample import (
    check_one_label_per_group,
    chunk_size,
    class_units,
    draw_weights,
    is_clustered,
    weighted_counts,
)
from miakit.evaluate.roc import (
    auroc_from_counts,
    balanced_accuracy_order,
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
ROC_KEYS: tuple[str, ...] = ("auroc", *FPR_BUDGETS, "fpr_at_95pct_tpr")  # functions of the ROC curve alone
METRIC_KEYS: tuple[str, ...] = (*ROC_KEYS, "balanced_accuracy")
BALANCED_ACCURACY_FOLDS = 5
BALANCED_ACCURACY_DEFINITION = (
    "Balanced accuracy, (TPR + TNR) / 2, of out-of-fold predictions: the samples are split into 5 seeded "
    "stratified folds (a document's chunks in one fold); on each fold's complement the threshold with the "
    "highest balanced accuracy is chosen (halfway, in rank, between the two training scores it separates) and "
    "applied to the held-out fold; the pooled held-out predictions give the value, and the bootstrap resamples "
    "them. No threshold sees the labels it is scored on, so under no membership signal it is about 0.5."
)


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


def _kept_groups(groups: Sequence[str] | None, p: PreparedScores) -> list[str] | None:
    """The documents of the samples left after the NaN policy (None without groups)."""
    if groups is None:
        return None
    if len(groups) != len(p.kept):
        raise MiakitError(f"{len(p.kept)} scores but {len(groups)} groups; they must match one to one")
    return [str(groups[i]) for i in np.flatnonzero(p.kept)]


@functools.lru_cache(maxsize=8)
def _folds(labels: bytes, groups: tuple[str, ...] | None, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Balanced accuracy's folds, computed once per (labels, documents, seed): every column of a run shares them
    (grouped folds cost seconds on thousands of documents)."""
    y = np.frombuffer(labels, dtype=np.int8)
    return fold_indices(y, BALANCED_ACCURACY_FOLDS, seed, groups, what="balanced accuracy's folds")


def out_of_fold_members(p: PreparedScores, seed: int = 0, groups: Sequence[str] | None = None) -> np.ndarray:
    """Member predictions (bool per sample left by the NaN policy) with thresholds chosen out of fold.

    Seeded stratified folds (`folds.fold_indices`, chunks of a document together); on each fold's complement
    the ROC point with the highest balanced accuracy is taken (the highest such threshold), placed halfway in
    rank between the lowest training level it calls member and the next training level below, and applied to
    the held-out fold. MiakitError with fewer than 2 members or non-members (documents).
    """
    folds = _folds(p.labels.tobytes(), None if groups is None else tuple(groups), seed)
    k = len(p.levels)
    member = np.zeros(len(p.labels), dtype=bool)
    for train, test in folds:
        ranks, y = p.ranks[train], p.labels[train]
        tp, fp = cumulative_from_top(level_counts(ranks[y == 1], k), level_counts(ranks[y == 0], k))
        i = int(np.argmax(balanced_accuracy_order(tp, fp)[0]))  # first maximum: the highest best threshold
        high = k - i  # training samples at rank >= high are called members
        below = ranks[ranks < high]
        low = int(below.max()) if len(below) else -1
        member[test] = p.ranks[test] >= (low + high) / 2
    return member


def balanced_accuracy(
    labels: ArrayLike,
    scores: ArrayLike,
    *,
    nan_policy: str = "lowest",
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> float:
    """Balanced accuracy (TPR + TNR) / 2 of out-of-fold predictions (`out_of_fold_members`): each threshold
    is chosen on the other folds, never on the labels it is scored on, so chance stays at about 0.5."""
    p = _prepare(labels, scores, nan_policy)
    member = out_of_fold_members(p, seed, _kept_groups(groups, p))
    return _balanced_accuracy_of(member, p.labels)


def _balanced_accuracy_of(member: np.ndarray, labels: np.ndarray) -> float:
    return float((member[labels == 1].mean() + 1.0 - member[labels == 0].mean()) / 2.0)


def _all_metrics(pos: np.ndarray, neg: np.ndarray) -> dict[str, np.ndarray]:
    """Every ROC metric (ROC_KEYS) for each row of class counts, in one pass."""
    tp, fp = cumulative_from_top(pos, neg)
    out = {"auroc": auroc_from_counts(pos, neg)}
    for key, beta in FPR_BUDGETS.items():
        out[key] = tpr_at_fpr_from_cum(tp, fp, beta)
    out["fpr_at_95pct_tpr"] = fpr_at_tpr_from_cum(tp, fp, TPR_TARGET)
    return out


def bootstrap_metrics(
    p: PreparedScores,
    n_bootstrap: int,
    seed: int,
    *,
    groups: Sequence[str] | None = None,
    member: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Stratified bootstrap: resample members and non-members separately, with replacement; whole documents
    (all their chunks) when ``groups`` (of the samples in ``p``) has a repeated document.

    Returns the ROC metrics per resample, plus ``balanced_accuracy`` of the out-of-fold predictions ``member``
    (one per sample of ``p``) when given: the fixed predictions are resampled, not re-fitted.
    """
    rng = np.random.default_rng(seed)
    k = len(p.levels)
    classes = []
    for label in (1, 0):
        units = class_units(p.labels, groups, label)
        mine = p.labels == label
        size = units.totals(np.ones(int(mine.sum())))
        called = units.totals(member[mine].astype(float)) if member is not None else None
        classes.append((units.n_units, units.level_matrix(p.ranks[mine], k), size, called))
    (n1, pos_matrix, pos_size, pos_called), (n0, neg_matrix, neg_size, neg_called) = classes
    keys = ROC_KEYS if member is None else METRIC_KEYS
    parts: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    chunk = chunk_size(k + 1, n1, n0)
    for start in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - start)
        w1, w0 = draw_weights(rng, n1, b), draw_weights(rng, n0, b)
        for key, values in _all_metrics(weighted_counts(w1, pos_matrix), weighted_counts(w0, neg_matrix)).items():
            parts[key].append(values)
        if member is not None:
            tpr = (w1 @ pos_called) / (w1 @ pos_size)
            fpr = (w0 @ neg_called) / (w0 @ neg_size)
            parts["balanced_accuracy"].append((tpr + 1.0 - fpr) / 2.0)
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
    bootstrap_unit: str = "sample"  # "document" when whole documents were resampled
    unranked: str = ""  # why the column ranks nothing (every score equal), e.g. "every score is -inf"

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


def unranked_reason(p: PreparedScores) -> str:
    """Why a column ranks no sample above another (every score equal after the NaN policy), or ''.

    Its metrics would all be those of a coin toss (AUROC 0.500 from ties), which reads as a result; they are
    reported as not estimable with this reason instead."""
    if len(p.levels) > 1:
        return ""
    level = float(p.levels[0]) if len(p.levels) else float("nan")
    value = "NaN" if np.isnan(level) else f"{level:g}"
    omitted = " (NaN omitted)" if p.nan_policy == "omit" and p.n_nan else ""
    return f"every score is {value}{omitted}: the attack ranks no sample above another"


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
    groups: Sequence[str] | None = None,
) -> AttackEvaluation:
    """All six metrics with stratified percentile-bootstrap CIs and honest estimability notes.

    A TPR@FPR budget beta is not estimable (value None) when n_nonmembers < 1/beta, and its CI is
    flagged unreliable when n_nonmembers < 10/beta. n_bootstrap=0 skips the CIs. ``groups``: the document of
    each sample; when one holds several samples (chunks), the CIs resample documents (a cluster bootstrap,
    stratified by class) since chunks of one document are not independent. Balanced accuracy is that of
    out-of-fold thresholds (`out_of_fold_members`); not estimable with fewer than 2 members or non-members
    (documents).
    """
    if n_bootstrap < 0:
        raise MiakitError(f"n_bootstrap must be >= 0; got {n_bootstrap}")
    if not 0.0 < confidence < 1.0:
        raise MiakitError(f"confidence must lie strictly between 0 and 1; got {confidence}")
    p = prepare_scores(labels, scores, nan_policy)
    kept_groups = _kept_groups(groups, p)
    check_one_label_per_group(p.labels, kept_groups)
    counts = {
        "n_members": p.n_members,
        "n_nonmembers": p.n_nonmembers,
        "nan_members": p.nan_members,
        "nan_nonmembers": p.nan_nonmembers,
        "inf_members": p.inf_members,
        "inf_nonmembers": p.inf_nonmembers,
    }
    settings = {
        "n_bootstrap": n_bootstrap,
        "confidence": confidence,
        "nan_policy": nan_policy,
        "seed": seed,
        "bootstrap_unit": "document" if is_clustered(kept_groups) else "sample",
    }
    nan_note = _nan_note(p)
    n1, n0 = p.n_pos, p.n_neg
    if n1 == 0 or n0 == 0:
        note = _join(f"not estimable: {n1} members and {n0} non-members left", nan_note)
        metrics = {key: MetricValue(None, estimable=False, note=note) for key in METRIC_KEYS}
        return AttackEvaluation(metrics=metrics, **counts, **settings)

    unranked = unranked_reason(p)
    if unranked:
        note = _join(f"not ranked: {unranked}", nan_note)
        metrics = {key: MetricValue(None, estimable=False, note=note) for key in METRIC_KEYS}
        return AttackEvaluation(metrics=metrics, **counts, **settings, unranked=unranked)

    point = {key: float(v[0]) for key, v in _all_metrics(*_counts(p)).items()}
    member, ba_note = None, ""
    try:
        member = out_of_fold_members(p, seed, kept_groups)
        point["balanced_accuracy"] = _balanced_accuracy_of(member, p.labels)
    except MiakitError:
        unit = "documents" if is_clustered(kept_groups) else "samples"
        ba_note = f"not estimable: out-of-fold thresholds need at least 2 member and 2 non-member {unit}"
    boot = bootstrap_metrics(p, n_bootstrap, seed, groups=kept_groups, member=member) if n_bootstrap else {}
    alpha = (1.0 - confidence) / 2.0
    metrics: dict[str, MetricValue] = {}
    for key in METRIC_KEYS:
        if key == "balanced_accuracy" and member is None:
            metrics[key] = MetricValue(None, estimable=False, note=_join(ba_note, nan_note))
            continue
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
