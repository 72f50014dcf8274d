"""The text arithmetic of the black-box attacks against ``rouge-score`` and a plain edit distance."""

from __future__ import annotations

import random

import pytest
from rouge_score import rouge_scorer, tokenize

from miakit.attacks.text_overlap import (
    common_prefix_length,
    edit_distance,
    lcs_length,
    rouge_l,
    rouge_n,
    rouge_tokens,
    split_at_word,
    words,
)

EDGE_TEXTS = [
    "",
    " ",
    "\n\t ",
    "...",
    "!!! ??? ,,,",
    "a",
    "A",
    "the the the",
    "The cat sat on the mat.",
    "the mat sat on the cat",
    "Über naïve café — ÉCOLE 42",
    "日本語のテキスト",
    "emoji 🙂 between 🙂 words",
    "don't stop-believing; it's 2024!",
    "tabs\tand\nnewlines\r\nmixed",
    "CamelCase snake_case kebab-case",
    "İstanbul ǅemal ﬁnance",  # lower() changes length / ligatures
    "x" * 30,
    "1 2 3 4 5 6 7 8 9 10",
]
VOCAB = ["the", "The", "cat", "a", "mat", "sat", "on", "é", "42", "x-y", "don't", ",", ".", "🙂", "日本", "\n", "  "]


def random_text(rng: random.Random) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(rng.randint(0, 14)))


def text_pairs() -> list[tuple[str, str]]:
    rng = random.Random(7)
    pairs = [(a, b) for a in EDGE_TEXTS for b in EDGE_TEXTS[::3]]
    pairs += [(random_text(rng), random_text(rng)) for _ in range(400)]
    return pairs


class SpaceTokenizer:
    """A rouge-score tokenizer that splits on whitespace and keeps case and punctuation (SaMIA's words)."""

    def tokenize(self, text):
        return text.split()


def test_rouge_tokens_are_rouge_scores_default_tokens():
    for target, prediction in text_pairs():
        for text in (target, prediction):
            assert rouge_tokens(text) == tokenize.tokenize(text, None)


@pytest.mark.parametrize("tokenizer", [None, SpaceTokenizer()], ids=["rouge-tokens", "whitespace-words"])
def test_rouge_1_2_and_l_equal_rouge_score(tokenizer):
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False, tokenizer=tokenizer)
    tokens = rouge_tokens if tokenizer is None else words
    for target, prediction in text_pairs():
        want = scorer.score(target, prediction)
        t, p = tokens(target), tokens(prediction)
        for got, key in ((rouge_n(t, p, 1), "rouge1"), (rouge_n(t, p, 2), "rouge2"), (rouge_l(t, p), "rougeL")):
            assert tuple(got) == pytest.approx(tuple(want[key]), abs=1e-12), (key, target, prediction)


def test_rouge_hand_checked():
    target, prediction = "the cat sat on the mat".split(), "the cat the the".split()
    # clipped unigram matches: the x2, cat x1 -> 3; precision 3/4, recall 3/6
    assert rouge_n(target, prediction) == pytest.approx((0.75, 0.5, 0.6))
    # LCS "the cat the": 3
    assert lcs_length(target, prediction) == 3
    assert rouge_l(target, prediction) == pytest.approx((0.75, 0.5, 0.6))
    assert tuple(rouge_l([], ["a"])) == (0.0, 0.0, 0.0) and tuple(rouge_n(["a"], [])) == (0.0, 0.0, 0.0)


def plain_levenshtein(a, b) -> int:
    """The textbook (len a + 1) x (len b + 1) table."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1][-1]


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("", "", 0),
        ("", "abc", 3),
        ("abc", "", 3),
        ("kitten", "sitting", 3),
        ("flaw", "lawn", 2),
        ("intention", "execution", 5),
        ("abc", "abc", 0),
        ("ab", "ba", 2),  # no transpositions: two substitutions
        ("日本語", "日本", 1),
        ((1, 2, 3, 4), (1, 3, 4, 5), 2),  # token ids
        ([7] * 5, [8] * 3, 5),
    ],
)
def test_edit_distance_hand_checked(a, b, distance):
    assert edit_distance(a, b) == distance == plain_levenshtein(a, b)
    assert edit_distance(b, a) == distance


def test_edit_distance_equals_the_plain_table_on_random_sequences():
    rng = random.Random(3)
    for _ in range(500):
        alphabet = rng.randint(1, 6)
        a = [rng.randrange(alphabet) for _ in range(rng.randint(0, 25))]
        b = [rng.randrange(alphabet) for _ in range(rng.randint(0, 25))]
        assert edit_distance(a, b) == plain_levenshtein(a, b)


def test_split_at_word_keeps_the_prefix_as_written():
    assert split_at_word("one two  three\nfour", 0.5) == ("one two", ["three", "four"])
    assert split_at_word("  lead one two three", 0.5) == ("  lead one", ["two", "three"])
    assert split_at_word("a b c d e", 0.5) == ("a b", ["c", "d", "e"])  # int(5 * 0.5) = 2, as SaMIA's get_prefix
    assert split_at_word("only", 0.5) is None  # no prompt
    assert split_at_word("", 0.5) is None
    assert split_at_word("a b", 0.3) is None  # int(2 * 0.3) = 0 words of prompt
    assert split_at_word("a b", 0.99) == ("a", ["b"])  # a ratio below 1 always leaves a word
    for text in EDGE_TEXTS:
        cut = split_at_word(text, 0.5)
        if cut is not None:
            k = int(len(text.split()) * 0.5)
            assert cut[0].split() == text.split()[:k] and cut[1] == text.split()[k:]
            assert text.startswith(cut[0])


def test_common_prefix_length():
    assert common_prefix_length("abcd", "abxd") == 2
    assert common_prefix_length([], [1]) == 0
    assert common_prefix_length([1, 2], [1, 2, 3]) == 2
