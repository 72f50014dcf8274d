"""Validation of (labels, scores) and the one NaN policy every metric shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from miakit.errors import MiakitError

NanPolicy = Literal["lowest", "raise", "omit"]
NAN_POLICIES: tuple[str, ...] = ("lowest", "raise", "omit")


@dataclass(frozen=True)
class PreparedScores:
    """Labels and scores after the NaN policy, with scores replaced by dense ranks (0 = lowest level).

    `levels[r]` is the score value of rank r (NaN for the NaN level under "lowest"); +inf and -inf are
    ordinary levels. Counts describe the input before any NaN was omitted.
    """

    labels: np.ndarray
    ranks: np.ndarray
    levels: np.ndarray
    nan_policy: str
    n_members: int
    n_nonmembers: int
    nan_members: int
    nan_nonmembers: int
    inf_members: int
    inf_nonmembers: int
    kept: np.ndarray | None = None  # which input samples remain (all but the NaNs under "omit")

    @property
    def n_nan(self) -> int:
        return self.nan_members + self.nan_nonmembers

    @property
    def n_pos(self) -> int:
        """Members that the metrics use (after an 'omit')."""
        return int(np.count_nonzero(self.labels == 1))

    @property
    def n_neg(self) -> int:
        """Non-members that the metrics use (after an 'omit')."""
        return int(np.count_nonzero(self.labels == 0))


def validate_labels(labels: ArrayLike) -> np.ndarray:
    """Return labels as a 1-D int8 array of 0/1, or raise MiakitError naming what is wrong."""
    try:
        arr = np.asarray(labels, dtype=float)
    except (TypeError, ValueError) as e:
        raise MiakitError(f"labels must be 0 (non-member) or 1 (member); got non-numbers ({e})") from e
    if arr.ndim != 1:
        raise MiakitError(f"labels must be one-dimensional; got shape {arr.shape}")
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        example = arr[bad][0]
        raise MiakitError(
            f"labels must be 0 (non-member) or 1 (member); {int(bad.sum())} label(s) are not, e.g. {example!r}"
        )
    return arr.astype(np.int8)


def prepare_scores(labels: ArrayLike, scores: ArrayLike, nan_policy: str = "lowest") -> PreparedScores:
    """Validate inputs, apply the NaN policy once, and rank the scores for every metric downstream.

    nan_policy: "lowest" (NaN ranks below every score, -inf included, and NaNs tie among themselves),
    "raise" (MiakitError naming the count) or "omit" (drop them; the counts stay reported).
    """
    if nan_policy not in NAN_POLICIES:
        raise MiakitError(f"nan_policy must be one of {', '.join(NAN_POLICIES)}; got {nan_policy!r}")
    y = validate_labels(labels)
    try:
        s = np.asarray(scores, dtype=float)
    except (TypeError, ValueError) as e:
        raise MiakitError(f"scores must be numbers ({e})") from e
    if s.ndim != 1:
        raise MiakitError(f"scores must be one-dimensional; got shape {s.shape}")
    if s.shape[0] != y.shape[0]:
        raise MiakitError(f"{y.shape[0]} labels but {s.shape[0]} scores; they must match one to one")
    n_members = int(np.count_nonzero(y == 1))
    n_nonmembers = int(np.count_nonzero(y == 0))
    if n_members == 0 or n_nonmembers == 0:
        raise MiakitError(
            f"metrics need both members and non-members; got {n_members} members and {n_nonmembers} non-members"
        )
    nan = np.isnan(s)
    inf = np.isinf(s)
    nan_m, nan_n = int(np.count_nonzero(nan & (y == 1))), int(np.count_nonzero(nan & (y == 0)))
    inf_m, inf_n = int(np.count_nonzero(inf & (y == 1))), int(np.count_nonzero(inf & (y == 0)))
    if nan_m + nan_n and nan_policy == "raise":
        raise MiakitError(
            f"{nan_m + nan_n} NaN score(s) ({nan_m} members, {nan_n} non-members); "
            "use nan_policy='lowest' to rank them as non-members, "
            "or 'omit' to drop them (counted in the report)"
        )
    kept = ~nan if nan_policy == "omit" else np.ones(len(s), dtype=bool)
    if nan_policy == "omit":
        y, s, nan = y[~nan], s[~nan], nan[~nan]
    levels, inverse = np.unique(s[~nan], return_inverse=True)
    ranks = np.zeros(s.shape[0], dtype=np.int64)
    if nan.any():
        ranks[~nan] = inverse + 1
        levels = np.concatenate([[np.nan], levels])
    else:
        ranks[:] = inverse
    return PreparedScores(
        labels=y,
        ranks=ranks,
        levels=levels,
        nan_policy=nan_policy,
        n_members=n_members,
        n_nonmembers=n_nonmembers,
        nan_members=nan_m,
        nan_nonmembers=nan_n,
        inf_members=inf_m,
        inf_nonmembers=inf_n,
        kept=kept,
    )
