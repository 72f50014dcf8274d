"""Model-free blind baseline (Das, Zhang & Tramer 2024): can the texts alone tell members apart?

If a bag-of-words classifier that never sees the target separates members from non-members, the two
sets differ in distribution (dates, topics, formatting) and any attack's figures on them are not evidence
of membership. Scores are out-of-fold, so the classifier never scores a text it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import FeatureUnion, Pipeline

from miakit.errors import MiakitError
from miakit.evaluate.metrics import AttackEvaluation
from miakit.evaluate.scores import validate_labels

BLIND_NAME = "blind_bow"
BLIND_WARNING_PREFIX = "Blind baseline:"


def blind_pipeline(seed: int = 0) -> Pipeline:
    """TF-IDF word 1-2-grams and char 3-5-grams + logistic regression; fitted fresh inside every fold."""
    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=1)),
        ]
    )
    classifier = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    return Pipeline([("features", features), ("classifier", classifier)])


def stratified_folds(y: np.ndarray, n_splits: int, seed: int) -> StratifiedKFold:
    """Seeded stratified folds for out-of-fold blind scores; fewer folds when a class is small."""
    smallest = min(int(np.count_nonzero(y == 1)), int(np.count_nonzero(y == 0)))
    if smallest < 2:
        raise MiakitError(
            "the blind baseline needs at least 2 members and 2 non-members; "
            f"got {int(np.count_nonzero(y == 1))} members and {int(np.count_nonzero(y == 0))} non-members"
        )
    if n_splits < 2:
        raise MiakitError(f"n_splits must be >= 2; got {n_splits}")
    return StratifiedKFold(n_splits=min(n_splits, smallest), shuffle=True, random_state=seed)


def blind_bow_scores(texts: Sequence[str], labels: ArrayLike, *, n_splits: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold P(member | text) from the blind bag-of-words classifier (higher = member).

    Uses StratifiedKFold + cross_val_predict, so vectoriser and classifier are fitted on the other folds
    only. n_splits shrinks to the smaller class size; fewer than 2 samples in a class is an error.
    """
    y = validate_labels(labels)
    texts = [str(t) for t in texts]
    if len(texts) != len(y):
        raise MiakitError(f"{len(texts)} texts but {len(y)} labels; they must match one to one")
    folds = stratified_folds(y, n_splits, seed)
    try:
        proba = cross_val_predict(blind_pipeline(seed), texts, y, cv=folds, method="predict_proba")
    except ValueError as e:  # e.g. an empty vocabulary: texts with no words at all
        raise MiakitError(f"the blind baseline could not be fitted on these texts: {e}") from e
    return proba[:, 1].astype(float)


def blind_warning(evaluation: AttackEvaluation, threshold: float = 0.55, name: str = BLIND_NAME) -> str | None:
    """A warning when a blind baseline's AUROC beats `threshold` (its CI lower bound, else the value)."""
    from miakit.evaluate.blind_more import BLIND_DESCRIPTIONS

    m = evaluation.metrics.get("auroc")
    if m is None or m.value is None:
        return None
    bound = m.ci_low if m.ci_low is not None else m.value
    if bound <= threshold:
        return None
    ci = f" [{m.ci_low:.3f}, {m.ci_high:.3f}]" if m.ci_low is not None and m.ci_high is not None else ""
    what = BLIND_DESCRIPTIONS.get(name, "a model-free classifier")
    return (
        f"{BLIND_WARNING_PREFIX} members and non-members differ in distribution: {what} ({name}), which never "
        f"sees the model, separates them with AUROC {m.value:.3f}{ci}. Attack figures on this data are therefore "
        "not evidence of membership; use a distribution-matched split "
        "(e.g. a randomised train/held-out split)."
    )


def strongest_blind_warning(evaluations: dict[str, AttackEvaluation], threshold: float = 0.55) -> str | None:
    """The warning of the blind baseline with the highest AUROC lower bound (None when none beats threshold)."""

    def bound(name: str) -> float:
        m = evaluations[name].metrics.get("auroc")
        if m is None or m.value is None:
            return float("-inf")
        return m.ci_low if m.ci_low is not None else m.value

    names = [n for n in evaluations if n.startswith("blind_")]
    if not names:
        return None
    best = max(names, key=bound)
    return blind_warning(evaluations[best], threshold, name=best)
