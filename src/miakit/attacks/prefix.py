"""Prefix conditioning: how much a text's likelihood moves when known non-members (or members) precede it.

ReCaLL (Xie et al., EMNLP 2024) and Con-ReCall (Wang et al. 2024). Prefix texts come only from the calibration
set, which is never scored; the engine encodes a prefix shared by many texts once and reuses its key/value
cache.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from miakit.attacks.base import Attack, check_count, plain_logprobs, plain_mean, require
from miakit.attacks.likelihood import mean_ll
from miakit.attacks.registry import register
from miakit.data import Sample
from miakit.errors import MiakitError
from miakit.signals import TokenStatsRequest
from miakit.targets.capability import Capability

# Shots are joined, and the text follows the prefix, after one space (as in the SoK benchmark's ReCaLL).
SEPARATOR = " "


def _draw_shots(samples: Sequence[Sample], label: int, n_shots: int, seed: int, who: str) -> list[Sample]:
    pool = [s for s in samples if s.label == label]
    kind = "members" if label == 1 else "non-members"
    if not pool:
        raise MiakitError(f"{who} needs calibration {kind} for its prefix; the calibration set has none.")
    return random.Random(seed).sample(pool, min(n_shots, len(pool)))


def _describe(shots: Sequence[Sample], kind: str) -> str:
    ids = ", ".join(s.id for s in shots[:5]) + (", ..." if len(shots) > 5 else "")
    return f"prefix of {len(shots)} calibration {kind} ({ids})"


class _PrefixAttack(Attack):
    family = "prefix conditioning"
    requires = frozenset({Capability.TOPK_LOGPROBS})
    stages = ("pre-training", "fine-tuning")
    needs_calibration = True

    def _prefix(self, attr: str) -> str:
        value = getattr(self, attr, None)
        if value is None:
            raise MiakitError(f"{self.name} must be fitted on a calibration set before scoring.")
        return value

    @staticmethod
    def _conditional(signals: Mapping[Any, Any], text: str, prefix: str) -> float:
        return mean_ll(signals[TokenStatsRequest(text, context=prefix + SEPARATOR)])

    @staticmethod
    def _plain_ll(signals: Mapping[Any, Any], text: str, context: str = "") -> float:
        return plain_mean(plain_logprobs(signals[TokenStatsRequest(text, context=context)]))


@register("recall")
class ReCaLL(_PrefixAttack):
    """s = LL(x | P) / LL(x), P = ``n_shots`` calibration non-members; non-member context costs members more."""

    paper = "Xie et al., EMNLP 2024 (arXiv 2406.15968)"
    summary = "LL(x | prefix of known non-members) / LL(x); prefix from the calibration set"
    table_score = "LL(x | P) / LL(x), P = `n_shots` ({n_shots}) calibration non-members; needs calibration"
    cite = "Xie et al., EMNLP 2024"
    order = 10

    def __init__(self, n_shots: int = 10, seed: int = 0) -> None:
        self.n_shots = n_shots
        self.seed = seed

    def check_params(self) -> None:
        check_count(self, "n_shots")

    def fit(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> ReCaLL:
        self.check_params()
        self.shots_ = _draw_shots(samples, 0, self.n_shots, self.seed, "recall")
        self.prefix_ = SEPARATOR.join(s.text for s in self.shots_)
        return self

    def fitted_on(self) -> str | None:
        shots = getattr(self, "shots_", None)
        return _describe(shots, "non-members") if shots else None

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        prefix = self._prefix("prefix_")
        return [r for s in samples for r in (TokenStatsRequest(s.text), TokenStatsRequest(s.text, prefix + SEPARATOR))]

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        prefix = self._prefix("prefix_")
        return np.array(
            [self._conditional(signals, s.text, prefix) / mean_ll(signals[TokenStatsRequest(s.text)]) for s in samples]
        )

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        prefix = " ".join(shot.text for shot in self.shots_)
        return self._plain_ll(signals, sample.text, prefix + " ") / self._plain_ll(signals, sample.text)


@register("con_recall")
class ConReCall(_PrefixAttack):
    """s = [LL(x | P_nm) - gamma LL(x | P_m)] / LL(x), prefixes of calibration non-members and members."""

    paper = "Wang et al. 2024 (arXiv 2409.03363)"
    summary = "[LL(x | non-member prefix) - gamma LL(x | member prefix)] / LL(x); prefixes from calibration"
    table_score = "[LL(x | P_nm) − γ·LL(x | P_m)] / LL(x), γ = {gamma}, {n_shots}-shot prefixes from calibration"
    cite = "Wang et al. 2024"
    order = 11
    tags: ClassVar[dict[str, str]] = {
        "weak_on_tiny_models": (
            "it needs a model whose likelihood of a member rises in the context of other members; a 2-layer model "
            "with a 128-token context (prefixes cut to fit) shows little of that (measured AUROC 0.536, below the "
            "permutation threshold 0.63)"
        ),
        "planted_cannot_express": (
            "the planted model memorises exact sequences from position 0, so any prefix hides the memorisation "
            "alike for both prefixes; its orientation is pinned on signals in tests/attacks/test_prefix.py"
        ),
    }

    def __init__(self, n_shots: int = 10, gamma: float = 1.0, seed: int = 0) -> None:
        self.n_shots = n_shots
        self.gamma = gamma
        self.seed = seed

    def check_params(self) -> None:
        check_count(self, "n_shots")
        require(self, isinstance(self.gamma, (int, float)), f"gamma must be a number, got {self.gamma}")

    def fit(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> ConReCall:
        self.check_params()
        self.nonmember_shots_ = _draw_shots(samples, 0, self.n_shots, self.seed, "con_recall")
        self.member_shots_ = _draw_shots(samples, 1, self.n_shots, self.seed, "con_recall")
        self.nonmember_prefix_ = SEPARATOR.join(s.text for s in self.nonmember_shots_)
        self.member_prefix_ = SEPARATOR.join(s.text for s in self.member_shots_)
        return self

    def fitted_on(self) -> str | None:
        if not hasattr(self, "member_shots_"):
            return None
        return f"{_describe(self.nonmember_shots_, 'non-members')}; {_describe(self.member_shots_, 'members')}"

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        nm, m = self._prefix("nonmember_prefix_"), self._prefix("member_prefix_")
        return [
            r
            for s in samples
            for r in (
                TokenStatsRequest(s.text),
                TokenStatsRequest(s.text, nm + SEPARATOR),
                TokenStatsRequest(s.text, m + SEPARATOR),
            )
        ]

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        nm, m = self._prefix("nonmember_prefix_"), self._prefix("member_prefix_")
        out = []
        for s in samples:
            ll = mean_ll(signals[TokenStatsRequest(s.text)])
            out.append(
                (self._conditional(signals, s.text, nm) - self.gamma * self._conditional(signals, s.text, m)) / ll
            )
        return np.array(out)

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        nonmember_prefix = " ".join(shot.text for shot in self.nonmember_shots_) + " "
        member_prefix = " ".join(shot.text for shot in self.member_shots_) + " "
        conditional = self._plain_ll(signals, sample.text, nonmember_prefix)
        conditional -= self.gamma * self._plain_ll(signals, sample.text, member_prefix)
        return conditional / self._plain_ll(signals, sample.text)
