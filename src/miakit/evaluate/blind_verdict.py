"""The blind baselines' names, the warning they raise and the one-line verdict the console and report open with.

Kept apart from the baselines themselves (``blind.py``, ``blind_more.py``), which import scikit-learn: a rerun
that reads their scores from the store never pays for that import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from miakit.evaluate.metrics import AttackEvaluation

BLIND_NAME = "blind_bow"
DATE_NAME = "blind_date"
NGRAM_NAME = "blind_ngram"
BLIND_WARNING_PREFIX = "Blind baseline:"
BLIND_THRESHOLD = 0.55
BELOW_CHANCE_PREFIX = "Blind baseline below chance:"
BLIND_DESCRIPTIONS = {
    BLIND_NAME: "a bag-of-words classifier",
    DATE_NAME: "a classifier of the years mentioned in the texts",
    NGRAM_NAME: "greedily selected marker n-grams",
}


def blind_warning(
    evaluation: AttackEvaluation, threshold: float = BLIND_THRESHOLD, name: str = BLIND_NAME
) -> str | None:
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


def strongest_blind_warning(evaluations: dict[str, AttackEvaluation], threshold: float = BLIND_THRESHOLD) -> str | None:
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


@dataclass(frozen=True)
class BlindFigure:
    """A blind baseline's AUROC and its interval, as results.json records them (None where not computed)."""

    name: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None

    @property
    def bound(self) -> float:
        """What the warning compares with its threshold: the CI lower bound, else the value, else -inf."""
        if self.value is None:
            return float("-inf")
        return self.ci_low if self.ci_low is not None else self.value

    @property
    def below_chance(self) -> bool:
        """Whether the whole interval (the value without one) lies below 0.5."""
        if self.value is None:
            return False
        return (self.ci_high if self.ci_high is not None else self.value) < 0.5

    def figures(self) -> str:
        """'0.52 [0.44, 0.60]' (two decimals; no brackets without an interval)."""
        ci = f" [{self.ci_low:.2f}, {self.ci_high:.2f}]" if self.ci_low is not None and self.ci_high is not None else ""
        return f"{self.value:.2f}{ci}"


def blind_figures(metrics: Mapping[str, Mapping[str, object]]) -> list[BlindFigure]:
    """The blind baselines (columns named ``blind_*``) of a results.json ``attacks`` mapping, with their AUROC."""
    out = []
    for name, entry in metrics.items():
        if not str(name).startswith("blind_"):
            continue
        auroc = entry.get("auroc") or {}
        if not isinstance(auroc, Mapping):
            continue
        value, low, high = (auroc.get(k) for k in ("value", "ci_low", "ci_high"))
        out.append(
            BlindFigure(str(name), *(float(v) if isinstance(v, (int, float)) else None for v in (value, low, high)))
        )
    return out


def verdict_line(figures: list[BlindFigure], threshold: float = BLIND_THRESHOLD) -> str | None:
    """One line on the blind check, also when it does not fire: the baseline that decides it (the highest lower
    bound, as for the warning; else one whose interval lies below chance), its AUROC [CI] and what that means,
    e.g. "blind baseline 0.52 [0.44, 0.60]: no sign of a shifted split". None without a blind AUROC."""
    scored = [f for f in figures if f.value is not None]
    if not scored:
        return None

    def head(figure: BlindFigure) -> str:
        which = f" ({figure.name}, strongest of {len(scored)})" if len(scored) > 1 else ""
        return f"blind baseline {figure.figures()}{which}"

    best = max(scored, key=lambda f: f.bound)
    if best.bound > threshold:
        return f"{head(best)}: the split is shifted; attack figures are not evidence of membership"
    below = [f for f in scored if f.below_chance]
    if below:
        worst = min(below, key=lambda f: f.ci_high if f.ci_high is not None else f.value)  # type: ignore[arg-type]
        which = f" ({worst.name})" if len(scored) > 1 else ""
        return (
            f"blind baseline {worst.figures()}{which}: below chance: the labels may be swapped or the split is "
            "adversarial"
        )
    if best.bound > 0.5:
        return (
            f"{head(best)}: slightly above chance, under the warning threshold ({threshold:g}); no clear sign of "
            "a shifted split"
        )
    return f"{head(best)}: no sign of a shifted split"


def evaluation_figure(name: str, evaluation: AttackEvaluation) -> BlindFigure:
    """A ``BlindFigure`` from an evaluated blind baseline."""
    m = evaluation.metrics.get("auroc")
    if m is None:
        return BlindFigure(name, None)
    return BlindFigure(name, m.value, m.ci_low, m.ci_high)


def below_chance_warning(evaluations: dict[str, AttackEvaluation]) -> str | None:
    """A warning when a blind baseline's whole AUROC interval lies below 0.5: a model-free classifier that is
    reliably wrong means the labels are likely swapped, or members and non-members were chosen against it."""
    below = [f for f in (evaluation_figure(n, e) for n, e in evaluations.items()) if f.below_chance]
    if not below:
        return None
    worst = min(below, key=lambda f: f.ci_high if f.ci_high is not None else f.value)  # type: ignore[arg-type]
    what = BLIND_DESCRIPTIONS.get(worst.name, "a model-free classifier")
    return (
        f"{BELOW_CHANCE_PREFIX} {what} ({worst.name}) ranks non-members above members, AUROC {worst.figures()} "
        "entirely below 0.5: the labels may be swapped (1 must mean member) or the split is adversarial. "
        "Check the labels before reading the attack figures."
    )
