"""Attacks on the shape of the next-token distribution: SURP and MaxRényi-K%."""

from __future__ import annotations

import numpy as np

from miakit.attacks.base import TokenStatsAttack, lowest_count, register
from miakit.data import Sample
from miakit.signals import TokenStats
from miakit.targets.capability import Capability

RENYI_ORDERS = (0.5, 1.0, 2.0, float("inf"))


@register("surp")
class Surp(TokenStatsAttack):
    """Mean log-prob of surprising tokens: among the lowest k% log-probs, those whose entropy < tau.

    As in the reference code (mia_llms_benchmark), the k% count is taken first, then filtered by entropy.
    When no token qualifies the score is -inf (the reference uses -100): ranked as least member-like.
    """

    family = "distribution statistic"
    requires = frozenset({Capability.FULL_LOGITS})
    paper = "Zhang & Wu 2024, arXiv 2407.21248"
    summary = "mean log-prob of low-probability tokens the model was confident about (entropy < tau)"

    def __init__(self, k: float = 0.4, tau: float = 2.0) -> None:
        self.k = k
        self.tau = tau

    def statistic(self, stats: TokenStats, sample: Sample) -> float:
        m = lowest_count(len(stats), self.k)
        lowest = np.argsort(stats.logprob, kind="stable")[:m]
        chosen = lowest[stats.entropy[lowest] < self.tau]
        if chosen.size == 0:
            return float("-inf")
        return float(np.mean(stats.logprob[chosen].astype(np.float64)))


@register("max_renyi")
class MaxRenyi(TokenStatsAttack):
    """Minus the mean of the largest k% Rényi entropies of order alpha (k = 0 means the single maximum)."""

    family = "distribution statistic"
    requires = frozenset({Capability.FULL_LOGITS})
    paper = "Li Z. et al., NeurIPS 2024, arXiv 2411.02902"
    summary = "-(mean of the largest k% Rényi entropies), alpha in {0.5, 1, 2, inf}"

    def __init__(self, alpha: float = 0.5, k: float = 0.1) -> None:
        if float(alpha) not in RENYI_ORDERS:
            raise ValueError(f"alpha must be one of 0.5, 1, 2, inf; got {alpha}")
        if not 0 <= float(k) <= 1:
            raise ValueError(f"k must be in [0, 1], got {k}")
        self.alpha = alpha
        self.k = k

    def statistic(self, stats: TokenStats, sample: Sample) -> float:
        h = np.sort(stats.entropy_alpha(self.alpha).astype(np.float64))
        m = lowest_count(len(stats), self.k)
        return -float(np.mean(h[-m:]))
