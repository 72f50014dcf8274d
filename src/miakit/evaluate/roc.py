"""Vectorised empirical-ROC statistics from per-level class counts (one row per bootstrap resample).

Scores arrive as dense ranks (see `scores.prepare_scores`), so ties, +-inf and the NaN level are exact
integer comparisons. A row of `pos`/`neg` counts how many members/non-members sit at each rank level
(level 0 = lowest). The ROC point at a level means "member iff rank >= level"; walking levels from the
top gives one point per distinct threshold, preceded by (0, 0).
"""

from __future__ import annotations

import math

import numpy as np

_TOL = 1e-9


def level_counts(ranks: np.ndarray, n_levels: int) -> np.ndarray:
    """Count rows of rank indices per level: ranks (B, n) -> counts (B, n_levels)."""
    ranks = np.atleast_2d(ranks)
    b = ranks.shape[0]
    offset = (np.arange(b, dtype=np.int64) * n_levels)[:, None]
    flat = np.bincount((ranks + offset).ravel(), minlength=b * n_levels)
    return flat.reshape(b, n_levels)


def cumulative_from_top(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True- and false-positive counts of every ROC point, (0, 0) first: shapes (B, n_levels + 1)."""
    b = pos.shape[0]
    zeros = np.zeros((b, 1), dtype=np.int64)
    tp = np.concatenate([zeros, np.cumsum(pos[:, ::-1], axis=1)], axis=1)
    fp = np.concatenate([zeros, np.cumsum(neg[:, ::-1], axis=1)], axis=1)
    return tp, fp


def max_false_positives(beta: float, n0: int) -> int:
    """Most false positives an FPR budget beta allows with n0 non-members: floor(beta * n0)."""
    return math.floor(beta * n0 + _TOL)


def auroc_from_counts(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUROC per row: P(member > non-member) + P(tie) / 2."""
    n1 = pos.sum(axis=1)
    n0 = neg.sum(axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg  # non-members strictly below each level
    wins = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    return wins / (n1 * n0)


def tpr_at_fpr_from_cum(tp: np.ndarray, fp: np.ndarray, beta: float) -> np.ndarray:
    """Largest TPR among ROC points with FPR <= beta, per row ((0, 0) included)."""
    m = np.floor(beta * fp[:, -1:] + _TOL)
    return np.where(fp <= m, tp, 0).max(axis=1) / tp[:, -1]


def fpr_at_tpr_from_cum(tp: np.ndarray, fp: np.ndarray, target: float) -> np.ndarray:
    """Smallest FPR among ROC points with TPR >= target, per row (the point (1, 1) always qualifies)."""
    need = np.ceil(target * tp[:, -1:] - _TOL)
    return np.where(tp >= need, fp, fp[:, -1:]).min(axis=1) / fp[:, -1]


def balanced_accuracy_order(tp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """tp * n0 - fp * n1 at every ROC point, per row: balanced accuracy 1 - (FPR + FNR) / 2 is an increasing
    function of it, and in integers two points of equal balanced accuracy tie exactly."""
    return tp * fp[:, -1:] - fp * tp[:, -1:]
