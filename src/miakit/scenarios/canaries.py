"""Canaries and their exposure (Carlini et al. 2019, "The Secret Sharer").

A canary is a sentence with a random secret (``The PIN of locker QXV is 482913``) inserted k times into the
training data. Its exposure under a model is ``log2(N) - log2(rank)``, where ``rank`` is the position of the
true secret among N equally likely candidates (the secret and N-1 others drawn from the same space) ordered by
the model's log-likelihood of the secret given the prefix: log2(N) bits when the model ranks the true secret
first, about 1 bit when it knows nothing. That rank saturates at log2(N) (7 bits at N = 128) as soon as a canary
is memorised, so the paper's *extrapolated* exposure is reported next to it: a skew-normal fitted to the
candidates' log-perplexities (negative log-likelihoods) estimates the probability that a random secret of the
whole space is at least as likely as the true one, and exposure = -log2 of that probability, capped at
log2 of the space size.
"""

from __future__ import annotations

import json
import math
import random
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import skewnorm

from miakit.errors import DataError

__all__ = [
    "MIN_FIT_CANDIDATES",
    "Canary",
    "exposure",
    "make_canaries",
    "read_canaries",
    "training_texts",
    "write_canaries",
]


@dataclass(frozen=True)
class Canary:
    """One inserted secret: ``prefix + secret`` appears ``repeats`` times in the training texts."""

    id: str
    prefix: str
    secret: str
    repeats: int
    candidates: tuple[str, ...]  # N - 1 other secrets from the same space, never equal to ``secret``

    @property
    def text(self) -> str:
        return self.prefix + self.secret

    @property
    def space_size(self) -> int | None:
        """Number of possible secrets: 10**digits for a secret of decimal digits (as ``make_canaries`` draws
        them), None for any other secret (its space is unknown)."""
        digits = self.secret.strip()
        return 10 ** len(digits) if digits.isascii() and digits.isdigit() else None


def make_canaries(repeats: Sequence[int], *, n_candidates: int = 128, digits: int = 6, seed: int = 0) -> list[Canary]:
    """One canary per entry of ``repeats`` (its insertion count), each with its own prefix and random secret.

    Secrets are ``digits`` random decimal digits after a space; the ``n_candidates - 1`` alternatives are
    distinct draws from the same space, so exposure ranges over [0, log2(n_candidates)].
    """
    if n_candidates < 2:
        raise ValueError("n_candidates must be at least 2")
    if n_candidates > 10**digits:
        raise ValueError(f"{digits} digits allow at most {10**digits} candidates")
    rng = random.Random(seed)
    tags: set[str] = set()
    out: list[Canary] = []
    for i, k in enumerate(repeats):
        if k < 1:
            raise ValueError("each canary must be inserted at least once")
        tag = "".join(rng.choice(string.ascii_uppercase) for _ in range(3))
        while tag in tags:
            tag = "".join(rng.choice(string.ascii_uppercase) for _ in range(3))
        tags.add(tag)
        drawn = rng.sample(range(10**digits), n_candidates)  # distinct: drawn[0] is the secret
        secrets = [" " + str(v).zfill(digits) for v in drawn]
        out.append(
            Canary(
                id=f"canary-{i}",
                prefix=f"The PIN of locker {tag} is",
                secret=secrets[0],
                repeats=int(k),
                candidates=tuple(secrets[1:]),
            )
        )
    return out


def training_texts(canaries: Sequence[Canary]) -> list[str]:
    """Each canary's full sentence, ``repeats`` times."""
    return [c.text for c in canaries for _ in range(c.repeats)]


def write_canaries(path: Path, canaries: Sequence[Canary]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for c in canaries:
            row = asdict(c)
            row["candidates"] = list(c.candidates)
            f.write(json.dumps(row) + "\n")


def read_canaries(path: str | Path) -> list[Canary]:
    """Canaries from a JSON-lines file written by ``write_canaries`` (or by hand, with the same keys)."""
    out: list[Canary] = []
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"Cannot read canaries file {path}: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            canary = Canary(
                id=str(row["id"]),
                prefix=str(row["prefix"]),
                secret=str(row["secret"]),
                repeats=int(row.get("repeats", 1)),
                candidates=tuple(str(c) for c in row["candidates"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}:{n}: not a canary record ({exc}); keys: id, prefix, secret, candidates") from exc
        if not canary.candidates or canary.secret in canary.candidates:
            raise DataError(f"{path}:{n}: candidates must be non-empty and must not contain the secret")
        out.append(canary)
    return out


MIN_FIT_CANDIDATES = 10  # finite candidates needed to fit the skew-normal's three parameters


def exposure(
    secret_score: float, candidate_scores: Sequence[float], *, space_size: int | None = None
) -> dict[str, Any]:
    """Exact and extrapolated exposure of one canary from log-likelihoods (higher = more likely).

    Exact: rank of the secret among itself and the candidates (1 = most likely; ties count against it) and
    ``exposure = log2(N) - log2(rank)`` with N = 1 + number of candidates, at most ``max_exposure = log2(N)``.

    Extrapolated (Carlini et al. 2019, "approximating exposure"): a skew-normal (``scipy.stats.skewnorm``, maximum
    likelihood) fitted to the finite candidates' log-perplexities ``-score`` gives
    ``P = P(candidate at least as likely as the secret) = cdf(-secret_score)``, and
    ``extrapolated_exposure = -log2 P``, capped at ``log2(space_size)`` when the number of possible secrets is
    given (``Canary.space_size``). It can exceed log2(N), but it is an estimate: from 127 candidates its error is
    a few bits in the far tail. None (with a note) when fewer than 10 finite candidates or no spread.

    Non-finite candidate scores (-inf, NaN, +inf) never abort: they are counted (``n_nonfinite_candidates``),
    ranked least likely and left out of the fit. A non-finite secret score gets rank N, both exposures 0 and a
    note.
    """
    scores = np.asarray(candidate_scores, dtype=float).ravel()
    finite = np.isfinite(scores)
    n = 1 + len(scores)
    notes: list[str] = []
    n_nonfinite = int(np.count_nonzero(~finite))
    if n_nonfinite:
        notes.append(f"{n_nonfinite} candidate log-likelihood(s) not finite: ranked least likely, left out of the fit")
    fit = _fit_log_perplexity(-scores[finite])
    if fit is None:
        notes.append(f"no skew-normal fit: fewer than {MIN_FIT_CANDIDATES} finite candidates or no spread")
    cap = math.log2(space_size) if space_size else None
    if not np.isfinite(secret_score):
        rank, extrapolated = n, 0.0
        notes.append(f"secret log-likelihood is {secret_score}: ranked last, exposure 0")
    else:
        rank = 1 + int(np.count_nonzero(scores[finite] >= secret_score))
        extrapolated = None if fit is None else _tail_bits(-float(secret_score), fit, cap)
    return {
        "rank": rank,
        "n_candidates": n,
        "exposure": math.log2(n) - math.log2(rank),
        "max_exposure": math.log2(n),
        "extrapolated_exposure": extrapolated,
        "max_extrapolated_exposure": cap,
        "space_size": space_size,
        "n_nonfinite_candidates": n_nonfinite,
        "skewnorm_shape": None if fit is None else fit[0],
        "skewnorm_loc": None if fit is None else fit[1],
        "skewnorm_scale": None if fit is None else fit[2],
        "note": "; ".join(notes) or None,
    }


def _fit_log_perplexity(values: np.ndarray) -> tuple[float, float, float] | None:
    """Maximum-likelihood skew-normal (shape, loc, scale) of the candidates' log-perplexities, or None."""
    if len(values) < MIN_FIT_CANDIDATES or np.ptp(values) == 0:
        return None
    try:
        shape, loc, scale = skewnorm.fit(values)
    except (RuntimeError, ValueError):  # scipy's FitError: the optimiser left the parameter space
        return None
    return float(shape), float(loc), float(scale)


def _tail_bits(log_perplexity: float, fit: tuple[float, float, float], cap: float | None) -> float:
    """-log2 P(log-perplexity <= the secret's) under the fit, capped at ``cap`` bits (when the probability
    underflows to 0 and there is no cap: the 1074 bits of the smallest positive double, a lower bound)."""
    p = float(skewnorm.cdf(log_perplexity, *fit))
    bits = 0.0 - math.log2(p) if p > 0 else 0.0 - math.log2(math.ulp(0.0))
    return min(bits, cap) if cap is not None else bits
