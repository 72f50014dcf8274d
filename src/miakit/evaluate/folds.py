"""Seeded stratified folds for out-of-fold fitting, keeping the chunks of one document in one fold.

Used wherever a model is fitted on some labelled samples and scores others: the blind baselines (outer and
inner folds) and the activation probe's layer choice on the calibration set. ``what`` names the caller in
errors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from miakit.errors import MiakitError


def stratified_folds(y: np.ndarray, n_splits: int, seed: int, what: str = "the blind baseline") -> StratifiedKFold:
    """Seeded stratified folds; fewer folds when a class is small."""
    smallest = min(int(np.count_nonzero(y == 1)), int(np.count_nonzero(y == 0)))
    if smallest < 2:
        raise MiakitError(
            f"{what} needs at least 2 members and 2 non-members; "
            f"got {int(np.count_nonzero(y == 1))} members and {int(np.count_nonzero(y == 0))} non-members"
        )
    if n_splits < 2:
        raise MiakitError(f"n_splits must be >= 2; got {n_splits}")
    return StratifiedKFold(n_splits=min(n_splits, smallest), shuffle=True, random_state=seed)


def fold_indices(
    y: np.ndarray, n_splits: int, seed: int, groups: Sequence[str] | None = None, what: str = "the blind baseline"
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs of seeded stratified folds. With ``groups`` in which some group has several
    samples (chunks of one document), whole groups stay on one side (StratifiedGroupKFold): otherwise what is
    peculiar to a document (its words, its activations) would carry its label from its chunks in training to
    its chunks in test."""
    if groups is None or len(set(groups)) == len(groups):
        return list(stratified_folds(y, n_splits, seed, what).split(np.zeros(len(y)), y))
    g = np.asarray([str(v) for v in groups])
    per_class = {c: len(set(g[y == c])) for c in (0, 1)}
    if min(per_class.values()) < 2:
        raise MiakitError(
            f"{what} needs at least 2 member and 2 non-member documents; got {per_class[1]} and {per_class[0]}"
        )
    if n_splits < 2:
        raise MiakitError(f"n_splits must be >= 2; got {n_splits}")
    folds = StratifiedGroupKFold(n_splits=min(n_splits, min(per_class.values())), shuffle=True, random_state=seed)
    return list(folds.split(np.zeros(len(y)), y, g))
