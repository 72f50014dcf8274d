"""Metrics with honest statistics and the model-free blind baselines. Never imports torch.

Names load on first use (PEP 562): the baselines import scikit-learn, which a run reading their scores from
the store should not pay for.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "miakit.evaluate.blind_verdict": (
        "BELOW_CHANCE_PREFIX",
        "BLIND_NAME",
        "BLIND_WARNING_PREFIX",
        "DATE_NAME",
        "NGRAM_NAME",
        "BlindFigure",
        "below_chance_warning",
        "blind_figures",
        "blind_warning",
        "strongest_blind_warning",
        "verdict_line",
    ),
    "miakit.evaluate.blind": ("blind_bow_scores",),
    "miakit.evaluate.blind_more": ("blind_baselines",),
    "miakit.evaluate.evaluation": ("EvaluationSettings", "RunEvaluation", "evaluate_run"),
    "miakit.evaluate.metrics": (
        "BALANCED_ACCURACY_DEFINITION",
        "FPR_BUDGETS",
        "METRIC_KEYS",
        "AttackEvaluation",
        "MetricValue",
        "auroc",
        "balanced_accuracy",
        "evaluate_scores",
        "fpr_at_tpr",
        "roc_points",
        "tpr_at_fpr",
    ),
    "miakit.evaluate.scores": ("NAN_POLICIES", "PreparedScores", "prepare_scores"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_HOME_OF)


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'miakit.evaluate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
