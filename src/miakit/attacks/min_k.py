"""Tail statistics of token log-probabilities: Min-K%, Max-K%, Min-K%++."""

from __future__ import annotations

import numpy as np

from miakit.attacks.base import TokenStatsAttack, lowest_count, register
from miakit.data import Sample
from miakit.signals import TokenStats
from miakit.targets.capability import Capability


def _check_k(k: float) -> float:
    if not 0 < float(k) <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    return k


@register("min_k")
class MinK(TokenStatsAttack):
    family = "likelihood"
    paper = "Shi et al., ICLR 2024, arXiv 2310.16789"
    summary = "mean of the lowest k% token log-probs"

    def __init__(self, k: float = 0.2) -> None:
        self.k = _check_k(k)

    def statistic(self, stats: TokenStats, sample: Sample) -> float:
        m = lowest_count(len(stats), self.k)
        return float(np.mean(np.sort(stats.logprob.astype(np.float64))[:m]))


@register("max_k")
class MaxK(TokenStatsAttack):
    family = "likelihood"
    paper = "Maini et al., NeurIPS 2024 (LLM Dataset Inference), arXiv 2406.06443"
    summary = "mean of the highest k% token log-probs"

    def __init__(self, k: float = 0.2) -> None:
        self.k = _check_k(k)

    def statistic(self, stats: TokenStats, sample: Sample) -> float:
        m = lowest_count(len(stats), self.k)
        return float(np.mean(np.sort(stats.logprob.astype(np.float64))[-m:]))


@register("min_k_pp")
class MinKPlusPlus(TokenStatsAttack):
    family = "distribution statistic"
    requires = frozenset({Capability.FULL_LOGITS})
    paper = "Zhang J. et al., ICLR 2025, arXiv 2404.02936"
    summary = "mean of the lowest k% of (log p - mu) / sigma"

    def __init__(self, k: float = 0.2) -> None:
        self.k = _check_k(k)

    def statistic(self, stats: TokenStats, sample: Sample) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (stats.logprob.astype(np.float64) - stats.mu) / stats.sigma.astype(np.float64)
        m = lowest_count(len(stats), self.k)
        return float(np.mean(np.sort(z)[:m]))
