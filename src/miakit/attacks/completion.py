"""Verbatim completion: does the target continue a text's first half with its true second half, word for word?

Carlini et al. (USENIX Security 2021, "Extracting Training Data from Large Language Models") verify extracted
text by greedy continuation, and Carlini et al. (ICLR 2023, "Quantifying Memorization Across Neural Language
Models") call a training sequence extractable when greedy decoding from its 50-token prefix reproduces its next 50
tokens exactly. As membership scores: ``verbatim_match`` is the share of the true continuation (its first
``suffix_words`` words) that the greedy continuation reproduces before its first mistake, and ``verbatim_rouge_l``
the ROUGE-L F-measure between the two, the greedy continuation cut to as many words as the truth compared (a
model that reproduces a short text and then goes on writing is not penalised for going on).

Words, not tokens: with generated text alone (``Capability.GENERATION``) the attack cannot tokenise the true
continuation with the target's tokenizer (the engine offers token counts, not token ids, without log-probs), so
both sides are compared as whitespace words (exact match: case and punctuation kept, a verbatim copy) or as
``rouge-score`` tokens (ROUGE-L). The 50-token windows become 50 words, and ``max_new_tokens`` 100 leaves room for
them (English BPE text runs about 1.3 tokens per word). Both attacks send the same greedy request, so running both
generates once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from miakit.attacks.base import check_count
from miakit.attacks.registry import register
from miakit.attacks.sampling import PrefixGenerationAttack
from miakit.attacks.text_overlap import common_prefix_length, rouge_l, rouge_tokens, words
from miakit.data import Sample
from miakit.signals import GenerationRequest

_PAPER = (
    "Carlini et al., USENIX Security 2021 (Extracting Training Data from Large Language Models, arXiv 2012.07805); "
    "Carlini et al., ICLR 2023 (Quantifying Memorization Across Neural Language Models, arXiv 2202.07646)"
)


class _Verbatim(PrefixGenerationAttack):
    family = "verbatim completion"
    paper = _PAPER
    cite = "Carlini et al. 2021, 2023"
    tiny_world_params: ClassVar[dict[str, Any]] = {"max_new_tokens": 48}

    def __init__(self, prefix_ratio: float = 0.5, suffix_words: int = 50, max_new_tokens: int = 100) -> None:
        self.prefix_ratio = prefix_ratio
        self.suffix_words = suffix_words
        self.max_new_tokens = max_new_tokens

    def check_params(self) -> None:
        check_count(self, "suffix_words")
        self.check_common()

    def request(self, prompt: str) -> GenerationRequest:
        return GenerationRequest(prompt, n=1, temperature=0.0, max_new_tokens=self.new_tokens())

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        return [self.request(cut[0]) for s in samples if (cut := self.split(s.text)) is not None]

    def compare(self, continuation: list[str], truth: list[str]) -> float:
        """The score of a continuation's first words against the true continuation's first words (the truth at
        most ``suffix_words`` long and not empty, the continuation at most as long as the truth)."""
        raise NotImplementedError

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        out = np.full(len(samples), np.nan)
        for i, s in enumerate(samples):
            cut = self.split(s.text)
            if cut is None:
                continue
            truth = cut[1][: self.suffix_words]
            out[i] = self.compare(words(signals[self.request(cut[0])].texts[0])[: len(truth)], truth)
        return out

    def _plain_parts(self, sample: Sample, signals: Mapping[Any, Any]) -> tuple[list[str], list[str]] | None:
        """(continuation words, true words): the truth cut to ``suffix_words``, the continuation to the truth's
        length, found without the shared helpers."""
        spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", sample.text)]
        k = math.floor(len(spans) * self.prefix_ratio)
        if not 0 < k < len(spans):
            return None
        prompt = sample.text[: spans[k - 1][1]]
        truth = [sample.text[a:b] for a, b in spans[k:]][: self.suffix_words]
        text = signals[GenerationRequest(prompt, 1, 0.0, 0, 1.0, self.new_tokens())].texts[0]
        return re.findall(r"\S+", text)[: len(truth)], truth


@register("verbatim_match")
class VerbatimMatch(_Verbatim):
    """s = k / m: the greedy continuation of the text's first half repeats its next m = min(``suffix_words``,
    remaining) words exactly up to word k (its first mistake); 1 means the continuation is extractable in Carlini
    et al.'s (2023) sense, in words."""

    summary = "share of the true continuation's first words the greedy continuation reproduces verbatim"
    table_score = (
        "share of the next ≤ {suffix_words} words reproduced verbatim (up to the first mistake) by the greedy "
        "continuation of the first half"
    )

    def compare(self, continuation: list[str], truth: list[str]) -> float:
        return common_prefix_length(continuation, truth) / len(truth)

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        parts = self._plain_parts(sample, signals)
        if parts is None:
            return math.nan
        continuation, truth = parts
        matched = 0
        while matched < min(len(continuation), len(truth)) and continuation[matched] == truth[matched]:
            matched += 1
        return matched / len(truth)


@register("verbatim_rouge_l")
class VerbatimRougeL(_Verbatim):
    """s = ROUGE-L F-measure between the greedy continuation of the text's first half and its true continuation,
    both cut to ``suffix_words`` words and tokenised as ``rouge-score`` does (lower case, alphanumeric runs)."""

    summary = "ROUGE-L F-measure of the greedy continuation of the first half against the true second half"
    table_score = "ROUGE-L F of the greedy continuation of the first half against the true next ≤ {suffix_words} words"

    def compare(self, continuation: list[str], truth: list[str]) -> float:
        return rouge_l(rouge_tokens(" ".join(truth)), rouge_tokens(" ".join(continuation))).fmeasure

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        parts = self._plain_parts(sample, signals)
        if parts is None:
            return math.nan
        prediction, target = (re.findall(r"[a-z0-9]+", " ".join(side).lower()) for side in parts)
        if not prediction or not target:
            return 0.0
        table = [[0] * (len(prediction) + 1) for _ in range(len(target) + 1)]
        for i in range(1, len(target) + 1):
            for j in range(1, len(prediction) + 1):
                if target[i - 1] == prediction[j - 1]:
                    table[i][j] = table[i - 1][j - 1] + 1
                else:
                    table[i][j] = max(table[i - 1][j], table[i][j - 1])
        common = table[-1][-1]
        if common == 0:
            return 0.0
        precision, recall = common / len(prediction), common / len(target)
        return 2 * precision * recall / (precision + recall)
