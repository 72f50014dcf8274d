"""Blind-baseline scores of a run's samples, stored under the data's hash like any other signal.

The baselines never see a model, but they cost seconds (the stacked bag-of-words fits random forests in every
fold); a rerun on the same samples, labels, documents and seed reads them back from the store instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
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


def _labels(dataset: MembershipDataset) -> np.ndarray:
    return np.array([s.label if s.label is not None else -1 for s in dataset.samples])


def _compute(dataset: MembershipDataset, seed: int, progress: bool = True) -> dict[str, np.ndarray]:
    """Every blind baseline's out-of-fold scores; with ``progress``, a plain line on stderr as each starts and
    when all are done (the stacked bag-of-words alone can take minutes on thousands of texts)."""
    from miakit.evaluate.blind import BLIND_NAME, blind_bow_scores
    from miakit.evaluate.blind_more import DATE_NAME, NGRAM_NAME, blind_date_scores, blind_ngram_scores

    texts = [s.text for s in dataset.samples]
    labels, groups = _labels(dataset), [s.document for s in dataset.samples]
    steps = (
        (BLIND_NAME, "bag-of-words ensemble", blind_bow_scores),
        (DATE_NAME, "dates", blind_date_scores),
        (NGRAM_NAME, "n-gram markers", blind_ngram_scores),
    )
    started = time.monotonic()
    out = {}
    for i, (name, label, score) in enumerate(steps, 1):
        if progress:
            _line(f"blind baselines: {i}/{len(steps)} {label} ({len(texts)} texts), {time.monotonic() - started:.0f} s")
        out[name] = score(texts, labels, seed=seed, groups=groups)
    if progress:
        _line(f"blind baselines: done, {time.monotonic() - started:.0f} s")
    return out


def _line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class BlindScores:
    """Out-of-fold scores of every blind baseline (empty unless labelled with 2 members and 2 non-members), read
    from the store when there, else computed and written there.

    ``start`` begins the computation: in a background thread when ``concurrent`` (cores the model leaves free,
    e.g. while a GPU computes the signals), else at ``result``. The store is only touched from the calling
    thread (SQLite connections stay in their thread).
    """

    def __init__(self, dataset: MembershipDataset, seed: int, store: Any = None, *, progress: bool = True) -> None:
        self.dataset, self.seed, self.store, self.progress = dataset, seed, store, progress
        self._key = blind_key(dataset, seed)
        self._value: dict[str, np.ndarray] | None = None
        self._future: Any = None
        labels = _labels(dataset)
        if not dataset.is_labelled or min(int((labels == 1).sum()), int((labels == 0).sum())) < 2:
            self._value = {}
        elif store is not None:
            from miakit.signals.store import decode_or_miss

            blob = store.get_many([self._key]).get(self._key)
            self._value = decode_or_miss(store, self._key, blob, _from_bytes) if blob is not None else None
        self.cached = bool(self._value)

    def start(self, *, concurrent: bool) -> BlindScores:
        if self._value is None and concurrent and self._future is None:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="miakit-blind")
            self._future = pool.submit(_compute, self.dataset, self.seed, self.progress)
            pool.shutdown(wait=False)
        return self

    def result(self) -> dict[str, np.ndarray]:
        if self._value is None:
            self._value = (
                self._future.result() if self._future is not None else _compute(self.dataset, self.seed, self.progress)
            )
            if self.store is not None:
                self.store.put_many({self._key: _to_bytes(self._value)})
        return self._value


def blind_scores(
    dataset: MembershipDataset, seed: int, store: Any = None, *, progress: bool = True
) -> dict[str, np.ndarray]:
    """``BlindScores(dataset, seed, store).result()``: the baselines' scores, from the store or computed."""
    return BlindScores(dataset, seed, store, progress=progress).result()
