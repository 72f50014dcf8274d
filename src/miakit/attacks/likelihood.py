"""Likelihood attacks: LOSS, zlib ratio, lowercase ratio (Yeom et al. 2018; Carlini et al. 2021)."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from miakit.attacks.base import Attack, TokenStatsAttack, plain_logprobs, plain_mean
from miakit.attacks.registry import register
from miakit.data import Sample
from miakit.signals import TokenStats, TokenStatsRequest
from miakit.targets.capability import Capability


def mean_ll(stats: TokenStats) -> float:
    """LL(x): mean log-probability of the scored tokens (NaN when none is scored)."""
    return float(np.mean(stats.logprob, dtype=np.float64)) if len(stats) else float("nan")


@register("loss")
class Loss(TokenStatsAttack):
    family = "likelihood"
    paper = "Yeom et al., CSF 2018; Carlini et al., USENIX Security 2021"
    summary = "mean token log-likelihood LL(x)"
    cite = "Yeom et al. 2018; Carlini et al. 2021"
    order = 0

    def __init__(self) -> None:
        pass

    def statistic(self, stats: TokenStats, sample: Sample) -> float:
        return mean_ll(stats)

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        return plain_mean(plain_logprobs(signals[TokenStatsRequest(sample.text)]))


def zlib_length(text: str) -> int:
    """Byte length of the zlib-compressed UTF-8 text (default level), Carlini et al.'s zlib entropy."""
    return len(zlib.compress(text.encode("utf-8")))


@register("zlib")
class Zlib(TokenStatsAttack):
    family = "calibrated likelihood"
    paper = "Carlini et al., USENIX Security 2021"
    summary = "LL(x) / zlib-compressed byte length"
    cite = "Carlini et al. 2021"
    order = 1

    def __init__(self) -> None:
        pass

    def statistic(self, stats: TokenStats, sample: Sample) -> float:
        return mean_ll(stats) / zlib_length(sample.text)

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        ll = plain_mean(plain_logprobs(signals[TokenStatsRequest(sample.text)]))
        return ll / len(zlib.compress(bytes(sample.text, "utf-8")))


@register("lowercase")
class Lowercase(Attack):
    family = "calibrated likelihood"
    requires = frozenset({Capability.TOPK_LOGPROBS})
    paper = "Carlini et al., USENIX Security 2021"
    summary = "LL(lowercased x) / LL(x): one extra pass on the lowercased text"
    table_score = "LL(lower(x)) / LL(x) (one extra pass)"
    cite = "Carlini et al. 2021"
    order = 2

    def __init__(self) -> None:
        pass

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        return [TokenStatsRequest(t) for s in samples for t in (s.text, s.text.lower())]

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        out = np.empty(len(samples))
        with np.errstate(divide="ignore", invalid="ignore"):
            for i, s in enumerate(samples):
                ll = mean_ll(signals[TokenStatsRequest(s.text)])
                ll_lower = mean_ll(signals[TokenStatsRequest(s.text.lower())])
                out[i] = np.float64(ll_lower) / np.float64(ll)
        return out

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        ll = plain_mean(plain_logprobs(signals[TokenStatsRequest(sample.text)]))
        ll_lower = plain_mean(plain_logprobs(signals[TokenStatsRequest(sample.text.lower())]))
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.float64(ll_lower) / ll)
