"""Stratified bootstrap over samples or, when samples are chunks of documents, over whole documents.

Chunks of one document are not independent (they share an author, a topic, a training decision), so when some
document has several samples the bootstrap resamples documents with all their chunks (a cluster bootstrap),
members' and non-members' documents separately (a document has one label). Each resample is a row of
multiplicities over the units of a class; any per-unit total (ROC level counts, predicted members, sizes)
follows as one matrix product, so every statistic of one resample sees the same draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from miakit.errors import MiakitError
from miakit.evaluate.roc import level_counts

CELLS = 4_000_000  # resample-matrix entries per chunk (bounds memory, keeps numpy vectorised)


def is_clustered(groups: Sequence[str] | None) -> bool:
    """True when some document (group) holds several samples."""
    return groups is not None and len(set(map(str, groups))) < len(groups)


@dataclass(frozen=True)
class ClassUnits:
    """The resampling units of one class: ``unit[i]`` is the unit of its i-th sample (in sample order)."""

    unit: np.ndarray
    n_units: int

    def totals(self, values: np.ndarray) -> np.ndarray:
        """Per-unit sums of a per-sample value (e.g. 1 for sizes, a 0/1 prediction for predicted members)."""
        return np.bincount(self.unit, weights=values, minlength=self.n_units)

    def level_matrix(self, ranks: np.ndarray, n_levels: int) -> sparse.csr_matrix:
        """Sparse (units x levels) counts of the class's samples at each rank level."""
        ones = np.ones(len(ranks), dtype=np.int64)
        return sparse.csr_matrix((ones, (self.unit, ranks)), shape=(self.n_units, n_levels))


def class_units(labels: np.ndarray, groups: Sequence[str] | None, label: int) -> ClassUnits:
    """Units of the samples of class ``label``: one per sample, or one per document when ``groups`` cluster."""
    idx = np.flatnonzero(labels == label)
    if not is_clustered(groups):
        return ClassUnits(np.arange(len(idx)), len(idx))
    g = np.asarray([str(groups[i]) for i in idx])
    _, unit = np.unique(g, return_inverse=True)
    return ClassUnits(unit.astype(np.int64), int(unit.max()) + 1 if len(unit) else 0)


def check_one_label_per_group(labels: np.ndarray, groups: Sequence[str] | None) -> None:
    """MiakitError when a document mixes member and non-member samples (it could not be resampled whole)."""
    if not is_clustered(groups):
        return
    g = np.asarray([str(v) for v in groups])
    for label in (0, 1):
        other = set(g[labels == 1 - label])
        mixed = sorted(set(g[labels == label]) & other)
        if mixed:
            raise MiakitError(
                f"document {mixed[0]!r} mixes member and non-member samples; a group must have one label "
                "(its samples are the chunks of one document)"
            )


def draw_weights(rng: np.random.Generator, n_units: int, b: int) -> np.ndarray:
    """``b`` bootstrap rows of multiplicities over ``n_units`` units (each row sums to ``n_units``)."""
    return level_counts(rng.integers(0, n_units, size=(b, n_units)), n_units)


def weighted_counts(weights: np.ndarray, matrix: sparse.csr_matrix) -> np.ndarray:
    """Resampled level counts: (b x units) multiplicities times the (units x levels) count matrix."""
    return np.ascontiguousarray((matrix.T @ weights.T).T)


def chunk_size(*widths: int) -> int:
    """Resamples per chunk so that no (resamples x width) matrix exceeds CELLS entries."""
    return max(1, CELLS // max(1, *widths))
