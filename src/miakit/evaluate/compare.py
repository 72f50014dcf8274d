"""Comparing attacks honestly: a paired, stratified bootstrap of AUROC differences against the best attack.

Every attack is evaluated on the same resampled members and non-members in each bootstrap round, so the
difference between two attacks keeps their correlation (both read the same texts) and its interval is far
narrower than the two separate intervals suggest. When samples are chunks of documents the rounds resample
whole documents (see `resample`). The p-values of the comparisons with the best attack form one family: each
comes with its Holm adjustment, which bounds the chance of any false "differs" among them at the nominal level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from miakit.errors import MiakitError
from miakit.evaluate.resample import (
    check_one_label_per_group,
    chunk_size,
    class_units,
    draw_weights,
    is_clustered,
    weighted_counts,
)
from miakit.evaluate.roc import auroc_from_counts
from miakit.evaluate.scores import prepare_scores, validate_labels


def holm_adjust(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values: the i-th smallest p times (m - i + 1), made monotone, capped at 1."""
    p = np.asarray(p_values, dtype=float)
    if not len(p):
        return p
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (len(p) - np.arange(len(p)))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def paired_auroc_comparison(
    labels: ArrayLike,
    columns: Mapping[str, ArrayLike],
    *,
    best: str | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    groups: Sequence[str] | None = None,
) -> dict:
    """AUROC(best) - AUROC(other) for every other column, with a percentile interval and a two-sided
    bootstrap p-value for "no difference", all attacks sharing the same resamples (NaN scores rank lowest).

    ``best`` defaults to the column with the highest AUROC. ``groups``: the document of each sample; when one
    holds several samples, whole documents are resampled (stratified by class). Returns ``{"best",
    "n_bootstrap", "confidence", "bootstrap_unit", "adjustment", "pairs": {name: {"auroc_difference", "ci_low",
    "ci_high", "p_value", "p_value_holm"}}}``; ``p_value`` is the raw one.
    """
    y = validate_labels(labels)
    if len(columns) < 2:
        raise MiakitError("comparing attacks needs at least two score columns")
    if groups is not None and len(groups) != len(y):
        raise MiakitError(f"{len(y)} labels but {len(groups)} groups; they must match one to one")
    check_one_label_per_group(y, groups)
    prepared = {name: prepare_scores(y, scores, "lowest") for name, scores in columns.items()}
    units = {label: class_units(y, groups, label) for label in (1, 0)}
    if units[1].n_units == 0 or units[0].n_units == 0:
        raise MiakitError("comparing attacks needs members and non-members")
    matrices = {
        name: {label: units[label].level_matrix(p.ranks[y == label], len(p.levels)) for label in (1, 0)}
        for name, p in prepared.items()
    }

    def aurocs(name: str, w1: np.ndarray, w0: np.ndarray) -> np.ndarray:
        m = matrices[name]
        return auroc_from_counts(weighted_counts(w1, m[1]), weighted_counts(w0, m[0]))

    ones = {label: np.ones((1, units[label].n_units), dtype=np.int64) for label in (1, 0)}
    observed = {name: float(aurocs(name, ones[1], ones[0])[0]) for name in prepared}
    best = best if best is not None else max(observed, key=lambda n: observed[n])
    if best not in prepared:
        raise MiakitError(f"unknown column {best!r} to compare against")
    rng = np.random.default_rng(seed)
    boot: dict[str, list[np.ndarray]] = {name: [] for name in prepared}
    n1, n0 = units[1].n_units, units[0].n_units
    chunk = chunk_size(n1, n0, *(len(p.levels) for p in prepared.values()))
    for start in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - start)
        w1, w0 = draw_weights(rng, n1, b), draw_weights(rng, n0, b)
        for name in prepared:
            boot[name].append(aurocs(name, w1, w0))
    draws = {name: np.concatenate(v) if v else np.empty(0) for name, v in boot.items()}
    alpha = (1.0 - confidence) / 2.0
    pairs = {}
    for name in prepared:
        if name == best:
            continue
        diff = draws[best] - draws[name]
        entry = {
            "auroc_difference": observed[best] - observed[name],
            "ci_low": None,
            "ci_high": None,
            "p_value": None,
            "p_value_holm": None,
        }
        if n_bootstrap > 0:
            low, high = np.quantile(diff, [alpha, 1.0 - alpha])
            tail = min(np.count_nonzero(diff <= 0), np.count_nonzero(diff >= 0))
            entry.update(
                ci_low=float(low),
                ci_high=float(high),
                p_value=float(min(1.0, 2.0 * (tail + 1) / (n_bootstrap + 1))),
            )
        pairs[name] = entry
    if n_bootstrap > 0:
        for name, adjusted in zip(pairs, holm_adjust([e["p_value"] for e in pairs.values()]), strict=True):
            pairs[name]["p_value_holm"] = float(adjusted)
    return {
        "best": best,
        "n_bootstrap": n_bootstrap,
        "confidence": confidence,
        "bootstrap_unit": "document" if is_clustered(groups) else "sample",
        "adjustment": f"Holm over {len(pairs)} comparison(s) with {best}",
        "pairs": pairs,
    }
