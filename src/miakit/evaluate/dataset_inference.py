"""Dataset inference (Maini et al. 2024, "LLM Dataset Inference"): was this *set* of texts trained on?

Per-text MIA scores are weak evidence; a suspect set's scores shifted against a validation set of the same
distribution that the model never saw are strong evidence. Features (many attacks' scores) are clipped to
the 2.5-97.5 percentiles and standardised with statistics of the first half only; a logistic model learnt on
the first half (suspect = 1, validation = 0) scores the second half; a one-sided Welch t-test asks whether the
suspect scores are higher. The p-value is also given as a function of the number of texts used.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import ttest_ind
from sklearn.linear_model import LogisticRegression

from miakit.errors import MiakitError


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


def _prepare(x: np.ndarray, low: np.ndarray, high: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    z = (np.clip(x, low, high) - mean) / std
    return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)


def infer(
    suspect: np.ndarray,
    validation: np.ndarray,
    *,
    seed: int = 0,
    sizes: list[int] | None = None,
    repeats: int = 20,
) -> dict:
    """Dataset inference on feature matrices [texts, features]; returns p_value and the p-value curve."""
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
    }


def validation_vs_itself(validation: np.ndarray, *, seed: int = 0) -> dict:
    """The false-positive run: the validation texts, shuffled (their file order may follow date or source),
    split into two halves and tested against each other with ``infer``; it should not be significant."""
    validation = np.asarray(validation, dtype=np.float64)
    order = np.random.default_rng(seed).permutation(len(validation))
    half = len(validation) // 2
    return infer(validation[order[:half]], validation[order[half:]], seed=seed)
