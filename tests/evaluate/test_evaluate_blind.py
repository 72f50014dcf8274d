"""The model-free blind baseline: chance on a random split, near 1 on shifted data, out-of-fold scores."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from miakit.errors import MiakitError
from miakit.evaluate import BLIND_WARNING_PREFIX, AttackEvaluation, MetricValue, auroc, evaluate_scores
from miakit.evaluate.blind import BlindEnsemble, blind_bow_scores, blind_pipeline, blind_warning

WORDS = (
    "the of and to in is was for on that with as by at from king queen river stone field winter summer "
    "bread iron silver garden tower horse ship road night morning city village forest letter music doctor"
).split()


def corpus(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(10, 25))) for _ in range(n)]


def test_random_split_of_one_corpus_is_near_chance():
    texts = corpus(400, seed=0)
    labels = np.random.default_rng(1).permutation(np.r_[np.ones(200, dtype=int), np.zeros(200, dtype=int)])
    scores = blind_bow_scores(texts, labels)
    assert scores.shape == (400,) and np.all((scores >= 0) & (scores <= 1))
    assert auroc(labels, scores) < 0.65


def test_shifted_non_members_are_separated_and_warned():
    texts = corpus(300, seed=2)
    labels = np.r_[np.ones(150, dtype=int), np.zeros(150, dtype=int)]
    rng = np.random.default_rng(3)
    years = np.where(labels == 1, rng.integers(2015, 2020, 300), rng.integers(2023, 2026, 300))
    texts = [f"{t} in {year}" for t, year in zip(texts, years, strict=True)]
    scores = blind_bow_scores(texts, labels)
    ev = evaluate_scores(labels, scores, n_bootstrap=200)
    assert ev.metrics["auroc"].value > 0.9
    warning = blind_warning(ev)
    assert warning is not None and warning.startswith(BLIND_WARNING_PREFIX)
    assert "differ in distribution" in warning and "not evidence of membership" in warning
    assert f"{ev.metrics['auroc'].value:.3f}" in warning


def test_ensemble_sees_case_and_length_shifts_a_lowercasing_tfidf_misses():
    """Same words, members in lower case and non-members in Title Case (Multi-Web's caption shift)."""
    texts = corpus(200, seed=8)
    labels = np.r_[np.ones(100, dtype=int), np.zeros(100, dtype=int)]
    texts = [t if y == 1 else t.title() for t, y in zip(texts, labels, strict=True)]
    tfidf_only = BlindEnsemble()._views()["tfidf_logistic"]
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    lower = cross_val_predict(make_pipeline(*tfidf_only), texts, labels, cv=folds, method="predict_proba")[:, 1]
    assert auroc(labels, lower) < 0.65  # lower-cased features cannot see the shift
    assert auroc(labels, blind_bow_scores(texts, labels)) > 0.95


def test_each_view_and_the_stack_are_fitted():
    texts = corpus(60, seed=9)
    labels = np.r_[np.ones(30, dtype=int), np.zeros(30, dtype=int)]
    model = blind_pipeline(seed=1).fit(texts, labels)
    assert list(model.views_) == ["tfidf_logistic", "counts_bayes", "counts_forest"]
    assert model.stack_ is not None and model.stack_.coef_.shape == (1, 3)
    assert model.predict(texts).shape == (60,)


def test_scores_are_out_of_fold():
    """Distinct random texts with random labels: memorisable in-sample, but chance out-of-fold."""
    rng = np.random.default_rng(4)
    alphabet = list("abcdefghijklmnopqrstuvwxyz")
    texts = [" ".join("".join(rng.choice(alphabet, 5)) for _ in range(6)) for _ in range(200)]
    labels = rng.permutation(np.r_[np.ones(100, dtype=int), np.zeros(100, dtype=int)])
    in_sample = blind_pipeline().fit(texts, labels).predict_proba(texts)[:, 1]
    assert auroc(labels, in_sample) > 0.95  # the test has teeth: a leaky fit would look perfect
    assert auroc(labels, blind_bow_scores(texts, labels)) < 0.65


def test_deterministic_for_a_seed():
    texts = corpus(80, seed=5)
    labels = np.r_[np.ones(40, dtype=int), np.zeros(40, dtype=int)]
    a = blind_bow_scores(texts, labels, seed=3)
    b = blind_bow_scores(texts, labels, seed=3)
    c = blind_bow_scores(texts, labels, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_small_class_reduces_splits():
    texts = corpus(23, seed=6)
    labels = np.r_[np.ones(3, dtype=int), np.zeros(20, dtype=int)]
    scores = blind_bow_scores(texts, labels, n_splits=5)  # 5 folds impossible with 3 members
    assert scores.shape == (23,) and np.isfinite(scores).all()


@pytest.mark.parametrize("n_members", [0, 1])
def test_fewer_than_two_per_class_raises(n_members):
    texts = corpus(10, seed=7)
    labels = np.r_[np.ones(n_members, dtype=int), np.zeros(10 - n_members, dtype=int)]
    with pytest.raises(MiakitError, match="at least 2 members and 2 non-members"):
        blind_bow_scores(texts, labels)


def test_length_mismatch_raises():
    with pytest.raises(MiakitError, match="3 texts but 4 labels"):
        blind_bow_scores(["a b", "c d", "e f"], [0, 1, 0, 1])


def _evaluation(value, lo, hi) -> AttackEvaluation:
    metrics = {"auroc": MetricValue(value, lo, hi, True, "")}
    return AttackEvaluation(metrics, 10, 10, 0, 0, 0, 0)


def test_warning_uses_the_lower_ci_bound():
    assert blind_warning(_evaluation(0.62, 0.54, 0.70)) is None  # point above, CI touches chance
    assert blind_warning(_evaluation(0.62, 0.56, 0.70)) is not None
    assert "[0.560, 0.700]" in blind_warning(_evaluation(0.62, 0.56, 0.70))
    assert blind_warning(_evaluation(0.62, 0.56, 0.70), threshold=0.6) is None
    assert blind_warning(_evaluation(0.62, None, None)) is not None  # no CI: the point estimate decides
    assert blind_warning(_evaluation(None, None, None)) is None


def test_evaluate_never_imports_torch():
    code = "import sys, miakit.evaluate, miakit.report; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def _chunked_documents(seed: int) -> tuple[list[str], np.ndarray, list[str]]:
    """30 documents of 8 chunks, labels random per document, no shift: shared words plus 3 words peculiar to
    each document (a character's name, say), which carry its label only if its chunks are split across folds."""
    rng = np.random.default_rng(seed)
    texts, labels, groups = [], [], []
    doc_labels = rng.permutation(np.r_[np.ones(15, dtype=int), np.zeros(15, dtype=int)])
    for d, label in enumerate(doc_labels):
        own = [f"name{d}x{k}" for k in range(3)]
        for _ in range(8):
            texts.append(" ".join([*rng.choice(WORDS, 12), *own]))
            labels.append(label)
            groups.append(f"doc{d}")
    return texts, np.asarray(labels), groups


def test_chunks_of_one_document_stay_in_one_fold():
    from miakit.evaluate import blind_baselines

    texts, labels, groups = _chunked_documents(13)
    leaky = blind_baselines(texts, labels)
    assert auroc(labels, leaky["blind_ngram"]) > 0.9 and auroc(labels, leaky["blind_bow"]) > 0.9  # the trap
    grouped = blind_baselines(texts, labels, groups=groups)
    for name, scores in grouped.items():
        assert auroc(labels, scores) < 0.7, name


def test_group_folds_never_split_a_document_and_need_two_per_class():
    from miakit.evaluate.blind import fold_indices

    _, labels, groups = _chunked_documents(14)
    g = np.asarray(groups)
    for train, test in fold_indices(labels, 5, 0, groups):
        assert not set(g[train]) & set(g[test])
    with pytest.raises(MiakitError, match="2 member and 2 non-member documents"):
        fold_indices(np.array([1, 1, 0, 0]), 5, 0, ["a", "a", "b", "c"])


def test_shape_features_count_capitals_in_any_script():
    from miakit.evaluate.blind import _shape_features

    counts = np.expm1(_shape_features(["привет Мир", "łódź Łódź", "Hello World 12, ÉTÉ!"])).round()
    assert counts[:, 3].tolist() == [1, 1, 5] and counts[2, 4] == 2 and counts[2, 5] == 2
