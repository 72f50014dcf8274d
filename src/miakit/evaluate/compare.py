"""Comparing attacks honestly: a paired, stratified bootstrap of AUROC differences against the best attack.

Every attack is evaluated on the same resampled members and non-members in each bootstrap round, so the
difference between two attacks keeps their correlation (both read the same texts) and its interval is far
narrower than the two separate intervals suggest.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from miakit.errors import MiakitError
from miakit.evaluate.roc import auroc_from_counts, level_counts
from miakit.evaluate.scores import prepare_scores, validate_labels

_CELLS = 4_000_000  # resample-matrix entries per chunk


def paired_auroc_comparison(
    labels: ArrayLike,
    columns: Mapping[str, ArrayLike],
    *,
    best: str | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """AUROC(best) - AUROC(other) for every other column, with a percentile interval and a two-sided
    bootstrap p-value for "no difference", all attacks sharing the same resamples (NaN scores rank lowest).

    ``best`` defaults to the column with the highest AUROC. Returns ``{"best", "n_bootstrap", "confidence",
    "pairs": {name: {"auroc_difference", "ci_low", "ci_high", "p_value"}}}``.
    """
    y = validate_labels(labels)
    if len(columns) < 2:
        raise MiakitError("comparing attacks needs at least two score columns")
    prepared = {name: prepare_scores(y, scores, "lowest") for name, scores in columns.items()}
    pos_idx, neg_idx = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    n1, n0 = len(pos_idx), len(neg_idx)
    if n1 == 0 or n0 == 0:
        raise MiakitError("comparing attacks needs members and non-members")

    def counts(p, pos_sel: np.ndarray, neg_sel: np.ndarray) -> np.ndarray:
        k = len(p.levels)
        return auroc_from_counts(level_counts(p.ranks[pos_sel], k), level_counts(p.ranks[neg_sel], k))

    observed = {name: float(counts(p, pos_idx[None, :], neg_idx[None, :])[0]) for name, p in prepared.items()}
    best = best if best is not None else max(observed, key=lambda n: observed[n])
    if best not in prepared:
        raise MiakitError(f"unknown column {best!r} to compare against")
    rng = np.random.default_rng(seed)
    boot: dict[str, list[np.ndarray]] = {name: [] for name in prepared}
    chunk = max(1, _CELLS // max(n1, n0))
    for start in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - start)
        pos_sel = pos_idx[rng.integers(0, n1, size=(b, n1))]
        neg_sel = neg_idx[rng.integers(0, n0, size=(b, n0))]
        for name, p in prepared.items():
            boot[name].append(counts(p, pos_sel, neg_sel))
    draws = {name: np.concatenate(v) if v else np.empty(0) for name, v in boot.items()}
    alpha = (1.0 - confidence) / 2.0
    pairs = {}
    for name in prepared:
        if name == best:
            continue
        diff = draws[best] - draws[name]
        entry = {"auroc_difference": observed[best] - observed[name], "ci_low": None, "ci_high": None, "p_value": None}
        if n_bootstrap > 0:
            low, high = np.quantile(diff, [alpha, 1.0 - alpha])
            tail = min(np.count_nonzero(diff <= 0), np.count_nonzero(diff >= 0))
            entry.update(
                ci_low=float(low),
                ci_high=float(high),
                p_value=float(min(1.0, 2.0 * (tail + 1) / (n_bootstrap + 1))),
            )
        pairs[name] = entry
    return {"best": best, "n_bootstrap": n_bootstrap, "confidence": confidence, "pairs": pairs}
