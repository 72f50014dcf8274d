"""Ungrouped folds are drawn with numpy exactly as scikit-learn's StratifiedKFold draws them (the import of
scikit-learn is what a fully stored rerun must not pay): equal fold by fold over random label vectors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from miakit.errors import MiakitError
from miakit.evaluate.folds import fold_indices


@pytest.mark.parametrize("seed", range(60))
def test_ungrouped_folds_equal_stratified_kfold(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 400))
    y = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(np.int8)
    y[:2], y[-2:] = y[0], 1 - y[0]  # both classes, at least 2 each; either class may come first
    y[2] = 1 - y[0]
    n_splits = int(rng.integers(2, 9))
    k = min(n_splits, int((y == 1).sum()), int((y == 0).sum()))
    want = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n), y))
    got = fold_indices(y, n_splits, seed)
    assert len(got) == len(want) == k
    for (train, test), (want_train, want_test) in zip(got, want, strict=True):
        assert train.tolist() == want_train.tolist() and test.tolist() == want_test.tolist()


def test_too_few_of_a_class_is_an_error_naming_the_caller():
    with pytest.raises(MiakitError, match="balanced accuracy's folds needs at least 2 members"):
        fold_indices(np.array([1, 0, 0, 0]), 5, 0, what="balanced accuracy's folds")
