"""Reference-model attack: LL under the target minus LL under a reference model (Carlini et al. 2021).

With one tokenizer the two mean token log-likelihoods are compared (MIMIR, Min-K%++). When the reference
model's tokenizer differs from the target's, means over different token counts are not comparable, so the
attack compares per UTF-8 byte instead: s = (sum LL_target(x) - sum LL_ref(x)) / len(x in UTF-8 bytes), each
sum over the tokens that model scores, and says so in the run's warnings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from miakit.attacks.base import Attack, ModelFacts, plain_logprobs, plain_mean, require
from miakit.attacks.likelihood import mean_ll
from miakit.attacks.registry import register
from miakit.data import Sample
from miakit.signals import TokenStats, TokenStatsRequest
from miakit.targets.capability import Capability

PER_BYTE_NOTE = "reference model tokenizer differs from the target's: compared per UTF-8 byte"


def sum_ll_per_byte(target: TokenStats, reference: TokenStats, text: str) -> float:
    """(sum LL_target - sum LL_ref) / UTF-8 length of ``text``: NaN when either model scores no token."""
    if not len(target) or not len(reference):
        return float("nan")
    difference = np.sum(target.logprob, dtype=np.float64) - np.sum(reference.logprob, dtype=np.float64)
    return float(difference / len(text.encode("utf-8")))


@register("reference")
class Reference(Attack):
    """s = LL_target(x) - LL_ref(x) (MIMIR / Min-K%++ variant), per UTF-8 byte when the tokenizers differ;
    ``model`` names the reference model."""

    family = "calibrated likelihood"
    requires = frozenset({Capability.TOPK_LOGPROBS})
    stages = ("pre-training", "fine-tuning", "alignment")
    paper = "Carlini et al., USENIX Security 2021; Mireshghallah et al. 2022"
    summary = "LL(x) under the target minus LL(x) under a reference model (--reference)"
    table_score = "LL under the target − LL under a reference model; one column per `--reference`"
    cite = "Carlini et al. 2021"
    order = 9
    model_param = "model"

    def __init__(self, model: str | None = None) -> None:
        self.model = model

    def check_params(self) -> None:
        require(
            self,
            isinstance(self.model, str) and bool(self.model),
            "it needs a reference model: pass --reference MODEL (e.g. the base model) or write "
            "reference[model=DIR_OR_HUB_ID]",
        )

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        self.check_params()  # model None would silently compare the target with itself
        return [r for s in samples for r in (TokenStatsRequest(s.text), TokenStatsRequest(s.text, model=self.model))]

    def observe(self, models: Mapping[str | None, ModelFacts]) -> None:
        """Compare per UTF-8 byte when the reference model's tokenizer is not the target's."""
        super().observe(models)
        target, reference = self.facts(None), self.facts(self.model)
        self.per_byte_ = (
            target is not None
            and reference is not None
            and target.tokenizer_fingerprint != reference.tokenizer_fingerprint
        )

    def notes(self) -> list[str]:
        return [PER_BYTE_NOTE] if getattr(self, "per_byte_", False) else []

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        pairs = [
            (s, signals[TokenStatsRequest(s.text)], signals[TokenStatsRequest(s.text, model=self.model)])
            for s in samples
        ]
        if getattr(self, "per_byte_", False):
            return np.array([sum_ll_per_byte(t, r, s.text) for s, t, r in pairs], dtype=np.float64)
        return np.array([mean_ll(t) - mean_ll(r) for _, t, r in pairs], dtype=np.float64)

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        target = plain_logprobs(signals[TokenStatsRequest(sample.text)])
        reference = plain_logprobs(signals[TokenStatsRequest(sample.text, model=self.model)])
        if getattr(self, "per_byte_", False):
            if not target or not reference:
                return math.nan
            return (math.fsum(target) - math.fsum(reference)) / len(bytes(sample.text, "utf-8"))
        return plain_mean(target) - plain_mean(reference)
