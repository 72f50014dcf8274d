"""Metrics with honest statistics and the model-free blind baseline. Never imports torch."""

from miakit.evaluate.blind import (
    BLIND_NAME,
    BLIND_WARNING_PREFIX,
    blind_bow_scores,
    blind_warning,
    strongest_blind_warning,
)
from miakit.evaluate.blind_more import DATE_NAME, NGRAM_NAME, blind_baselines
from miakit.evaluate.evaluation import EvaluationSettings, RunEvaluation, evaluate_run
from miakit.evaluate.metrics import (
    BALANCED_ACCURACY_DEFINITION,
    FPR_BUDGETS,
    METRIC_KEYS,
    AttackEvaluation,
    MetricValue,
    auroc,
    balanced_accuracy,
    evaluate_scores,
    fpr_at_tpr,
    roc_points,
    tpr_at_fpr,
)
from miakit.evaluate.scores import NAN_POLICIES, PreparedScores, prepare_scores

__all__ = [
    "BALANCED_ACCURACY_DEFINITION",
    "BLIND_NAME",
    "BLIND_WARNING_PREFIX",
    "DATE_NAME",
    "FPR_BUDGETS",
    "METRIC_KEYS",
    "NAN_POLICIES",
    "NGRAM_NAME",
    "AttackEvaluation",
    "EvaluationSettings",
    "MetricValue",
    "PreparedScores",
    "RunEvaluation",
    "auroc",
    "balanced_accuracy",
    "blind_baselines",
    "blind_bow_scores",
    "blind_warning",
    "evaluate_run",
    "evaluate_scores",
    "fpr_at_tpr",
    "prepare_scores",
    "roc_points",
    "strongest_blind_warning",
    "tpr_at_fpr",
]
