"""Reference-model attack: LL under the target minus LL under a reference model (Carlini et al. 2021)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from miakit.attacks.base import Attack, plain_logprobs, plain_mean, require
from miakit.attacks.likelihood import mean_ll
from miakit.attacks.registry import register
from miakit.data import Sample
from miakit.signals import TokenStatsRequest
from miakit.targets.capability import Capability


@register("reference")
class Reference(Attack):
    """s = LL_target(x) - LL_ref(x) (MIMIR / Min-K%++ variant); ``model`` names the reference model."""

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

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        return np.array(
            [
                mean_ll(signals[TokenStatsRequest(s.text)])
                - mean_ll(signals[TokenStatsRequest(s.text, model=self.model)])
                for s in samples
            ]
        )

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        target = plain_mean(plain_logprobs(signals[TokenStatsRequest(sample.text)]))
        return target - plain_mean(plain_logprobs(signals[TokenStatsRequest(sample.text, model=self.model)]))
