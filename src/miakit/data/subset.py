"""Seeded, class-stratified subsampling that keeps the original order of the samples."""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence


def stratified_indices(labels: Sequence[Hashable], n: int, seed: int = 0) -> list[int]:
    """Pick n indices, each class in proportion to its size, seeded; returned sorted to keep order."""
    if n >= len(labels):
        return list(range(len(labels)))
    strata: dict[Hashable, list[int]] = {}
    for i, label in enumerate(labels):
        strata.setdefault(label, []).append(i)
    # A fixed class order (None last) makes the draw independent of which class comes first in the file.
    keys = sorted(strata, key=lambda k: (k is None, str(k)))
    quotas = _largest_remainder({k: len(strata[k]) for k in keys}, n, len(labels))
    rng = random.Random(seed)
    chosen: list[int] = []
    for k in keys:
        chosen.extend(rng.sample(strata[k], quotas[k]))
    return sorted(chosen)


def _largest_remainder(sizes: dict[Hashable, int], n: int, total: int) -> dict[Hashable, int]:
    """Split n across classes proportionally to sizes with integer arithmetic (Hamilton's method)."""
    quotas = {k: n * size // total for k, size in sizes.items()}
    left = n - sum(quotas.values())
    order = sorted(sizes, key=lambda k: -(n * sizes[k] % total))  # stable: ties keep class order
    for k in order[:left]:
        quotas[k] += 1
    return quotas
