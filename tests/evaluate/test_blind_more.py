"""Date and n-gram blind baselines: near chance on a random split, near 1 on a split with a temporal shift."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from miakit.evaluate import auroc, blind
from miakit.evaluate.blind_more import (
    blind_date_scores,
    blind_ngram_scores,
    select_ngrams,
    year_features,
)
from miakit.scenarios import load_bundled_passages


@pytest.fixture(scope="module")
def random_split():
    texts = [p["text"] for p in random.Random(5).sample(load_bundled_passages(), 300)]
    labels = np.array([i % 2 for i in range(300)])
    return texts, labels


@pytest.fixture(scope="module")
def shifted_split(random_split):
    """Non-members mention recent years, members older ones (a temporal split, as in WikiMIA)."""
    texts, labels = random_split
    rng = random.Random(1)
    shifted = [
        f"{t} Written in {rng.randint(1890, 1960) if y == 1 else rng.randint(2015, 2024)}."
        for t, y in zip(texts, labels, strict=True)
    ]
    return shifted, labels


@pytest.mark.parametrize("baseline", [blind_date_scores, blind_ngram_scores])
def test_near_chance_on_a_random_split(baseline, random_split):
    texts, labels = random_split
    value = auroc(labels, baseline(texts, labels, seed=0))
    assert 0.38 < value < 0.62, value


@pytest.mark.parametrize(("baseline", "bound"), [(blind_date_scores, 0.97), (blind_ngram_scores, 0.8)])
def test_near_one_with_a_temporal_shift(baseline, bound, shifted_split):
    texts, labels = shifted_split
    value = auroc(labels, baseline(texts, labels, seed=0))
    assert value > bound, value


def test_year_features():
    x = year_features(["In 1850 and 1999 it rained.", "No year, just 12 or 123456.", "2020"])
    np.testing.assert_array_equal(x[0], [1, 1999, 1850, 1924.5, 2])
    np.testing.assert_array_equal(x[1], [0, 0, 0, 0, 0])
    assert x[2][1] == 2020


def test_greedy_selection_covers_members_with_member_only_ngrams():
    #            a  b  c  d
    present = np.array(
        [
            [1, 0, 1, 0],  # member
            [1, 1, 0, 0],  # member
            [0, 1, 0, 1],  # member
            [0, 0, 1, 1],  # non-member
            [0, 0, 0, 1],  # non-member
        ]
    )
    y = np.array([1, 1, 1, 0, 0])
    chosen = select_ngrams(present, y, max_rate=0.0)
    assert list(chosen) == [0, 1]  # 'a' covers two members, then 'b' the third; c and d occur in non-members


def test_blind_command_writes_a_run_and_warns_on_a_shift(shifted_split, tmp_path, capsys):
    from test_cli import run_cli

    texts, labels = shifted_split
    data = tmp_path / "data.jsonl"
    rows = [{"text": t, "label": int(y)} for t, y in zip(texts, labels, strict=True)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "run"
    assert run_cli("blind", data, "--out", out, "--bootstrap", "100") == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["attacks"]) == {"blind_bow", "blind_date", "blind_ngram"}
    assert all(d["kind"] == "baseline" for d in results["details"].values())
    assert results["warnings"] and results["warnings"][0].startswith("Blind baseline:")
    assert "blind_date" in results["warnings"][0] or "blind_bow" in results["warnings"][0]
    for name in ("scores.csv", "manifest.json", "roc.png", "report.html"):
        assert (out / name).is_file()


def test_character_markers_catch_an_encoding_shift_word_ngrams_miss():
    """Members write "king's", non-members "king’s" (a typographic apostrophe, as in scraped captions): the
    word tokens are identical, only character n-grams see the difference."""
    rng = np.random.default_rng(11)
    words = "king queen river stone field winter summer bread iron silver garden tower horse ship".split()
    labels = np.r_[np.ones(100, dtype=int), np.zeros(100, dtype=int)]
    mark = {1: "'", 0: "\u2019"}
    texts = [" ".join(f"{w}{mark[y]}s" if rng.random() < 0.3 else w for w in rng.choice(words, 12)) for y in labels]
    assert auroc(labels, blind_ngram_scores(texts, labels)) > 0.9
    long_texts = [t + " " + "x" * (blind.CHAR_NGRAMS_UP_TO_CHARS + 1) for t in texts]  # words only
    assert auroc(labels, blind_ngram_scores(long_texts, labels)) < 0.65


def test_counting_once_equals_a_vocabulary_fitted_per_training_fold():
    """The shared count matrix, cut to the n-grams in >= 2 training texts, gives the scores of vectorisers
    fitted on each training fold alone (the plain out-of-fold procedure, written out here)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import FeatureUnion

    rng = np.random.default_rng(12)
    texts = [p["text"] for p in load_bundled_passages(160)]
    labels = np.r_[np.ones(80, dtype=int), np.zeros(80, dtype=int)]
    texts = [t + (" Anno 1611" if y and rng.random() < 0.4 else "") for t, y in zip(texts, labels, strict=True)]
    expected = np.zeros(len(texts))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(texts, labels):
        union = FeatureUnion(
            [
                ("words", CountVectorizer(ngram_range=(1, 3), binary=True, min_df=2, lowercase=False)),
                ("chars", CountVectorizer(analyzer="char", ngram_range=(1, 5), binary=True, min_df=2, lowercase=False)),
            ]
        )
        train_x = union.fit_transform([texts[i] for i in train])
        test_x = union.transform([texts[i] for i in test])
        hits = test_x[:, select_ngrams(train_x, labels[train])].sum(axis=1)
        misses = test_x[:, select_ngrams(train_x, 1 - labels[train])].sum(axis=1)
        expected[test] = np.asarray(hits - misses).ravel()
    np.testing.assert_array_equal(blind_ngram_scores(texts, labels), expected)


def test_texts_without_words_still_get_character_markers():
    texts = ["a q", "b q"] * 6  # no token of 2+ characters: the word vocabulary is empty
    labels = np.array([1, 0] * 6)
    assert auroc(labels, blind_ngram_scores(texts, labels)) == 1.0
