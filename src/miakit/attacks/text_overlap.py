"""Text overlap for black-box attacks: word splits, ROUGE-N and ROUGE-L, and edit distance over sequences.

ROUGE follows the ``rouge-score`` package (Google Research's reimplementation of Lin 2004): ``rouge_tokens``
lower-cases the text, replaces every run of characters other than ``a-z0-9`` with a space and splits (no stemming:
the attacks here compare a model's own continuations with the true text, where stemming would only merge
inflections the model got wrong); ROUGE-N counts clipped n-gram matches, ROUGE-L the longest common subsequence;
precision is over the prediction's tokens, recall over the target's, F their harmonic mean, and an empty side
gives zeros. Every function takes token sequences, so the same code serves whitespace words (SaMIA's reference
code) and ROUGE tokens. No attack here is registered: this module only holds the shared text arithmetic.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import NamedTuple

_NON_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")


class Overlap(NamedTuple):
    """Precision (over the prediction), recall (over the target) and their F-measure, as ``rouge-score``'s Score."""

    precision: float
    recall: float
    fmeasure: float


def words(text: str) -> list[str]:
    """Whitespace-separated words, case and punctuation kept (``str.split()``)."""
    return text.split()


def rouge_tokens(text: str) -> list[str]:
    """``rouge-score``'s default tokenisation without stemming: lower-case, non-``[a-z0-9]`` runs become spaces,
    split on spaces (so non-ASCII letters are dropped, as there)."""
    return _NON_ALPHANUMERIC.sub(" ", text.lower()).split()


def split_at_word(text: str, ratio: float) -> tuple[str, list[str]] | None:
    """The text cut after its first ``int(n * ratio)`` whitespace words (n words in all): the prefix as it stands
    in the text (its own spacing, no trailing space) and the remaining words. None when either side would be
    empty: such a text has no prompt or nothing left to compare, and is unscorable."""
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    k = int(len(spans) * ratio)
    if k < 1 or k >= len(spans):
        return None
    return text[: spans[k - 1][1]], [text[a:b] for a, b in spans[k:]]


def _fmeasure(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def ngram_counts(tokens: Sequence[Hashable], n: int) -> Counter:
    """Occurrences of every n-gram (a tuple of n tokens) of ``tokens``."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def rouge_n(target: Sequence[Hashable], prediction: Sequence[Hashable], n: int = 1) -> Overlap:
    """ROUGE-N of ``prediction`` against ``target``: clipped n-gram matches over the prediction's n-grams
    (precision) and the target's (recall); zeros when either side has no n-gram."""
    want, got = ngram_counts(target, n), ngram_counts(prediction, n)
    matched = sum((want & got).values())
    precision = matched / max(sum(got.values()), 1)
    recall = matched / max(sum(want.values()), 1)
    return Overlap(precision, recall, _fmeasure(precision, recall))


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Length of the longest common subsequence of ``a`` and ``b`` (O(len a * len b) time, O(len b) memory)."""
    if not a or not b:
        return 0
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0  # row[j - 1] of the previous row
        for j, y in enumerate(b, start=1):
            above = row[j]
            row[j] = diagonal + 1 if x == y else max(above, row[j - 1])
            diagonal = above
    return row[-1]


def rouge_l(target: Sequence[Hashable], prediction: Sequence[Hashable]) -> Overlap:
    """ROUGE-L of ``prediction`` against ``target``: LCS length over each side's length; zeros when either is
    empty."""
    if not target or not prediction:
        return Overlap(0.0, 0.0, 0.0)
    common = lcs_length(target, prediction)
    precision, recall = common / len(prediction), common / len(target)
    return Overlap(precision, recall, _fmeasure(precision, recall))


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Levenshtein distance between two sequences (unit-cost insertions, deletions and substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def common_prefix_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """How many leading items ``a`` and ``b`` share before their first difference."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
