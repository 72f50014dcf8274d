"""Perturbation attacks: compare a text with perturbed copies of it (word swaps, masked-LM neighbours, noise).

Members sit at sharper local optima of the model's likelihood: perturbing them costs more than perturbing
non-members. The perturbed copies are ordinary requests, so they are batched, cached and resumable.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from miakit.attacks.base import Attack, check_count, check_fraction, lowest_count, plain_logprobs, plain_mean, require
from miakit.attacks.likelihood import mean_ll
from miakit.attacks.registry import register
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
    table_score = (
        "mean polarized distance of {n_augmentations} word-swap augmentations − that of x "
        "(k_max {k_max}, k_min {k_min}, α {alpha})"
    )
    cite = "Ye et al. 2024"
    in_all = False  # n_augmentations extra passes per text

    def __init__(
        self, k_max: float = 0.05, k_min: float = 0.3, alpha: float = 0.3, n_augmentations: int = 5, seed: int = 0
    ) -> None:
        self.k_max = k_max
        self.k_min = k_min
        self.alpha = alpha
        self.n_augmentations = n_augmentations
        self.seed = seed

    def check_params(self) -> None:
        check_fraction(self, "k_max")
        check_fraction(self, "k_min")
        check_fraction(self, "alpha", zero_ok=True)
        check_count(self, "n_augmentations")

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

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        def polarized(text: str) -> float:
            values = sorted(plain_logprobs(signals[TokenStatsRequest(text)]))
            if not values:
                return math.nan
            top = max(1, math.floor(self.k_max * len(values)))
            bottom = max(1, math.floor(self.k_min * len(values)))
            return plain_mean(values[-top:]) - plain_mean(values[:bottom])

        augmented = swap_augmentations(sample.text, self.n_augmentations, self.alpha, self.seed)
        return plain_mean([polarized(t) for t in augmented]) - polarized(sample.text)


@register("neighbourhood")
class Neighbourhood(Attack):
    """s = LL(x) - mean_i LL(x~_i), x~_i neighbours from a masked LM (one token replaced each)."""

    family = "perturbation"
    requires = frozenset({Capability.TOPK_LOGPROBS})
    stages = ("pre-training", "fine-tuning")
    paper = "Mattern et al., ACL Findings 2023 (arXiv 2305.18462)"
    summary = "LL(x) minus the mean LL of masked-LM neighbours (--attacks 'neighbourhood[mlm=DIR]')"
    table_score = "LL(x) − mean LL of `n` ({n}) masked-LM neighbours; `neighbourhood[mlm=DIR_OR_HUB_ID]`"
    cite = "Mattern et al. 2023"
    in_all = False  # n extra passes per text, plus a masked LM
    mlm_param = "mlm"
    tiny_world_params: ClassVar[dict[str, Any]] = {"n": 8}

    def __init__(
        self, mlm: str | None = None, n: int = 25, top_k: int = 10, dropout: float = 0.7, seed: int = 0
    ) -> None:
        self.mlm = mlm
        self.n = n
        self.top_k = top_k
        self.dropout = dropout
        self.seed = seed

    def check_params(self) -> None:
        require(
            self,
            isinstance(self.mlm, str) and bool(self.mlm),
            "it needs a masked LM to propose neighbours; name a local directory or a Hugging Face hub id with "
            "--attacks 'neighbourhood[mlm=DIR_OR_HUB_ID]' (the paper used roberta-base)",
        )
        check_count(self, "n")
        check_count(self, "top_k")
        check_fraction(self, "dropout", zero_ok=True)

    def _request(self, text: str) -> NeighboursRequest:
        return NeighboursRequest(text, self.mlm, self.n, self.top_k, self.dropout, self.seed)

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        self.check_params()  # no masked LM: fail here, before any model loads
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

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        def ll(text: str) -> float:
            return plain_mean(plain_logprobs(signals[TokenStatsRequest(text)]))

        neighbours = signals[self._request(sample.text)]
        return ll(sample.text) - plain_mean([ll(t) for t in neighbours]) if neighbours else math.nan


@register("noisy_neighbours")
class NoisyNeighbours(Attack):
    """s = mean_i NLL(x; e(x) + noise_i) - NLL(x): members' loss rises more when their embeddings are perturbed."""

    family = "perturbation"
    requires = frozenset({Capability.TOPK_LOGPROBS, Capability.EMBEDDINGS_IN})
    stages = ("fine-tuning",)
    paper = "Galli, Melis, Cucinotta, PrivateNLP 2024 (arXiv 2406.16565)"
    summary = "mean loss under Gaussian noise on the input embeddings minus the clean loss (n passes per text)"
    table_score = "mean NLL under N(0, σ²) noise on the input embeddings (σ = {sigma}, n = {n}) − NLL"
    cite = "Galli et al. 2024"
    in_all = False  # n extra passes per text
    tiny_world_params: ClassVar[dict[str, Any]] = {"sigma": 0.05, "n": 8}
    tags: ClassVar[dict[str, str]] = {
        "planted_cannot_express": "the planted model keys on token ids and takes no input embeddings: embedding "
        "noise cannot be expressed there"
    }

    def __init__(self, sigma: float = 0.01, n: int = 16, seed: int = 0) -> None:
        self.sigma = sigma
        self.n = n
        self.seed = seed

    def check_params(self) -> None:
        ok = isinstance(self.sigma, (int, float)) and self.sigma > 0
        require(self, ok, f"sigma must be positive, got {self.sigma}")
        check_count(self, "n")

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

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        clean_nll = -plain_mean(plain_logprobs(signals[TokenStatsRequest(sample.text)]))
        noisy = [float(x) for x in np.ravel(signals[self._request(sample.text)])]
        return plain_mean(noisy) - clean_nll if noisy and math.isfinite(clean_nll) else math.nan
