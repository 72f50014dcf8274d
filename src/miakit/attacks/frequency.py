"""Frequency-calibrated attack: DC-PDD (Zhang W. et al., EMNLP 2024)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from miakit.attacks.base import Attack, plain_mean, require
from miakit.attacks.registry import register
from miakit.data import Sample
from miakit.signals import TokenCountsRequest, TokenStatsRequest
from miakit.targets.capability import Capability


def smoothed_frequencies(counts: np.ndarray) -> np.ndarray:
    """Laplace-smoothed token frequencies f(v) = (1 + c(v)) / (N + |V|)."""
    counts = np.asarray(counts, dtype=np.float64)
    return (1.0 + counts) / (counts.sum() + counts.size)


def first_occurrences(token_ids: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct token id, in text order."""
    _, first = np.unique(token_ids, return_index=True)
    return np.sort(first)


@register("dc_pdd")
class DCPDD(Attack):
    """Mean over first occurrences of min(a, p(x_t) * log(1 / f(x_t))), f from a reference corpus.

    ``corpus`` is a text file (.txt, .jsonl[.gz], .csv, .parquet); None uses the bundled public-domain corpus.
    """

    family = "calibrated likelihood"
    requires = frozenset({Capability.TOPK_LOGPROBS})
    paper = "Zhang W. et al., EMNLP 2024, arXiv 2409.14781"
    summary = "token probability calibrated by corpus frequency, clipped at a, over first occurrences"
    table_score = "mean over first occurrences of min(a, p · log 1/f), f from a reference corpus (a = {a})"
    cite = "Zhang W. et al., EMNLP 2024"
    order = 8

    def __init__(self, a: float = 0.01, corpus: str | None = None) -> None:
        self.a = a
        self.corpus = corpus

    def check_params(self) -> None:
        require(self, isinstance(self.a, (int, float)) and self.a > 0, f"a must be positive, got {self.a}")
        if self.corpus is not None:
            require(self, Path(self.corpus).is_file(), f"the reference corpus '{self.corpus}' is not a file")

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        return [TokenCountsRequest(self.corpus), *(TokenStatsRequest(s.text) for s in samples)]

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        counts = np.asarray(signals[TokenCountsRequest(self.corpus)])
        top = max((int(signals[TokenStatsRequest(s.text)].token_ids.max(initial=-1)) for s in samples), default=-1)
        if top >= counts.size:  # a server's tokenizer: its vocabulary ends past the largest id the corpus held
            counts = np.concatenate([counts, np.zeros(top + 1 - counts.size, dtype=counts.dtype)])
        freq = smoothed_frequencies(counts)
        out = np.empty(len(samples))
        for i, s in enumerate(samples):
            stats = signals[TokenStatsRequest(s.text)]
            if not len(stats):
                out[i] = np.nan
                continue
            idx = first_occurrences(stats.token_ids)
            prob = np.exp(stats.logprob[idx].astype(np.float64))
            calibrated = prob * -np.log(freq[stats.token_ids[idx]])
            out[i] = float(np.mean(np.minimum(calibrated, self.a)))
        return out

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        counts = [float(c) for c in signals[TokenCountsRequest(self.corpus)]]
        total, vocab = math.fsum(counts), len(counts)
        stats = signals[TokenStatsRequest(sample.text)]
        seen, values = set(), []
        for token, lp in zip(stats.token_ids.tolist(), stats.logprob.tolist(), strict=True):
            if token not in seen:
                seen.add(token)
                frequency = (1.0 + counts[token]) / (total + vocab)
                values.append(min(self.a, math.exp(lp) * math.log(1.0 / frequency)))
        return plain_mean(values)
