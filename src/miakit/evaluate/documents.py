"""Document and collection inference (Shi et al. 2024; Puerto et al. 2025): aggregate chunk scores per group.

Sample-level membership on large pre-trained models is near chance; evidence adds up over the many chunks of
one document (or one collection). Samples sharing a ``group`` are the chunks of one document; a document is
a member when its chunks are. Three document statistics, each higher = member:

* ``mean``: the mean chunk score;
* ``above``: the fraction of chunks above a threshold: the median chunk score of known non-member documents
  when there are some, else of the other documents (so no evaluated label is used);
* ``mwu``: the Mann-Whitney U statistic of the document's chunks against the chunks of known non-member
  documents (Puerto et al.: a calibration set), or, without them, against every other document's chunks;
  normalised to [0, 1] (the probability that one of its chunks outscores one of theirs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from miakit.errors import MiakitError

METHODS = ("mean", "above", "mwu")


def chunk_text(text: str, words: int) -> list[str]:
    """Consecutive chunks of at most ``words`` whitespace-separated words (the last may be shorter)."""
    if words < 1:
        raise MiakitError(f"chunk size must be at least 1 word (got {words})")
    tokens = text.split()
    return [" ".join(tokens[i : i + words]) for i in range(0, len(tokens), words)] or [text]


def _nan_lowest(scores: ArrayLike) -> np.ndarray:
    """Scores as float64 with NaN as -inf: a chunk that could not be scored ranks lowest."""
    s = np.asarray(scores, dtype=np.float64)
    return np.where(np.isnan(s), -np.inf, s)


def _by_document(groups: Sequence[str]) -> dict[str, list[int]]:
    """Sample indices per document, in order of first appearance."""
    order: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        order.setdefault(str(g), []).append(i)
    return order


def _median(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(np.median(finite)) if len(finite) else float("nan")


def _mwu(doc: np.ndarray, others: np.ndarray) -> float:
    if not len(doc) or not len(others):
        return float("nan")
    others = np.sort(others)
    below = np.searchsorted(others, doc, side="left")
    ties = np.searchsorted(others, doc, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(doc) * len(others)))


def document_scores(
    groups: Sequence[str],
    labels: ArrayLike,
    scores: ArrayLike,
    method: str = "mean",
    reference: ArrayLike | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per document (group): its id, its label (all chunks must agree) and its aggregated score.

    ``reference``: chunk scores of known non-member documents (never evaluated); ``above`` and ``mwu`` compare
    against them instead of the other documents. NaN chunk scores count as the lowest score (as in sample-level
    evaluation): -inf here.
    """
    if method not in METHODS:
        raise MiakitError(f"unknown document statistic {method!r}; choose one of {', '.join(METHODS)}")
    y = np.asarray(labels)
    s = _nan_lowest(scores)
    order = _by_document(groups)
    ids, doc_labels, doc_scores = [], [], []
    finite_all = np.where(np.isinf(s), np.nan, s)
    known = None
    if reference is not None:
        known = _nan_lowest(reference)
        if not len(known):
            raise MiakitError("the known non-member reference for document scores is empty")
        known_median = _median(np.where(np.isinf(known), np.nan, known))
    for g, idx in order.items():
        idx_arr = np.asarray(idx)
        chunk_labels = set(y[idx_arr].tolist())
        if len(chunk_labels) != 1:
            raise MiakitError(f"document {g!r} mixes member and non-member chunks; a group must have one label")
        mask = np.ones(len(s), dtype=bool)
        mask[idx_arr] = False
        if method == "mean":
            value = float(np.mean(s[idx_arr]))
        elif method == "above":
            threshold = known_median if known is not None else _median(finite_all[mask])
            value = float(np.mean(s[idx_arr] > threshold))
        else:
            value = _mwu(s[idx_arr], known if known is not None else s[mask])
        ids.append(g)
        doc_labels.append(chunk_labels.pop())
        doc_scores.append(value)
    return ids, np.asarray(doc_labels), np.asarray(doc_scores, dtype=np.float64)


def document_table(
    groups: Sequence[str],
    labels: ArrayLike,
    columns: dict[str, np.ndarray],
    reference: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """One row per document: its label, chunk count and, per attack, the mean chunk score; where known
    non-member chunks exist, also the ``mwu`` statistic against them and its one-sided Mann-Whitney p-value
    (small = the document's chunks score higher than known non-members', as a trained-on document would).

    The p-value is what a data owner asks of one document ("was mine used?"); it assumes the known
    non-members come from the same distribution as the document and that chunks are exchangeable.
    """
    from scipy.stats import mannwhitneyu

    reference = reference or {}
    order = _by_document(groups)
    y = np.asarray(labels)
    rows = []
    for g, idx in order.items():
        row: dict[str, object] = {"document": g, "label": int(y[idx[0]]), "n_chunks": len(idx)}
        for column, scores in columns.items():
            s = _nan_lowest(np.asarray(scores, dtype=np.float64)[idx])
            row[f"{column}:mean"] = float(np.mean(s))
            if column in reference:
                known = _nan_lowest(reference[column])
                row[f"{column}:mwu"] = _mwu(s, known)
                row[f"{column}:p_value"] = float(mannwhitneyu(s, known, alternative="greater").pvalue)
        rows.append(row)
    return pd.DataFrame(rows)
