"""Perturbation attacks: compare a text with perturbed copies of it (word swaps, masked-LM neighbours, noise).

Members sit at sharper local optima of the model's likelihood: perturbing them costs more than perturbing
non-members. The perturbed copies are ordinary requests, so they are batched, cached and resumable.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from miakit.attacks.base import Attack, lowest_count, register
from miakit.attacks.likelihood import mean_ll
from miakit.data import Sample
from miakit.seeding import text_seed
from miakit.signals import NeighboursRequest, NoisyLossRequest, TokenStats, TokenStatsRequest
from miakit.targets.capability import Capability


def swap_augmentations(text: str, n: int, alpha: float, seed: int) -> list[str]:
    """EDA random-swap augmentations (Wei & Zou 2019) as PAC uses them: each copy swaps two random words
    max(1, int(alpha * words)) times; words are split on single spaces so the text's spacing survives."""
    words = text.split(" ")
    rng = random.Random(text_seed(seed, text))  # the same augmentations whatever the order of texts
    swaps = max(1, int(alpha * len(words)))
    out = []
    for _ in range(n):
        copy = list(words)
        for _ in range(swaps):
            if len(copy) < 2:
                break
            i, j = rng.sample(range(len(copy)), 2)
            copy[i], copy[j] = copy[j], copy[i]
        out.append(" ".join(copy))
    return out


def polarized_distance(stats: TokenStats, k_max: float, k_min: float) -> float:
    """Mean of the highest ``k_max`` fraction of token log-probs minus the mean of the lowest ``k_min`` fraction."""
    n = len(stats)
    if n == 0:
        return float("nan")
    values = np.sort(stats.logprob.astype(np.float64))
    return float(values[-lowest_count(n, k_max) :].mean() - values[: lowest_count(n, k_min)].mean())


@register("pac")
class PAC(Attack):
    """s = mean_j PD(aug_j(x)) - PD(x), PD the polarized distance, aug_j random word swaps (seeded).

    Orientation as in the authors' code (yyy01/PAC scores AUROC on -(PD(x) - mean PD)): memorisation lifts a
    member's least likely tokens, so its own polarized distance is small next to its shuffled copies'.
    Default of 5 augmentations as in the authors' ``attack.py`` (the SoK benchmark uses 10).
    """

    family = "perturbation"
    requires = frozenset({Capability.TOPK_LOGPROBS})
    stages = ("pre-training",)
    paper = "Ye et al. 2024, Polarized Augment Calibration (arXiv 2405.11930)"
    summary = "mean polarized distance of word-swap augmentations minus that of x (1 + n passes per text)"
    in_all = False  # n_augmentations extra passes per text

    def __init__(
        self, k_max: float = 0.05, k_min: float = 0.3, alpha: float = 0.3, n_augmentations: int = 5, seed: int = 0
    ) -> None:
        self.k_max = k_max
        self.k_min = k_min
        self.alpha = alpha
        self.n_augmentations = n_augmentations
        self.seed = seed

    def _augmented(self, text: str) -> list[str]:
        return swap_augmentations(text, self.n_augmentations, self.alpha, self.seed)

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        return [TokenStatsRequest(t) for s in samples for t in (s.text, *self._augmented(s.text))]

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        out = np.empty(len(samples))
        for i, s in enumerate(samples):
            pd = polarized_distance(signals[TokenStatsRequest(s.text)], self.k_max, self.k_min)
            neighbours = [
                polarized_distance(signals[TokenStatsRequest(t)], self.k_max, self.k_min)
                for t in self._augmented(s.text)
            ]
            out[i] = float(np.mean(neighbours)) - pd if neighbours else np.nan
        return out


@register("neighbourhood")
class Neighbourhood(Attack):
    """s = LL(x) - mean_i LL(x~_i), x~_i neighbours from a masked LM (one token replaced each)."""

    family = "perturbation"
    requires = frozenset({Capability.TOPK_LOGPROBS})
    stages = ("pre-training", "fine-tuning")
    paper = "Mattern et al., ACL Findings 2023 (arXiv 2305.18462)"
    summary = "LL(x) minus the mean LL of masked-LM neighbours (--attacks 'neighbourhood[mlm=DIR]')"
    in_all = False  # n extra passes per text, plus a masked LM

    def __init__(
        self, mlm: str = "roberta-base", n: int = 25, top_k: int = 10, dropout: float = 0.7, seed: int = 0
    ) -> None:
        self.mlm = mlm
        self.n = n
        self.top_k = top_k
        self.dropout = dropout
        self.seed = seed

    def _request(self, text: str) -> NeighboursRequest:
        return NeighboursRequest(text, self.mlm, self.n, self.top_k, self.dropout, self.seed)

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        return [r for s in samples for r in (self._request(s.text), TokenStatsRequest(s.text))]

    def more_requests(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> list[Any]:
        out = []
        for s in samples:
            neighbours = signals.get(self._request(s.text))
            out.extend(TokenStatsRequest(t) for t in neighbours or [])
        return out

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        out = np.empty(len(samples))
        for i, s in enumerate(samples):
            neighbours = signals[self._request(s.text)]
            lls = [mean_ll(signals[TokenStatsRequest(t)]) for t in neighbours]
            out[i] = mean_ll(signals[TokenStatsRequest(s.text)]) - float(np.mean(lls)) if lls else np.nan
        return out


@register("noisy_neighbours")
class NoisyNeighbours(Attack):
    """s = mean_i NLL(x; e(x) + noise_i) - NLL(x): members' loss rises more when their embeddings are perturbed."""

    family = "perturbation"
    requires = frozenset({Capability.TOPK_LOGPROBS, Capability.EMBEDDINGS_IN})
    stages = ("fine-tuning",)
    paper = "Galli, Melis, Cucinotta, PrivateNLP 2024 (arXiv 2406.16565)"
    summary = "mean loss under Gaussian noise on the input embeddings minus the clean loss (n passes per text)"
    in_all = False  # n extra passes per text

    def __init__(self, sigma: float = 0.01, n: int = 16, seed: int = 0) -> None:
        self.sigma = sigma
        self.n = n
        self.seed = seed

    def _request(self, text: str) -> NoisyLossRequest:
        return NoisyLossRequest(text, float(self.sigma), int(self.n), int(self.seed))

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        return [r for s in samples for r in (self._request(s.text), TokenStatsRequest(s.text))]

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        out = np.empty(len(samples))
        for i, s in enumerate(samples):
            clean = mean_ll(signals[TokenStatsRequest(s.text)])
            noisy = np.asarray(signals[self._request(s.text)], dtype=np.float64)
            out[i] = float(noisy.mean()) + clean if noisy.size and np.isfinite(clean) else np.nan
        return out
