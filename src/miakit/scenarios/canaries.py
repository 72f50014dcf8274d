"""Canaries and their exposure (Carlini et al. 2019, "The Secret Sharer").

A canary is a sentence with a random secret (``The PIN of locker QXV is 482913``) inserted k times into the
training data. Its exposure under a model is ``log2(N) - log2(rank)``, where ``rank`` is the position of the
true secret among N equally likely candidates (the secret and N-1 others drawn from the same space) ordered by
the model's log-likelihood of the secret given the prefix: log2(N) bits when the model ranks the true secret
first, about 1 bit when it knows nothing.
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

from miakit.errors import DataError

__all__ = ["Canary", "exposure", "make_canaries", "read_canaries", "training_texts", "write_canaries"]


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


def exposure(secret_score: float, candidate_scores: Sequence[float]) -> dict[str, Any]:
    """Rank of the secret (1 = most likely; ties count against it) among itself and the candidates, and
    exposure = log2(N) - log2(rank) with N = 1 + number of candidates."""
    scores = np.asarray(candidate_scores, dtype=float)
    if not np.isfinite(secret_score) or not np.all(np.isfinite(scores)):
        raise ValueError("canary scores must be finite")
    rank = 1 + int(np.sum(scores >= secret_score))
    n = 1 + len(scores)
    return {"rank": rank, "n_candidates": n, "exposure": math.log2(n) - math.log2(rank), "max_exposure": math.log2(n)}
