"""More blind baselines (Das, Zhang & Tramer 2024): dates mentioned in the text, and greedily chosen n-grams.

Like the bag-of-words baseline they never see a model; every score is out-of-fold (fitted on the other
folds only), so a baseline never scores a text it learnt from. Higher = member.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import CountVectorizer

from miakit.evaluate.blind_verdict import DATE_NAME, NGRAM_NAME
from miakit.evaluate.folds import fold_indices
from miakit.evaluate.scores import validate_labels

YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d)(?!\d)")


def year_features(texts: Sequence[str]) -> np.ndarray:
    """Per text: has a year (1500-2099), latest, earliest and mean year (0 when none), number of years."""
    rows = []
    for text in texts:
        years = [int(m) for m in YEAR.findall(str(text))]
        if years:
            rows.append([1.0, max(years), min(years), float(np.mean(years)), len(years)])
        else:
            rows.append([0.0, 0.0, 0.0, 0.0, 0.0])
    return np.asarray(rows, dtype=np.float64)


def blind_date_scores(
    texts: Sequence[str],
    labels: ArrayLike,
    *,
    n_splits: int = 5,
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> np.ndarray:
    """Out-of-fold P(member | years mentioned in the text): temporal splits give themselves away here.

    A random forest on the year features learns cut-off years (e.g. "latest year mentioned >= 2023 means
    non-member") without being told the training cut-off; on the Blind-MIA arXiv and Gutenberg sets it beats
    both a logistic regression and the paper's fixed-cut-off rule (figures in benchmarks/README.md).
    ``groups``: whole documents per fold.
    """
    y = validate_labels(labels)
    x = year_features(texts)
    out = np.full(len(y), 0.5)
    for train, test in fold_indices(y, n_splits, seed, groups):
        if np.ptp(x[train], axis=0).sum() == 0:  # no year anywhere in the training folds: nothing to learn
            continue
        model = RandomForestClassifier(n_estimators=200, min_samples_leaf=3, random_state=seed, n_jobs=1)
        out[test] = model.fit(x[train], y[train]).predict_proba(x[test])[:, 1]
    return out


def select_ngrams(present: Any, y: np.ndarray, *, max_rate: float = 0.01, k: int = 50) -> np.ndarray:
    """Greedy selection (set cover) of n-gram columns of the binary matrix ``present`` (dense or sparse) that
    occur in at most ``max_rate`` of class-0 texts yet in many class-1 texts not covered yet; returns the
    chosen column indices (at most ``k``)."""
    present = sparse.csr_matrix(present)
    positives, negatives = present[y == 1], present[y == 0]
    if negatives.shape[0]:
        allowed = np.asarray(negatives.mean(axis=0)).ravel() <= max_rate
    else:
        allowed = np.ones(present.shape[1], dtype=bool)
    chosen: list[int] = []
    uncovered = np.ones(positives.shape[0], dtype=bool)
    for _ in range(k):
        if not uncovered.any() or present.shape[1] == 0:
            break
        gain = np.asarray(positives[uncovered].sum(axis=0)).ravel() * allowed
        best = int(np.argmax(gain))
        if gain[best] == 0:
            break
        chosen.append(best)
        allowed[best] = False
        uncovered &= positives[:, best].toarray().ravel() == 0
    return np.asarray(chosen, dtype=int)


def _ngram_matrix(texts: Sequence[str], ngram_range: tuple[int, int]) -> sparse.csr_matrix | None:
    """Binary presence of case-kept word n-grams, plus character 1-5-grams (the paper's markers) when texts are
    short enough for their vocabulary to stay small (captions, snippets; not whole books). Each vectoriser is
    fitted on its own, so texts without words still get character n-grams; None when neither finds any."""
    from miakit.evaluate.blind import CHAR_NGRAMS_UP_TO_CHARS

    vectorisers = [CountVectorizer(ngram_range=ngram_range, binary=True, lowercase=False)]
    if len(texts) and float(np.median([len(t) for t in texts])) <= CHAR_NGRAMS_UP_TO_CHARS:
        vectorisers.append(CountVectorizer(analyzer="char", ngram_range=(1, 5), binary=True, lowercase=False))
    parts = []
    for vectoriser in vectorisers:
        try:
            parts.append(vectoriser.fit_transform(texts))
        except ValueError:  # an empty vocabulary
            continue
    return sparse.hstack(parts, format="csr") if parts else None


def blind_ngram_scores(
    texts: Sequence[str],
    labels: ArrayLike,
    *,
    n_splits: int = 5,
    seed: int = 0,
    ngram_range: tuple[int, int] = (1, 3),
    groups: Sequence[str] | None = None,
) -> np.ndarray:
    """Out-of-fold score: n-grams greedily chosen on the training folds as member-only markers, minus those
    chosen as non-member-only markers, counted in the text.

    Markers are case-kept word n-grams and, for short texts (median at most 2,000 characters), character
    1-5-grams as in Das et al.'s greedy selection. Only n-grams in at least 2 training texts are candidates.
    The texts are counted once; each fold then keeps the columns its training texts support, which equals
    fitting the vocabulary on the training folds (no label is involved in counting). ``groups``: whole
    documents per fold."""
    y = validate_labels(labels)
    texts = [str(t) for t in texts]
    out = np.zeros(len(y))
    present = _ngram_matrix(texts, ngram_range)
    if present is None:  # not a single n-gram in any text
        return out
    for train, test in fold_indices(y, n_splits, seed, groups):
        train_x = present[train]
        supported = np.flatnonzero(np.asarray(train_x.sum(axis=0)).ravel() >= 2)
        if not len(supported):  # no n-gram occurs twice: nothing to select
            continue
        train_x, test_x = train_x[:, supported], present[test][:, supported]
        for_members = select_ngrams(train_x, y[train])
        for_nonmembers = select_ngrams(train_x, 1 - y[train])
        hits = np.asarray(test_x[:, for_members].sum(axis=1)).ravel()
        misses = np.asarray(test_x[:, for_nonmembers].sum(axis=1)).ravel()
        out[test] = hits - misses
    return out


def blind_baselines(
    texts: Sequence[str], labels: ArrayLike, *, seed: int = 0, groups: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """All blind baselines, out-of-fold: {"blind_bow", "blind_date", "blind_ngram"} -> scores.

    ``groups`` (the document of each sample): a document's chunks are never split across folds."""
    from miakit.evaluate.blind import BLIND_NAME, blind_bow_scores

    return {
        BLIND_NAME: blind_bow_scores(texts, labels, seed=seed, groups=groups),
        DATE_NAME: blind_date_scores(texts, labels, seed=seed, groups=groups),
        NGRAM_NAME: blind_ngram_scores(texts, labels, seed=seed, groups=groups),
    }
