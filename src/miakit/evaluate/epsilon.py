"""An empirical privacy figure: the epsilon lower bound implied by an attack (DP auditing, Jagielski et al. 2020).

If training were (epsilon, delta)-DP, every membership test would satisfy TPR <= e^epsilon FPR + delta and
1 - FPR <= e^epsilon (1 - TPR) + delta. An attack's TPR and FPR at one threshold, taken pessimistically
(Clopper-Pearson: lower bound of TPR, upper bound of FPR), therefore prove that epsilon is at least
max(log((TPR_lo - delta) / FPR_hi), log((1 - FPR_hi - delta) / (1 - TPR_lo))).

The binomial bounds need independent trials. Chunks of one document are not (they share the document's
membership and much of its text), so when samples are chunks of documents each document is one trial, scored by
its mean chunk score (NaN chunks left out, `documents.document_scores`): the bound then counts documents.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaincinv

from miakit.errors import MiakitError
from miakit.evaluate.documents import document_scores
from miakit.evaluate.metrics import roc_points
from miakit.evaluate.resample import is_clustered
from miakit.evaluate.scores import NAN_POLICIES

ASSUMPTIONS = (
    "Valid as a lower bound only if members and non-members were drawn from the same distribution and "
    "membership was decided independently of the texts (a randomised split: check the blind baselines), and "
    "if the threshold was fixed before looking at these scores; here it is the ROC point with the largest TPR "
    "at FPR <= the budget, chosen on the same data, which makes the bound somewhat optimistic. Trials must be "
    "independent: samples, or documents (their mean chunk score) when samples are chunks of documents."
)
DOCUMENT_TRIALS = "documents: one trial per document, its mean chunk score (NaN chunks left out)"
SAMPLE_TRIALS = "samples: one trial per sample"


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial interval for successes / trials: quantiles of Beta distributions, through the
    inverse regularised incomplete beta function (``scipy.stats.beta.ppf`` computes the same, and costs a second
    of import)."""
    if trials <= 0:
        raise MiakitError("a binomial interval needs at least one trial")
    alpha = 1.0 - confidence
    low = 0.0 if successes == 0 else float(betaincinv(successes, trials - successes + 1, alpha / 2))
    high = 1.0 if successes == trials else float(betaincinv(successes + 1, trials - successes, 1 - alpha / 2))
    return low, high


def epsilon_trials(
    labels: ArrayLike, scores: ArrayLike, groups: Sequence[str] | None = None, nan_policy: str = "lowest"
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The independent trials of the bound: (labels, scores, record), one per sample, or one per document (its
    mean chunk score) when ``groups`` has a repeated document. Under nan_policy "omit" trials whose score is
    NaN (a document: no scorable chunk) are left out and counted in ``n_omitted``; "raise" refuses them."""
    if nan_policy not in NAN_POLICIES:
        raise MiakitError(f"nan_policy must be one of {', '.join(NAN_POLICIES)}; got {nan_policy!r}")
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    record: dict = {"trials": SAMPLE_TRIALS}
    if is_clustered(groups):
        _, y, s = document_scores(groups, y, s, "mean")
        record["trials"] = DOCUMENT_TRIALS
    nan = np.isnan(s)
    if nan.any() and nan_policy == "raise":
        raise MiakitError(
            f"{int(nan.sum())} NaN trial score(s) for the epsilon bound; use nan_policy 'lowest' or 'omit'"
        )
    if nan_policy == "omit":
        y, s = y[~nan], s[~nan]
        record["n_omitted"] = int(nan.sum())
    return y, s, record


def epsilon_lower_bound(
    labels: ArrayLike,
    scores: ArrayLike,
    *,
    fpr_budget: float = 0.05,
    delta: float = 0.0,
    confidence: float = 0.95,
    groups: Sequence[str] | None = None,
    nan_policy: str = "lowest",
) -> dict:
    """The epsilon lower bound at the ROC point with the largest TPR among FPR <= ``fpr_budget``.

    Trials are samples, or documents (mean chunk score) when ``groups`` has a repeated document
    (`epsilon_trials`); ``n_members``/``n_nonmembers`` count trials and ``trials`` says which.
    """
    y, s, record = epsilon_trials(labels, scores, groups, nan_policy)
    fpr, tpr, thresholds = roc_points(y, s)
    n1, n0 = int(np.count_nonzero(y == 1)), int(np.count_nonzero(y == 0))
    ok = np.flatnonzero(fpr <= fpr_budget + 1e-12)
    i = int(ok[np.argmax(tpr[ok])])
    tp, fp = round(tpr[i] * n1), round(fpr[i] * n0)
    tpr_lo, _ = clopper_pearson(tp, n1, confidence)
    _, fpr_hi = clopper_pearson(fp, n0, confidence)

    def safe_log(num: float, den: float) -> float:
        return math.log(num / den) if num > 0 and den > 0 else 0.0

    epsilon = max(0.0, safe_log(tpr_lo - delta, fpr_hi), safe_log(1 - fpr_hi - delta, 1 - tpr_lo))
    return {
        "epsilon_lower_bound": epsilon,
        "delta": delta,
        "confidence": confidence,
        "fpr_budget": fpr_budget,
        "threshold": float(thresholds[i]),
        "true_positives": tp,
        "false_positives": fp,
        "n_members": n1,
        "n_nonmembers": n0,
        "tpr": float(tpr[i]),
        "fpr": float(fpr[i]),
        "tpr_ci_low": tpr_lo,
        "fpr_ci_high": fpr_hi,
        "assumptions": ASSUMPTIONS,
        **record,
    }
