"""Model-free blind baseline (Das, Zhang & Tramer 2024): can the texts alone tell members apart?

If a bag-of-words classifier that never sees the target separates members from non-members, the two
sets differ in distribution (dates, topics, formatting) and any attack's figures on them are not evidence
of membership. Scores are out-of-fold, so the classifier never scores a text it was trained on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import FunctionTransformer

from miakit.errors import MiakitError
from miakit.evaluate.blind_verdict import BLIND_NAME, BLIND_WARNING_PREFIX, blind_warning, strongest_blind_warning
from miakit.evaluate.folds import fold_indices
from miakit.evaluate.scores import validate_labels

__all__ = [
    "BLIND_NAME",
    "BLIND_WARNING_PREFIX",
    "CHAR_NGRAMS_UP_TO_CHARS",
    "blind_bow_scores",
    "blind_pipeline",
    "blind_warning",
    "strongest_blind_warning",
]

CHAR_NGRAMS_UP_TO_CHARS = 2000  # median text length up to which character n-grams are used


_DIGIT = re.compile(r"\d")
_PUNCT = re.compile(r"[^\w\s]")


def _shape_features(texts: Sequence[str]) -> np.ndarray:
    """Per text: characters, words, lines, capital letters, digits and punctuation, as log counts."""
    rows = [
        [
            len(t),
            len(t.split()),
            t.count("\n") + 1,
            sum(map(str.isupper, t)),
            len(_DIGIT.findall(t)),
            len(_PUNCT.findall(t)),
        ]
        for t in texts
    ]
    return np.log1p(np.asarray(rows, dtype=np.float64))


class BlindEnsemble(ClassifierMixin, BaseEstimator):
    """Cross-validated stacked ensemble of bag-of-words classifiers on raw texts (after Das et al. 2024).

    Three views of the text, each with its own classifier:

    * ``tfidf_logistic``: TF-IDF word 1-2-grams and char 3-5-grams (lower-cased) + logistic regression; the
      char n-grams only when the median text has at most 2,000 characters (whole books would make their
      vocabulary huge and slow, and words suffice there);
    * ``counts_bayes``: case-kept word 1-2-gram counts + multinomial naive Bayes;
    * ``counts_forest``: case-kept word counts plus length and casing counts + a random forest.

    A logistic regression stacks their probabilities, trained on the inner out-of-fold probabilities of
    ``inner_splits`` stratified folds, so it learns which view separates this data. The vectorisers are
    fitted once per ``fit`` on the training texts only (unsupervised, so the inner folds leak no labels);
    texts passed to ``predict_proba`` are never fitted on.
    """

    def __init__(self, seed: int = 0, inner_splits: int = 3) -> None:
        self.seed = seed
        self.inner_splits = inner_splits

    def _views(self, texts: Sequence[str] = ()) -> dict[str, tuple[Any, Any]]:
        words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        text_view: Any = words
        if len(texts) == 0 or float(np.median([len(t) for t in texts])) <= CHAR_NGRAMS_UP_TO_CHARS:
            chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
            text_view = FeatureUnion([("words", words), ("chars", chars)])
        return {
            "tfidf_logistic": (text_view, LogisticRegression(C=1.0, max_iter=2000, random_state=self.seed)),
            "counts_bayes": (CountVectorizer(lowercase=False, ngram_range=(1, 2)), MultinomialNB()),
            "counts_forest": (
                FeatureUnion(
                    [
                        ("counts", CountVectorizer(lowercase=False, max_features=2000)),
                        ("shape", FunctionTransformer(_shape_features)),
                    ]
                ),
                RandomForestClassifier(n_estimators=50, min_samples_leaf=2, random_state=self.seed, n_jobs=1),
            ),
        }

    def fit(self, texts: Sequence[str], y: ArrayLike, groups: Sequence[str] | None = None) -> BlindEnsemble:
        """Fit the views and the stack; ``groups`` keeps each group's samples in one inner fold."""
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if groups is None:
            units = {c: int(np.count_nonzero(y == c)) for c in self.classes_}
        else:
            g = np.asarray([str(v) for v in groups])
            units = {c: len(set(g[y == c])) for c in self.classes_}
        smallest = min(units.values())
        inner: list[tuple[np.ndarray, np.ndarray]] = []
        if smallest >= 2:
            inner = fold_indices(y, min(self.inner_splits, smallest), self.seed, groups)
        self.views_: dict[str, tuple[Any, Any]] = {}
        stacked = []
        for name, (vectoriser, classifier) in self._views(texts).items():
            matrix = vectoriser.fit_transform(texts)
            if inner:
                oof = cross_val_predict(clone(classifier), matrix, y, cv=inner, method="predict_proba")
                stacked.append(oof[:, 1])
            self.views_[name] = (vectoriser, classifier.fit(matrix, y))
        # with a single sample of a class there are no inner folds: the views are averaged instead
        self.stack_ = (
            LogisticRegression(max_iter=1000, random_state=self.seed).fit(np.column_stack(stacked), y)
            if stacked
            else None
        )
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        columns = np.column_stack([clf.predict_proba(vec.transform(texts))[:, 1] for vec, clf in self.views_.values()])
        if self.stack_ is None:
            p = columns.mean(axis=1)
            return np.column_stack([1 - p, p])
        return self.stack_.predict_proba(columns)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(texts), axis=1)]


def blind_pipeline(seed: int = 0) -> BlindEnsemble:
    """The blind bag-of-words classifier, unfitted (fitted fresh inside every outer fold)."""
    return BlindEnsemble(seed=seed)


def blind_bow_scores(
    texts: Sequence[str],
    labels: ArrayLike,
    *,
    n_splits: int = 5,
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> np.ndarray:
    """Out-of-fold P(member | text) from the blind bag-of-words ensemble (higher = member).

    Vectorisers, base classifiers and the stacking model are fitted on the other folds only (whole
    ``groups`` per fold when given, also in the ensemble's inner folds). n_splits shrinks to the smaller
    class size; fewer than 2 samples (documents) in a class is an error.
    """
    y = validate_labels(labels)
    texts = [str(t) for t in texts]
    if len(texts) != len(y):
        raise MiakitError(f"{len(texts)} texts but {len(y)} labels; they must match one to one")
    g = None if groups is None else [str(v) for v in groups]
    out = np.zeros(len(y))
    try:
        for train, test in fold_indices(y, n_splits, seed, g):
            model = blind_pipeline(seed).fit(
                [texts[i] for i in train], y[train], groups=None if g is None else [g[i] for i in train]
            )
            out[test] = model.predict_proba([texts[i] for i in test])[:, 1]
    except ValueError as e:  # e.g. an empty vocabulary: texts with no words at all
        raise MiakitError(f"the blind baseline could not be fitted on these texts: {e}") from e
    return out
