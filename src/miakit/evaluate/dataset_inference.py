"""Dataset inference (Maini et al. 2024, "LLM Dataset Inference"): was this *set* of texts trained on?

Per-text MIA scores are weak evidence; a suspect set's scores shifted against a validation set of the same
distribution that the model never saw are strong evidence. Features (many attacks' scores) are clipped to
the 2.5-97.5 percentiles and standardised with statistics of the first half only; a logistic model learnt on
the first half (suspect = 1, validation = 0) scores the second half; a one-sided Welch t-test asks whether the
suspect scores are higher. The p-value is also given as a function of the number of texts used.

The test is only valid when suspect and validation texts come from one distribution: a suspect set from another
topic or period gives a tiny p-value with no training at all. ``suspect_shift`` checks that with the model-free
blind baselines (Das, Zhang & Tramer 2024) on the texts alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import ttest_ind
from sklearn.linear_model import LogisticRegression

from miakit.errors import MiakitError
from miakit.evaluate.blind_more import blind_baselines
from miakit.evaluate.blind_verdict import BLIND_DESCRIPTIONS, strongest_blind_warning
from miakit.evaluate.metrics import evaluate_scores


def _halves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    return order[: n // 2], order[n // 2 :]


def _fit_transform(train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-feature clipping bounds (from the finite values) and standardisation, from the training half only."""
    finite = np.where(np.isfinite(train), train, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: its bounds are NaN, its z 0
        low, high = np.nanpercentile(finite, [2.5, 97.5], axis=0)
        clipped = np.clip(train, low, high)  # +-inf (e.g. a log-likelihood of -inf) goes to the bound
        mean = np.nanmean(clipped, axis=0)
        std = np.nanstd(clipped, axis=0)
    std[~np.isfinite(std) | (std == 0)] = 1.0
    return low, high, mean, std


def _standardise(x: np.ndarray, low: np.ndarray, high: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Clipped and standardised features; NaN where a value is missing (or its column had no finite value)."""
    with np.errstate(invalid="ignore"):
        return (np.clip(x, low, high) - mean) / std


def _prepare(x: np.ndarray, low: np.ndarray, high: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``_standardise`` with missing values imputed by the training mean (z = 0)."""
    return np.nan_to_num(_standardise(x, low, high, mean, std), nan=0.0, posinf=0.0, neginf=0.0)


def _imputed(x: np.ndarray, low: np.ndarray, high: np.ndarray, mean: np.ndarray, std: np.ndarray) -> list[int]:
    """Per feature: how many of ``x``'s values ``_prepare`` replaces by the training mean."""
    return np.count_nonzero(~np.isfinite(_standardise(x, low, high, mean, std)), axis=0).tolist()


def infer(
    suspect: np.ndarray,
    validation: np.ndarray,
    *,
    seed: int = 0,
    sizes: list[int] | None = None,
    repeats: int = 20,
) -> dict:
    """Dataset inference on feature matrices [texts, features]; returns p_value and the p-value curve.

    ``imputed_suspect`` and ``imputed_validation`` count, per feature (column order), the values replaced by the
    training half's mean: missing (NaN) values, and every value of a column with no finite training value.
    """
    suspect = np.array(suspect, dtype=np.float64, copy=True)
    validation = np.array(validation, dtype=np.float64, copy=True)
    if suspect.ndim != 2 or validation.ndim != 2 or suspect.shape[1] != validation.shape[1]:
        raise MiakitError("dataset inference needs two feature matrices with the same columns")
    if min(len(suspect), len(validation)) < 8:
        raise MiakitError("dataset inference needs at least 8 suspect and 8 validation texts")
    rng = np.random.default_rng(seed)
    s_train, s_test = _halves(len(suspect), rng)
    v_train, v_test = _halves(len(validation), rng)
    train = np.concatenate([suspect[s_train], validation[v_train]])
    labels = np.concatenate([np.ones(len(s_train)), np.zeros(len(v_train))])
    bounds = _fit_transform(train)
    model = LogisticRegression(max_iter=2000, random_state=seed).fit(_prepare(train, *bounds), labels)
    s_scores = model.decision_function(_prepare(suspect[s_test], *bounds))
    v_scores = model.decision_function(_prepare(validation[v_test], *bounds))
    p_value = float(ttest_ind(s_scores, v_scores, equal_var=False, alternative="greater").pvalue)
    if not np.isfinite(p_value):
        raise MiakitError(
            "dataset inference found no variation to test: the learnt scores are constant on the test halves "
            "(every feature constant or missing)"
        )
    largest = min(len(s_scores), len(v_scores))
    sizes = sorted({n for n in (sizes or [5, 10, 20, 50, 100, 200, 500, 1000]) if 2 <= n <= largest} | {largest})
    curve = []
    for n in sizes:
        ps = []
        for _ in range(repeats if n < largest else 1):
            a = rng.choice(s_scores, size=n, replace=False)
            b = rng.choice(v_scores, size=n, replace=False)
            ps.append(float(ttest_ind(a, b, equal_var=False, alternative="greater").pvalue))
        curve.append({"n": int(n), "p_value": float(np.median(ps))})
    return {
        "p_value": p_value,
        "curve": curve,
        "n_suspect_test": len(s_scores),
        "n_validation_test": len(v_scores),
        "mean_score_suspect": float(np.mean(s_scores)),
        "mean_score_validation": float(np.mean(v_scores)),
        "weights": model.coef_[0].tolist(),
        "imputed_suspect": _imputed(suspect, *bounds),
        "imputed_validation": _imputed(validation, *bounds),
    }


def imputed_table(features: Sequence[str], result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per feature of an ``infer`` result: ``{"feature", "suspect", "validation"}`` imputed-value counts."""
    return [
        {"feature": str(name), "suspect": int(s), "validation": int(v)}
        for name, s, v in zip(features, result["imputed_suspect"], result["imputed_validation"], strict=True)
    ]


def validation_vs_itself(validation: np.ndarray, *, seed: int = 0) -> dict:
    """The false-positive run: the validation texts, shuffled (their file order may follow date or source),
    split into two halves and tested against each other with ``infer``; it should not be significant."""
    validation = np.asarray(validation, dtype=np.float64)
    order = np.random.default_rng(seed).permutation(len(validation))
    half = len(validation) // 2
    return infer(validation[order[:half]], validation[order[half:]], seed=seed)


SHIFT_WARNING_PREFIX = "Suspect vs validation:"


def suspect_shift(
    suspect_texts: Sequence[str],
    validation_texts: Sequence[str],
    *,
    seed: int = 0,
    n_bootstrap: int = 1000,
    threshold: float = 0.55,
) -> dict[str, Any]:
    """Do the suspect and validation texts differ in distribution? The blind baselines (never the model) try to
    tell them apart, out-of-fold, with suspect = 1 and validation = 0.

    Returns ``{"baselines": {name: {"auroc", "ci_low", "ci_high", "description"}}, "strongest", "warning",
    "threshold", "n_suspect", "n_validation", "note"}``. ``warning`` and ``strongest`` (None when the texts do
    not separate) follow ``strongest_blind_warning``'s rule: the baseline with the highest AUROC CI lower bound,
    when that bound exceeds ``threshold``. Baselines that cannot be fitted (e.g. texts without words)
    leave ``baselines`` empty and say why in ``note``, rather than stopping the dataset inference.
    """
    texts = [str(t) for t in (*suspect_texts, *validation_texts)]
    labels = np.r_[np.ones(len(suspect_texts), dtype=int), np.zeros(len(validation_texts), dtype=int)]
    out: dict[str, Any] = {
        "baselines": {},
        "strongest": None,
        "warning": None,
        "threshold": threshold,
        "n_suspect": len(suspect_texts),
        "n_validation": len(validation_texts),
        "note": None,
    }
    try:
        scores = blind_baselines(texts, labels, seed=seed)
    except MiakitError as exc:
        out["note"] = f"the blind baselines could not be run on these texts, so the split is unchecked: {exc}"
        return out
    evaluations = {name: evaluate_scores(labels, s, n_bootstrap=n_bootstrap, seed=seed) for name, s in scores.items()}
    for name, evaluation in evaluations.items():
        m = evaluation.metrics["auroc"]
        out["baselines"][name] = {
            "auroc": m.value,
            "ci_low": m.ci_low,
            "ci_high": m.ci_high,
            "description": BLIND_DESCRIPTIONS.get(name, "a model-free classifier"),
            "unranked": evaluation.unranked or None,  # e.g. no text mentions a year: every score equal
        }
    if strongest_blind_warning(evaluations, threshold) is not None:
        best = max(out["baselines"], key=lambda n: _lower_bound(out["baselines"][n]))
        out["strongest"] = best
        out["warning"] = _shift_warning(best, out["baselines"][best])
    return out


def _lower_bound(row: dict[str, Any]) -> float:
    """The AUROC CI lower bound, else the AUROC, else -inf (``strongest_blind_warning``'s ordering)."""
    if row["auroc"] is None:
        return float("-inf")
    return row["ci_low"] if row["ci_low"] is not None else row["auroc"]


def _shift_warning(name: str, row: dict[str, Any]) -> str:
    ci = f" [{row['ci_low']:.3f}, {row['ci_high']:.3f}]" if row["ci_low"] is not None else ""
    return (
        f"{SHIFT_WARNING_PREFIX} the suspect and validation texts differ in distribution: {row['description']} "
        f"({name}), which never sees the model, tells them apart with AUROC {row['auroc']:.3f}{ci}. A small "
        "dataset-inference p-value is then not evidence that the suspect texts were trained on: the shift alone "
        "can produce it. Use validation texts from the same source, topic and period as the suspect texts."
    )
