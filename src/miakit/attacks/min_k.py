"""Tail statistics of token log-probabilities: Min-K%, Max-K%, Min-K%++."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from miakit.attacks.approx import DEFAULT_TOPK, TopKApproximable
from miakit.attacks.base import TokenStatsAttack, check_fraction, lowest_count, plain_logprobs, plain_mean
from miakit.attacks.registry import register
from miakit.data import Sample
from miakit.signals import TokenStats, TokenStatsRequest


def _count(n: int, k: float) -> int:
    """max(1, floor(k n)), written out for the reference scores."""
    return max(1, math.floor(k * n))


@register("min_k")
class MinK(TokenStatsAttack):
    family = "likelihood"
    paper = "Shi et al., ICLR 2024, arXiv 2310.16789"
    summary = "mean of the lowest k% token log-probs"
    table_score = "mean of the lowest k% token log-probs (k = {k})"
    cite = "Shi et al., ICLR 2024"
    order = 3

    def __init__(self, k: float = 0.2) -> None:
        self.k = k

    def check_params(self) -> None:
        check_fraction(self, "k")

    def statistic(self, stats: TokenStats, sample: Sample) -> float:
        m = lowest_count(len(stats), self.k)
        return float(np.mean(np.sort(stats.logprob.astype(np.float64))[:m]))

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        values = sorted(plain_logprobs(signals[TokenStatsRequest(sample.text)]))
        return plain_mean(values[: _count(len(values), self.k)]) if values else math.nan


@register("max_k")
class MaxK(TokenStatsAttack):
    family = "likelihood"
    paper = "Maini et al., NeurIPS 2024 (LLM Dataset Inference), arXiv 2406.06443"
    summary = "mean of the highest k% token log-probs"
    table_score = "mean of the highest k% token log-probs (k = {k})"
    cite = "Maini et al. 2024"
    order = 4

    def __init__(self, k: float = 0.2) -> None:
        self.k = k

    def check_params(self) -> None:
        check_fraction(self, "k")

    def statistic(self, stats: TokenStats, sample: Sample) -> float:
        m = lowest_count(len(stats), self.k)
        return float(np.mean(np.sort(stats.logprob.astype(np.float64))[-m:]))

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        values = sorted(plain_logprobs(signals[TokenStatsRequest(sample.text)]), reverse=True)
        return plain_mean(values[: _count(len(values), self.k)]) if values else math.nan


@register("min_k_pp")
class MinKPlusPlus(TopKApproximable):
    family = "distribution statistic"
    paper = "Zhang J. et al., ICLR 2025, arXiv 2404.02936"
    summary = "mean of the lowest k% of (log p - mu) / sigma"
    table_score = "mean of the lowest k% of (log p − μ)/σ (k = {k})"
    cite = "Zhang J. et al., ICLR 2025"
    order = 5

    def __init__(self, k: float = 0.2, approx: str = "full", topk: int = DEFAULT_TOPK) -> None:
        self.k = k
        self.approx = approx
        self.topk = topk

    def check_params(self) -> None:
        check_fraction(self, "k")
        self.check_approx()

    def statistic(self, stats: TokenStats, sample: Sample) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (stats.logprob.astype(np.float64) - stats.mu) / stats.sigma.astype(np.float64)
        m = lowest_count(len(stats), self.k)
        return float(np.mean(np.sort(z)[:m]))

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        stats = signals[self.stats_request(sample.text)]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = sorted(
                float((np.float64(lp) - np.float64(mu)) / np.float64(sd))
                for lp, mu, sd in zip(stats.logprob, stats.mu, stats.sigma, strict=True)
            )
        return plain_mean(z[: _count(len(z), self.k)]) if z else math.nan
