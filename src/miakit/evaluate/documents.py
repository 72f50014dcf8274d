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

Chunks whose score is NaN are left out of all three (and counted); a document with none left scores NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from miakit.errors import MiakitError

if TYPE_CHECKING:
    from miakit.data import Sample

METHODS = ("mean", "above", "mwu")


def chunk_text(text: str, words: int) -> list[str]:
    """Consecutive chunks of at most ``words`` whitespace-separated words (the last may be shorter)."""
    if words < 1:
        raise MiakitError(f"chunk size must be at least 1 word (got {words})")
    tokens = text.split()
    return [" ".join(tokens[i : i + words]) for i in range(0, len(tokens), words)] or [text]


def _by_document(groups: Sequence[str]) -> dict[str, list[int]]:
    """Sample indices per document, in order of first appearance."""
    order: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        order.setdefault(str(g), []).append(i)
    return order


def _scorable(values: np.ndarray) -> np.ndarray:
    """The chunk scores that exist: NaN (a chunk the attack could not score) left out."""
    return values[~np.isnan(values)]


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else float("nan")


def _mwu(doc: np.ndarray, others: np.ndarray) -> float:
    if not len(doc) or not len(others):
        return float("nan")
    others = np.sort(others)
    below = np.searchsorted(others, doc, side="left")
    ties = np.searchsorted(others, doc, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(doc) * len(others)))


def nan_chunk_counts(groups: Sequence[str], scores: ArrayLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per document (in order of first appearance): its id, its number of chunks and how many of them have a
    NaN score (left out of every document statistic)."""
    s = np.asarray(scores, dtype=np.float64)
    order = _by_document(groups)
    n_chunks = np.array([len(idx) for idx in order.values()])
    n_nan = np.array([int(np.isnan(s[idx]).sum()) for idx in order.values()])
    return list(order), n_chunks, n_nan


def document_scores(
    groups: Sequence[str],
    labels: ArrayLike,
    scores: ArrayLike,
    method: str = "mean",
    reference: ArrayLike | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per document (group): its id, its label (all chunks must agree) and its aggregated score.

    ``reference``: chunk scores of known non-member documents (never evaluated); ``above`` and ``mwu`` compare
    against them instead of the other documents. A NaN chunk score (a chunk the attack could not score) is left
    out, of the document and of the reference, so one unscorable chunk does not sink a document (count them
    with `nan_chunk_counts`); a document with no scorable chunk scores NaN, and the document-level evaluation
    applies its NaN policy. +-inf are ordinary extremes, as at the sample level: ``above`` and ``mwu`` rank
    them, and the ``mean`` of a document with an infinite chunk is that infinity (NaN with both signs).
    """
    if method not in METHODS:
        raise MiakitError(f"unknown document statistic {method!r}; choose one of {', '.join(METHODS)}")
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    order = _by_document(groups)
    ids, doc_labels, doc_scores = [], [], []
    known = None
    if reference is not None:
        known = _scorable(np.asarray(reference, dtype=np.float64))
        if not len(known):
            raise MiakitError("the known non-member reference for document scores is empty (or all NaN)")
        known_median = _median(known)
    for g, idx in order.items():
        idx_arr = np.asarray(idx)
        chunk_labels = set(y[idx_arr].tolist())
        if len(chunk_labels) != 1:
            raise MiakitError(f"document {g!r} mixes member and non-member chunks; a group must have one label")
        mask = np.ones(len(s), dtype=bool)
        mask[idx_arr] = False
        mine = _scorable(s[idx_arr])
        if not len(mine):
            value = float("nan")
        elif method == "mean":
            with np.errstate(invalid="ignore"):
                value = float(np.mean(mine))
        elif method == "above":
            threshold = known_median if known is not None else _median(s[mask])
            value = float(np.mean(mine > threshold))
        else:
            value = _mwu(mine, known if known is not None else _scorable(s[mask]))
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
    """One row per document: its label, chunk count and, per attack, the mean chunk score and the number of
    chunks left out for a NaN score (``:nan_chunks``); where known non-member chunks exist, also the ``mwu``
    statistic against them and its one-sided Mann-Whitney p-value (small = the document's chunks score higher
    than known non-members', as a trained-on document would). NaN chunks are left out of all of them (and of
    the reference); a document with no scorable chunk gets NaN.

    The p-value is what a data owner asks of one document ("was mine used?"); it assumes the known
    non-members come from the same distribution as the document and that chunks are exchangeable.
    """
    from scipy.stats import mannwhitneyu

    reference = reference or {}
    order = _by_document(groups)
    y = np.asarray(labels)
    known = {column: _scorable(np.asarray(values, dtype=np.float64)) for column, values in reference.items()}
    rows = []
    for g, idx in order.items():
        row: dict[str, object] = {"document": g, "label": int(y[idx[0]]), "n_chunks": len(idx)}
        for column, scores in columns.items():
            chunk_scores = np.asarray(scores, dtype=np.float64)[idx]
            s = _scorable(chunk_scores)
            with np.errstate(invalid="ignore"):
                row[f"{column}:mean"] = float(np.mean(s)) if len(s) else float("nan")
            row[f"{column}:nan_chunks"] = len(chunk_scores) - len(s)
            if column in known:
                row[f"{column}:mwu"] = _mwu(s, known[column])
                p = float("nan")
                if len(s) and len(known[column]):
                    p = float(mannwhitneyu(s, known[column], alternative="greater").pvalue)
                row[f"{column}:p_value"] = p
        rows.append(row)
    return pd.DataFrame(rows)


def chunk_length_warning(evaluated: Sequence[Sample], known: Sequence[Sample]) -> str | None:
    """A warning when the known non-member chunks are far longer or shorter than the evaluated ones: length
    moves loss-type scores, so document statistics against them would compare unlike texts."""
    mine = float(np.median([len(s.text.split()) for s in evaluated]))
    theirs = float(np.median([len(s.text.split()) for s in known]))
    if min(mine, theirs) > 0 and max(mine, theirs) / min(mine, theirs) <= 2:
        return None
    return (
        f"Documents: the known non-member chunks of the calibration set have a median of {theirs:g} words, the "
        f"evaluated chunks {mine:g}; the document statistics against them compare texts of different length. "
        "Cut both the same way (e.g. --chunk-words N)."
    )
