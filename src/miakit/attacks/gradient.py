"""Gradient attacks: members sit where the loss is flat, so their loss gradients are small."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from miakit.attacks.base import Attack, plain_mean, require
from miakit.attacks.registry import register
from miakit.data import Sample
from miakit.signals import GradNormRequest
from miakit.targets.capability import Capability

_COLUMN = {1.0: 0, 2.0: 1, math.inf: 2}


@register("gradnorm")
class GradNorm(Attack):
    """s = -(1/|W|) sum_W ||d NLL(x) / dW||_p over the model's parameter tensors W (p = 1, 2 or inf)."""

    family = "gradient"
    requires = frozenset({Capability.GRADIENTS})
    stages = ("pre-training", "fine-tuning")
    paper = "GradNorm as in MIMIR (Duan et al. 2024; arXiv 2402.17012)"
    summary = "minus the mean p-norm of the loss gradient over parameter tensors (one backward pass per text)"
    table_score = "−mean over parameter tensors of ‖∇ NLL(x)‖_p (p = {p}; 1 and 2 free from the store)"
    cite = "as in MIMIR (Duan et al. 2024)"
    in_all = False  # a backward pass per text

    def __init__(self, p: float = math.inf) -> None:
        self.p = p

    def check_params(self) -> None:
        ok = isinstance(self.p, (int, float)) and float(self.p) in _COLUMN
        require(self, ok, f"p must be 1, 2 or inf, got {self.p}")

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        self.check_params()
        return [GradNormRequest(s.text) for s in samples]

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        column = _COLUMN[float(self.p)]
        out = np.empty(len(samples))
        for i, s in enumerate(samples):
            norms = np.asarray(signals[GradNormRequest(s.text)], dtype=np.float64)
            out[i] = -float(norms[:, column].mean()) if norms.size and np.isfinite(norms).all() else np.nan
        return out

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        rows = np.asarray(signals[GradNormRequest(sample.text)], dtype=np.float64).tolist()
        norms = [row[{1.0: 0, 2.0: 1, math.inf: 2}[float(self.p)]] for row in rows]
        if not rows or not all(math.isfinite(x) for row in rows for x in row):
            return math.nan
        return -plain_mean(norms)
