"""The ``TokenStats`` record (one entry per scored token) and its compact serialisation for the store."""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass, fields

import numpy as np

# Bump when the computation of any statistic changes: it is part of every store key.
STATS_VERSION = 1


@dataclass(frozen=True)
class TokenStats:
    """Per scored token: the actual token, its log-prob and summaries of the next-token distribution."""

    token_ids: np.ndarray  # int32
    logprob: np.ndarray  # log p(actual token)
    mu: np.ndarray  # E_p[log p]
    sigma: np.ndarray  # std_p[log p]
    entropy: np.ndarray  # Shannon entropy (nats)
    renyi_05: np.ndarray
    renyi_2: np.ndarray
    renyi_inf: np.ndarray
    max_logprob: np.ndarray
    rank: np.ndarray  # 1 + number of tokens strictly more likely than the actual one

    def __len__(self) -> int:
        return int(self.logprob.shape[0])

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> TokenStats:
        values = {}
        for f in fields(cls):
            dtype = np.int32 if f.name == "token_ids" else np.float32
            values[f.name] = np.ascontiguousarray(arrays[f.name], dtype=dtype)
        return cls(**values)

    @classmethod
    def concatenate(cls, parts: list[dict[str, np.ndarray]]) -> TokenStats:
        names = [f.name for f in fields(cls)]
        return cls.from_arrays({n: np.concatenate([p[n] for p in parts]) if parts else [] for n in names})

    def entropy_alpha(self, alpha: float) -> np.ndarray:
        """Rényi entropy of order alpha at each position (alpha 1 is Shannon)."""
        table = {0.5: self.renyi_05, 1.0: self.entropy, 2.0: self.renyi_2, float("inf"): self.renyi_inf}
        if float(alpha) not in table:
            raise ValueError(f"Rényi order {alpha} is not stored; available: 0.5, 1, 2, inf")
        return table[float(alpha)]

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, **{f.name: getattr(self, f.name) for f in fields(self)})
        return zlib.compress(buf.getvalue(), 1)

    @classmethod
    def from_bytes(cls, blob: bytes) -> TokenStats:
        with np.load(io.BytesIO(zlib.decompress(blob))) as data:
            return cls.from_arrays({k: data[k] for k in data.files})


def counts_to_bytes(counts: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(counts, dtype=np.int64))
    return zlib.compress(buf.getvalue(), 1)


def counts_from_bytes(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(zlib.decompress(blob)))


def array_to_bytes(values: np.ndarray) -> bytes:
    """Any numeric array (dtype and shape kept), compressed: the stored form of white-box signals."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(values), allow_pickle=False)
    return zlib.compress(buf.getvalue(), 1)


def array_from_bytes(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False)
