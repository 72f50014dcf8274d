"""The blind baselines' names and the warning they raise: what the evaluation and the report need of them.

Kept apart from the baselines themselves (``blind.py``, ``blind_more.py``), which import scikit-learn: a rerun
that reads their scores from the store never pays for that import.
"""

from __future__ import annotations

from miakit.evaluate.metrics import AttackEvaluation

BLIND_NAME = "blind_bow"
DATE_NAME = "blind_date"
NGRAM_NAME = "blind_ngram"
BLIND_WARNING_PREFIX = "Blind baseline:"
BLIND_DESCRIPTIONS = {
    BLIND_NAME: "a bag-of-words classifier",
    DATE_NAME: "a classifier of the years mentioned in the texts",
    NGRAM_NAME: "greedily selected marker n-grams",
}


def blind_warning(evaluation: AttackEvaluation, threshold: float = 0.55, name: str = BLIND_NAME) -> str | None:
    """A warning when a blind baseline's AUROC beats `threshold` (its CI lower bound, else the value)."""
    m = evaluation.metrics.get("auroc")
    if m is None or m.value is None:
        return None
    bound = m.ci_low if m.ci_low is not None else m.value
    if bound <= threshold:
        return None
    ci = f" [{m.ci_low:.3f}, {m.ci_high:.3f}]" if m.ci_low is not None and m.ci_high is not None else ""
    what = BLIND_DESCRIPTIONS.get(name, "a model-free classifier")
    return (
        f"{BLIND_WARNING_PREFIX} members and non-members differ in distribution: {what} ({name}), which never "
        f"sees the model, separates them with AUROC {m.value:.3f}{ci}. Attack figures on this data are therefore "
        "not evidence of membership; use a distribution-matched split "
        "(e.g. a randomised train/held-out split)."
    )


def strongest_blind_warning(evaluations: dict[str, AttackEvaluation], threshold: float = 0.55) -> str | None:
    """The warning of the blind baseline with the highest AUROC lower bound (None when none beats threshold)."""

    def bound(name: str) -> float:
        m = evaluations[name].metrics.get("auroc")
        if m is None or m.value is None:
            return float("-inf")
        return m.ci_low if m.ci_low is not None else m.value

    names = [n for n in evaluations if n.startswith("blind_")]
    if not names:
        return None
    best = max(names, key=bound)
    return blind_warning(evaluations[best], threshold, name=best)
