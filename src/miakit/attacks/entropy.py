"""Attacks on the shape of the next-token distribution: SURP and MaxRényi-K%."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from miakit.attacks.approx import DEFAULT_TOPK, TopKApproximable
from miakit.attacks.base import (
    Attack,
    check_fraction,
    format_value,
    lowest_count,
    plain_mean,
    require,
)
from miakit.attacks.registry import register
from miakit.data import Sample
from miakit.signals import TokenStats

RENYI_ORDERS = (0.5, 1.0, 2.0, float("inf"))
TAU_SUGGESTIONS = (4.0, 6.0, 8.0)  # larger SURP thresholds a hint may suggest (the first not already in use)


@register("surp")
class Surp(TopKApproximable):
    """Mean log-prob of surprising tokens: among the lowest k% log-probs, those whose entropy < tau.

    As in the reference code (mia_llms_benchmark), the k% count is taken first, then filtered by entropy.
    When no token qualifies the score is -inf (the reference uses -100): ranked as least member-like.
    """

    family = "distribution statistic"
    paper = "Zhang & Wu 2024, arXiv 2407.21248"
    summary = "mean log-prob of low-probability tokens the model was confident about (entropy < tau)"
    table_score = "mean log-prob of the lowest k% tokens whose entropy < τ (k = {k}, τ = {tau}); −inf when none"
    cite = "Zhang & Wu 2024"
    order = 6
    # The tiny model's next-token entropy rarely falls below ~3 nats (median ~5.4), so tau = 2 (chosen for
    # billion-parameter models) selects nothing there.
    tiny_world_params: ClassVar[dict[str, Any]] = {"tau": 6.0}

    def __init__(self, k: float = 0.4, tau: float = 2.0, approx: str = "full", topk: int = DEFAULT_TOPK) -> None:
        self.k = k
        self.tau = tau
        self.approx = approx
        self.topk = topk

    def check_params(self) -> None:
        check_fraction(self, "k")
        self.check_approx()
        require(self, isinstance(self.tau, (int, float)) and self.tau > 0, f"tau must be positive, got {self.tau}")

    def statistic(self, stats: TokenStats, sample: Sample) -> float:
        m = lowest_count(len(stats), self.k)
        lowest = np.argsort(stats.logprob, kind="stable")[:m]
        chosen = lowest[stats.entropy[lowest] < self.tau]
        if chosen.size == 0:
            return float("-inf")
        return float(np.mean(stats.logprob[chosen].astype(np.float64)))

    def score_hint(self, scores: np.ndarray, peers: Sequence[Attack] = ()) -> str | None:
        """How many samples had no qualifying token (scored -inf), and a larger tau not already in the run."""
        n = int(np.isneginf(scores).sum())
        if not n:
            return None
        hint = (
            f"{n} of {len(scores)} samples have no token with entropy < tau = {self.tau} among their "
            f"lowest {self.k:.0%} log-probs: scored -inf (ranked least member-like)"
        )
        if n == len(scores):
            hint += "; the column carries no information"
        in_use = {float(a.tau) for a in (self, *peers) if isinstance(a, Surp)}
        larger = next((t for t in TAU_SUGGESTIONS if t > self.tau and t not in in_use), None)
        if larger is not None:
            hint += f"; small models rarely go below 2 nats, try surp[tau={format_value(larger)}]"
        return hint + "."

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        stats = signals[self.stats_request(sample.text)]
        lp, entropy = [float(x) for x in stats.logprob], [float(x) for x in stats.entropy]
        if not lp:
            return math.nan
        lowest = sorted(range(len(lp)), key=lambda j: lp[j])[: max(1, math.floor(self.k * len(lp)))]
        chosen = [lp[j] for j in lowest if entropy[j] < self.tau]
        return plain_mean(chosen) if chosen else -math.inf


@register("max_renyi")
class MaxRenyi(TopKApproximable):
    """Minus the mean of the largest k% Rényi entropies of order alpha (k = 0 means the single maximum)."""

    family = "distribution statistic"
    paper = "Li Z. et al., NeurIPS 2024, arXiv 2411.02902"
    summary = "-(mean of the largest k% Rényi entropies), alpha in {0.5, 1, 2, inf}"
    table_score = "−mean of the largest k% Rényi entropies (α ∈ {0.5, 1, 2, ∞}, k = {k})"
    cite = "Li Z. et al., NeurIPS 2024"
    order = 7
    default_sweep = "alpha=0.5,1,2,inf"
    tags: ClassVar[dict[str, str]] = {
        "weak_on_tiny_models": (
            "on the trained 2-layer model the positions of highest next-token entropy do not separate members "
            "(measured AUROC 0.53 at alpha = 0.5, k = 10%, below the permutation threshold 0.62: training a tiny "
            "model raises the entropy where it raises a rare token's probability); orientation is pinned on the "
            "planted-memorisation target (AUROC 1.0)"
        )
    }

    def __init__(self, alpha: float = 0.5, k: float = 0.1, approx: str = "full", topk: int = DEFAULT_TOPK) -> None:
        self.alpha = alpha
        self.k = k
        self.approx = approx
        self.topk = topk

    def check_params(self) -> None:
        self.check_approx()
        ok = isinstance(self.alpha, (int, float)) and float(self.alpha) in RENYI_ORDERS
        require(self, ok, f"alpha must be one of 0.5, 1, 2, inf; got {self.alpha}")
        check_fraction(self, "k", zero_ok=True)

    def statistic(self, stats: TokenStats, sample: Sample) -> float:
        h = np.sort(stats.entropy_alpha(self.alpha).astype(np.float64))
        m = lowest_count(len(stats), self.k)
        return -float(np.mean(h[-m:]))

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        stats = signals[self.stats_request(sample.text)]
        field = {0.5: "renyi_05", 1.0: "entropy", 2.0: "renyi_2", math.inf: "renyi_inf"}[float(self.alpha)]
        h = sorted((float(x) for x in getattr(stats, field)), reverse=True)
        return -plain_mean(h[: max(1, math.floor(self.k * len(h)))]) if h else math.nan
