"""Probes on internal activations (LUMIA, Ibáñez-Lissen et al. 2024; Liu et al., ACL 2024).

Per layer, the mean hidden state over the text's tokens feeds a logistic-regression probe. Probes learn only
from the calibration set: per-layer out-of-fold AUROC there (stratified k-fold, so no calibration sample is
judged by a probe that saw it) picks the layer, and a probe refitted on all calibration samples scores the
evaluated texts, which it never saw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from miakit.attacks.base import Attack, MissingPrerequisite, check_count, require
from miakit.attacks.registry import register
from miakit.data import Sample
from miakit.errors import MiakitError
from miakit.signals import HiddenStatesRequest
from miakit.targets.capability import Capability


def _probe(c: float, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))


@register("activation_probe")
class ActivationProbe(Attack):
    """s = logit of a logistic probe on the mean hidden state of the best layer (chosen on calibration data)."""

    family = "probe"
    requires = frozenset({Capability.HIDDEN_STATES})
    stages = ("pre-training", "fine-tuning")
    paper = "LUMIA (Ibáñez-Lissen et al. 2024, arXiv 2411.19876); Liu et al., ACL 2024 (arXiv 2406.01333)"
    summary = "logistic probe on per-layer mean activations, layer chosen by out-of-fold AUROC on calibration data"
    table_score = "logistic probe on per-layer mean hidden states, best layer by out-of-fold AUROC on calibration"
    cite = "LUMIA 2024; Liu et al. 2024"
    needs_calibration = True
    tags: ClassVar[dict[str, str]] = {
        "planted_cannot_express": "the planted model changes the output distribution only, never the hidden "
        "states a probe reads",
        "reads_all_tokens": "it reads the hidden states of every token, so a one-token text is scorable",
    }

    def __init__(self, c: float = 1.0, folds: int = 5, seed: int = 0) -> None:
        self.c = c
        self.folds = folds
        self.seed = seed

    def check_params(self) -> None:
        require(self, isinstance(self.c, (int, float)) and self.c > 0, f"c must be positive, got {self.c}")
        check_count(self, "folds", minimum=2)

    def calibration_problem(self, samples: Sequence[Sample]) -> str | None:
        n_members = sum(1 for s in samples if s.label == 1)
        n_nonmembers = sum(1 for s in samples if s.label == 0)
        if min(n_members, n_nonmembers) >= 2:
            return None
        return (
            f"activation_probe needs at least 2 calibration members and 2 non-members; the calibration set has "
            f"{n_members} member(s) and {n_nonmembers} non-member(s)."
        )

    def calibration_requests(self, samples: Sequence[Sample]) -> list[Any]:
        return [HiddenStatesRequest(s.text) for s in samples]

    def requests(self, samples: Sequence[Sample]) -> list[Any]:
        if not hasattr(self, "probe_"):
            raise MiakitError("activation_probe must be fitted on a calibration set before scoring.")
        return [HiddenStatesRequest(s.text) for s in samples]

    def fit(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> ActivationProbe:
        from sklearn.metrics import roc_auc_score

        from miakit.evaluate.folds import fold_indices

        problem = self.calibration_problem(samples)
        if problem:
            raise MissingPrerequisite(problem)
        labels = np.array([s.label for s in samples])
        features = np.stack([np.asarray(signals[HiddenStatesRequest(s.text)], dtype=np.float64) for s in samples])
        # chunks of one calibration document stay in one fold, so a layer is not chosen for recognising documents
        splits = fold_indices(labels, self.folds, self.seed, [s.document for s in samples], what="activation_probe")
        layer_auroc = []
        for layer in range(features.shape[1]):
            x = features[:, layer]
            out_of_fold = np.empty(len(labels))
            for train, test in splits:
                out_of_fold[test] = _probe(self.c, self.seed).fit(x[train], labels[train]).decision_function(x[test])
            layer_auroc.append(float(roc_auc_score(labels, out_of_fold)))
        self.layer_auroc_ = layer_auroc
        self.best_layer_ = int(np.argmax(layer_auroc))
        self.n_calibration_ = len(samples)
        self.probe_ = _probe(self.c, self.seed).fit(features[:, self.best_layer_], labels)
        return self

    def fitted_on(self) -> str | None:
        if not hasattr(self, "probe_"):
            return None
        curve = " ".join(f"{v:.2f}" for v in self.layer_auroc_)
        return (
            f"logistic probe on layer {self.best_layer_} (0 = embeddings) of {len(self.layer_auroc_)}, fitted on "
            f"{self.n_calibration_} calibration samples; out-of-fold AUROC per layer: {curve}"
        )

    def notes(self) -> list[str]:
        """A warning when even the best layer's out-of-fold AUROC on the calibration set is below chance."""
        if not hasattr(self, "probe_"):
            return []
        best = self.layer_auroc_[self.best_layer_]
        if best >= 0.5:
            return []
        return [f"best layer's out-of-fold AUROC {best:.2f} is below chance; its scores are not evidence"]

    def fitted_details(self) -> dict[str, Any] | None:
        if not hasattr(self, "probe_"):
            return None
        return {"best_layer": self.best_layer_, "layer_auroc": self.layer_auroc_}

    def score(self, samples: Sequence[Sample], signals: Mapping[Any, Any]) -> np.ndarray:
        if not samples:
            return np.empty(0)
        x = np.stack([np.asarray(signals[HiddenStatesRequest(s.text)], dtype=np.float64) for s in samples])
        return self.probe_.decision_function(x[:, self.best_layer_])

    def reference_score(self, sample: Sample, signals: Mapping[Any, Any]) -> float:
        scaler, logistic = self.probe_[0], self.probe_[-1]
        x = np.asarray(signals[HiddenStatesRequest(sample.text)], dtype=np.float64)[self.best_layer_]
        standardised = [(v - m) / s for v, m, s in zip(x.tolist(), scaler.mean_, scaler.scale_, strict=True)]
        return math.fsum(w * z for w, z in zip(logistic.coef_[0], standardised, strict=True)) + logistic.intercept_[0]
