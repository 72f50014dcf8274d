"""Seeded stratified folds for out-of-fold fitting, keeping the chunks of one document in one fold.

Used wherever a model is fitted on some labelled samples and scores others: the blind baselines (outer and
inner folds) and the activation probe's layer choice on the calibration set. ``what`` names the caller in
errors.

Ungrouped folds are drawn here with numpy, exactly as scikit-learn's ``StratifiedKFold(shuffle=True)`` draws
them (a test pins the equality): importing scikit-learn costs seconds, which the out-of-fold balanced accuracy
of a fully stored rerun should not pay. Grouped folds use ``StratifiedGroupKFold`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from miakit.errors import MiakitError


def _n_splits(y: np.ndarray, n_splits: int, what: str) -> int:
    """Folds to use: ``n_splits``, fewer when a class is small; MiakitError below 2 per class."""
    smallest = min(int(np.count_nonzero(y == 1)), int(np.count_nonzero(y == 0)))
    if smallest < 2:
        raise MiakitError(
            f"{what} needs at least 2 members and 2 non-members; "
            f"got {int(np.count_nonzero(y == 1))} members and {int(np.count_nonzero(y == 0))} non-members"
        )
    if n_splits < 2:
        raise MiakitError(f"n_splits must be >= 2; got {n_splits}")
    return min(n_splits, smallest)


def stratified_folds(y: np.ndarray, n_splits: int, seed: int, what: str = "the blind baseline") -> Any:
    """Seeded stratified folds (a scikit-learn ``StratifiedKFold``); fewer folds when a class is small."""
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(n_splits=_n_splits(y, n_splits, what), shuffle=True, random_state=seed)


def stratified_test_folds(y: np.ndarray, n_splits: int, seed: int) -> np.ndarray:
    """The test fold of every sample, as ``StratifiedKFold(n_splits, shuffle=True, random_state=seed)`` assigns
    them: the classes in order of first appearance, each fold's share of a class by round robin over the sorted
    labels, each class's fold numbers shuffled by ``RandomState(seed)``."""
    rng = np.random.RandomState(seed)
    _, first, inverse = np.unique(y, return_index=True, return_inverse=True)
    encoded = np.unique(first, return_inverse=True)[1][inverse.ravel()]
    ordered = np.sort(encoded)
    allocation = np.asarray([np.bincount(ordered[i::n_splits], minlength=len(first)) for i in range(n_splits)])
    test_folds = np.empty(len(y), dtype=np.int64)
    for k in range(len(first)):
        folds = np.arange(n_splits).repeat(allocation[:, k])
        rng.shuffle(folds)
        test_folds[encoded == k] = folds
    return test_folds


def fold_indices(
    y: np.ndarray, n_splits: int, seed: int, groups: Sequence[str] | None = None, what: str = "the blind baseline"
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs of seeded stratified folds. With ``groups`` in which some group has several
    samples (chunks of one document), whole groups stay on one side (StratifiedGroupKFold): otherwise what is
    peculiar to a document (its words, its activations) would carry its label from its chunks in training to
    its chunks in test."""
    if groups is None or len(set(groups)) == len(groups):
        k = _n_splits(y, n_splits, what)
        test_folds = stratified_test_folds(np.asarray(y), k, seed)
        index = np.arange(len(y))
        return [(index[test_folds != i], index[test_folds == i]) for i in range(k)]
    g = np.asarray([str(v) for v in groups])
    per_class = {c: len(set(g[y == c])) for c in (0, 1)}
    if min(per_class.values()) < 2:
        raise MiakitError(
            f"{what} needs at least 2 member and 2 non-member documents; got {per_class[1]} and {per_class[0]}"
        )
    if n_splits < 2:
        raise MiakitError(f"n_splits must be >= 2; got {n_splits}")
    from sklearn.model_selection import StratifiedGroupKFold

    folds = StratifiedGroupKFold(n_splits=min(n_splits, min(per_class.values())), shuffle=True, random_state=seed)
    return list(folds.split(np.zeros(len(y)), y, g))
