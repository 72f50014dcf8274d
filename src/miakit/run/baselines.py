"""Blind-baseline scores of a run's samples, stored under the data's hash like any other signal.

The baselines never see a model, but they cost seconds (the stacked bag-of-words fits random forests in every
fold); a rerun on the same samples, labels, documents and seed reads them back from the store instead.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import numpy as np

from miakit.data import MembershipDataset

# Bump when the baselines' definitions change: stored scores of an older definition are then recomputed.
BLIND_VERSION = 1


def blind_key(dataset: MembershipDataset, seed: int) -> str:
    """Store key of the baselines' scores: every sample's text hash, label and document, the seed, the version."""
    h = hashlib.sha256(json.dumps(["blind_baselines", BLIND_VERSION, seed]).encode())
    for s in dataset.samples:
        h.update(hashlib.sha256(s.text.encode("utf-8")).digest())
        h.update(json.dumps([s.label, s.document]).encode())
    return h.hexdigest()


def _to_bytes(columns: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **columns)
    return buffer.getvalue()


def _from_bytes(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def blind_scores(dataset: MembershipDataset, seed: int, store: Any = None) -> dict[str, np.ndarray]:
    """Out-of-fold scores of every blind baseline (empty unless labelled with 2 members and 2 non-members),
    read from ``store`` when there, else computed and written there."""
    from miakit.evaluate import blind_baselines

    labels = np.array([s.label if s.label is not None else -1 for s in dataset.samples])
    if not dataset.is_labelled or min(int((labels == 1).sum()), int((labels == 0).sum())) < 2:
        return {}
    key = blind_key(dataset, seed)
    if store is not None:
        blob = store.get_many([key]).get(key)
        if blob is not None:
            return _from_bytes(blob)
    texts = [s.text for s in dataset.samples]
    columns = blind_baselines(texts, labels, seed=seed, groups=[s.document for s in dataset.samples])
    if store is not None:
        store.put_many({key: _to_bytes(columns)})
    return columns
